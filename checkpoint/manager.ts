// The checkpoint manager: one agent's checkpoints, created whole, restored
// only after verification, pruned by an explainable plan.
//
// Invariants:
// - A checkpoint file appears whole or not at all, and is never changed
//   after it is written; sequence numbers are allocated under the agent's
//   lock from everything ever stored (live, trash, quarantine, operations),
//   so they strictly increase and are never reused.
// - Restore never returns a state that failed a check: length, checksum,
//   format version, JSON, migration and validation. A file that fails is
//   moved to quarantine/ with a reason (never overwritten, never deleted),
//   and the next older one is tried.
// - Retention never trashes the newest valid checkpoint or the checkpoint
//   of an open operation, and trashes (renames) before anything is deleted.
// - Every change to the agent's files happens under the agent lock
//   (`checkpoint.<agentId>` in `<root>/locks/`), so several processes can
//   share one agent directory, with two exceptions: a restore whose first
//   candidate passes every check reads without the lock and only records
//   its restore count and journal line (see _poison.ts for why that is
//   safe; any failure sends it to the locked path); and a create that can
//   predict its seq writes its temp file before it takes the lock, but
//   publishes it (the rename) only under the lock, once the prediction is
//   checked there (see #createAhead).
// - The journal is an audit log, written once per call (the lines of a
//   create together); nothing reads it to decide anything.

import { join } from "node:path";
import { ensureDir, isNotFound, readJsonl } from "../fs/mod.ts";
import { appendJsonl } from "../fs/mod.ts";
import {
  acquireLock,
  type Lock,
  type LockOptions,
  tryAcquireLock,
} from "../lock/mod.ts";
import { type Clock, systemClock, validateName } from "../retry/mod.ts";
import { type DriftInput, type DriftReport, evaluateDrift } from "./drift.ts";
import { CheckpointError, NoValidCheckpointError } from "./errors.ts";
import type { TriedCheckpoint } from "./errors.ts";
import type { CheckpointOperation } from "./operation.ts";
import type { CheckpointManagerOptions } from "./options.ts";
import {
  type CheckpointStore,
  FileCheckpointStore,
  type FilePutOptions,
  formatCheckpointId,
  parseCheckpointId,
  type StoredCheckpoint,
} from "./store.ts";
import {
  planRetention,
  type ResolvedRetentionPolicy,
  resolveRetentionPolicy,
  type RetentionCandidate,
  type RetentionPlan,
} from "./retention.ts";
import {
  CHECKPOINT_TYPES,
  type CheckpointRef,
  type CheckpointType,
  type OperationOutcome,
  type OperationRecord,
  type RestoreResult,
  type SkippedCheckpoint,
} from "./types.ts";
import {
  CheckFailure,
  checkFile,
  checkLength,
  CHECKPOINT_FORMAT,
  type CheckpointHeader,
  checkSha256,
  decodePayload,
  encodeChunks,
  encodeHeader,
  encodeHeaderPadded,
  type FileBody,
  fileBody,
  headerRoom,
  isStreamed,
  MAX_HEADER_BYTES,
  parseHeader,
  parseState,
  type PayloadChunks,
  sha256Hex,
  sha256HexAside,
  SINGLE_WRITE_BYTES,
  type StreamedPayload,
} from "./_format.ts";
import {
  Journal,
  type JournalEvent,
  type JournalEventKind,
} from "./_journal.ts";
import { OperationLedger } from "./_operations.ts";
import {
  type LoadedMarks,
  RestoreMarkers,
  type RestoreMarks,
} from "./_poison.ts";
import { AutoCheckpoint } from "./_auto.ts";
import { checkSerializable } from "./_serialize.ts";

/** Options of {@linkcode CheckpointManager.create}. */
export interface CreateOptions<S> {
  /**
   * The state to save.
   *
   * @default {collect()}
   */
  state?: S;
  /** A free label, e.g. `"before deploy"` (at most 200 characters). */
  label?: string;
  /** Small JSON metadata stored in the header (at most 16 KiB). */
  meta?: Record<string, unknown>;
  /** The operation this checkpoint belongs to. */
  operationId?: string;
  /** Stops waiting for the agent lock. */
  signal?: AbortSignal;
}

/** Options of {@linkcode CheckpointManager.restore}. */
export interface RestoreOptions {
  /** Stops the restore between checkpoints and while waiting for the lock. */
  signal?: AbortSignal;
  /** Only consider checkpoints of this type. */
  type?: CheckpointType;
}

/** What {@linkcode CheckpointManager.verify} found. */
export interface VerifyReport {
  /** Whether every live checkpoint passed. */
  ok: boolean;
  /** How many live checkpoints were checked. */
  checked: number;
  /** Every one that failed, newest first, and why. */
  problems: Array<{ id: string; path: string; reason: string }>;
}

/** Options of {@linkcode CheckpointManager.guard}. */
export interface GuardOptions<S> {
  /**
   * The operation's name.
   *
   * @default {"guard"}
   */
  name?: string;
  /**
   * The state to save first.
   *
   * @default {collect()}
   */
  state?: S;
}

/** Options of {@linkcode CheckpointManager.autoCheckpoint}. */
export interface AutoCheckpointOptions {
  /**
   * Told about a checkpoint that failed; the schedule goes on.
   *
   * @default {undefined} (failures are dropped)
   */
  onError?: (error: unknown) => void;
  /** Stops the schedule. */
  signal?: AbortSignal;
}

/** The running schedule {@linkcode CheckpointManager.autoCheckpoint} returns. */
export interface AutoCheckpointHandle extends Disposable, AsyncDisposable {
  /** Checkpoints taken so far. */
  readonly taken: number;
  /**
   * Stops the schedule and waits for a checkpoint in progress.
   *
   * @returns Resolves once stopped.
   */
  stop(): Promise<void>;
}

const MAX_META_BYTES = 16_384;
const MAX_LABEL = 200;
const MAX_METRICS_READ = 1_000;

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * Verified, per-agent checkpoints with fallback past corruption, poison
 * detection, explainable retention, pinned operations and drift detection.
 * Files live under `<root>/checkpoints/<agentId>/`.
 *
 * @typeParam S The state's type.
 *
 * @example Create, corrupt, and restore past the damage
 * ```ts
 * import { CheckpointManager } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = new CheckpointManager<{ step: number }>({ agentId: "planner", root });
 * await checkpoints.create("routine", { state: { step: 1 } });
 * const second = await checkpoints.create("routine", { state: { step: 2 } });
 * const bytes = await Deno.readFile(second.path);
 * const at = bytes.length - 2;
 * bytes[at] = bytes[at]! ^ 1; // flip a payload byte
 * await Deno.writeFile(second.path, bytes);
 * const { state, skipped } = await checkpoints.restore();
 * assert.equal(state.step, 1);
 * assert.match(skipped[0]!.reason, /checksum mismatch/);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class CheckpointManager<S = unknown> implements AsyncDisposable {
  readonly #agentId: string;
  readonly #root: string;
  readonly #dir: string;
  readonly #store: CheckpointStore;
  readonly #clock: Clock;
  readonly #journal: Journal;
  readonly #markers: RestoreMarkers;
  readonly #ledger: OperationLedger;
  readonly #options: CheckpointManagerOptions<S>;
  readonly #retention: ResolvedRetentionPolicy;
  readonly #stateVersion: number;
  readonly #maxBytes: number;
  readonly #poisonAfter: number;
  // Headers never change once written, so a ref read once stays true for
  // as long as the file is live.
  readonly #refs = new Map<string, CheckpointRef>();
  readonly #autos = new Set<AutoCheckpoint>();
  // The buffer the last payload was encoded into, kept for the next (see
  // PlainCollector in _format.ts): as large as the largest payload held
  // whole so far, at most 8 MiB and the header's room.
  #scratch: Uint8Array | undefined;
  // What the last create knew at the end of its hold (file store only).
  // The agent's files change only under the agent lock, and its fence
  // tells who held it since: when the next hold's fence is this one's
  // plus 1, no one did, so the next create knows its seq and fence before
  // it takes the lock (#createAhead) and need not list the trash, the one
  // area that grows (a day of trashed checkpoints by default). Any other
  // hold, ours included, shows as a larger fence.
  #last: LastCreate | undefined;
  #dirReady = false;
  #expectedIntervalMs: number | undefined;

  /**
   * Creates a manager. Nothing is read or written until it is used.
   *
   * @param options The agent id and every other setting.
   * @throws {SturdyError} Code `invalid_name` for a bad agent id,
   *   `invalid_option` for a bad setting.
   */
  constructor(options: CheckpointManagerOptions<S>) {
    this.#agentId = validateName(options.agentId, "agent id");
    if (this.#agentId.length > 117) {
      throw new CheckpointError(
        `Invalid agent id "${
          this.#agentId.slice(0, 40)
        }…": use at most 117 characters (its lock name adds 11)`,
        { code: "invalid_name", agentId: this.#agentId },
      );
    }
    this.#options = options;
    this.#root = options.root ?? ".sturdy";
    this.#dir = join(this.#root, "checkpoints", this.#agentId);
    this.#store = options.store ?? new FileCheckpointStore(this.#dir);
    this.#clock = options.clock ?? systemClock;
    this.#journal = new Journal(join(this.#dir, "journal.jsonl"), this.#clock);
    this.#markers = new RestoreMarkers(join(this.#dir, "restores.json"));
    this.#ledger = new OperationLedger(join(this.#dir, "operations.json"));
    this.#retention = resolveRetentionPolicy(options.retention);
    this.#stateVersion = options.stateVersion ?? 1;
    this.#maxBytes = options.maxBytes ?? 67_108_864;
    this.#poisonAfter = options.poisonAfter ?? 3;
    this.#expectedIntervalMs = options.expectedIntervalMs;
    const positiveInt = (value: number, name: string): void => {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new CheckpointError(
          `Invalid ${name} ${value}: use a whole number, 1 or more`,
          { code: "invalid_option", agentId: this.#agentId },
        );
      }
    };
    positiveInt(this.#stateVersion, "stateVersion");
    positiveInt(this.#poisonAfter, "poisonAfter");
    if (!(this.#maxBytes > 0)) {
      throw new CheckpointError(
        `Invalid maxBytes ${this.#maxBytes}: use a number of bytes above 0`,
        { code: "invalid_option", agentId: this.#agentId },
      );
    }
    const encoding = options.encoding ?? "json";
    if (!["json", "gzip", "auto"].includes(encoding)) {
      throw new CheckpointError(
        `Invalid encoding ${
          JSON.stringify(encoding)
        }: use "json", "gzip" or "auto"`,
        { code: "invalid_option", agentId: this.#agentId },
      );
    }
  }

  /** The agent's id. */
  get agentId(): string {
    return this.#agentId;
  }

  /** The agent's directory, `<root>/checkpoints/<agentId>`. */
  get dir(): string {
    return this.#dir;
  }

  /** The journal file, `<dir>/journal.jsonl`. */
  get journalPath(): string {
    return this.#journal.path;
  }

  // ---------------------------------------------------------------- create

  /**
   * Saves a checkpoint: serialises the state (refusing functions, cycles
   * and non-finite numbers, naming where), validates it, hashes the exact
   * payload bytes, takes the next sequence number under the agent lock,
   * writes it with a durable atomic replace, journals it and applies
   * retention. A routine checkpoint also proves the agent healthy (clears
   * restore counts for poison detection).
   *
   * @param type The checkpoint's type.
   * @param options The state (else `collect()`), label, meta, operation.
   * @returns The new checkpoint's ref.
   * @throws {CheckpointError} Code `invalid_state` (not serialisable, or
   *   rejected by `validate`/`schema`), `too_large`, `invalid_option`.
   *
   * @example Save and list
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * const ref = await checkpoints.create("recovery", { state: [1, 2], label: "before retry" });
   * assert.equal(ref.label, "before retry");
   * assert.deepEqual((await checkpoints.list()).map((r) => r.id), [ref.id]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async create(
    type: CheckpointType,
    options: CreateOptions<S> = {},
  ): Promise<CheckpointRef> {
    this.#checkType(type);
    const extras = this.#checkExtras(options);
    const state = await this.#stateFor(options.state, "create");
    const prepared = await this.#encode(state, extras);
    using _ = { [Symbol.dispose]: () => this.#recycle(prepared) };
    const last = this.#last;
    this.#last = undefined; // good for the next hold only
    if (last && prepared.kind === "whole" && prepared.body.rewritable) {
      const ahead = await this.#createAhead(
        type,
        prepared,
        extras,
        last,
        options.signal,
      );
      if ("ref" in ahead) return ahead.ref;
      // Someone else held the lock since: write again, as below, under
      // the lock if it is already held (the state passed its check).
      const { lock, inventory } = ahead;
      if (lock) {
        try {
          return await this.#createLocked(
            type,
            prepared,
            extras,
            lock,
            inventory,
          );
        } finally {
          await lock.release();
        }
      }
    }
    return await this.#locked(
      (lock) => this.#createLocked(type, prepared, extras, lock, last),
      options.signal,
    );
  }

  /**
   * A create under the held lock: one look at everything stored (every
   * area and the ledger) gives the next seq, and retention reuses it:
   * under the held lock nothing changes but what this call does.
   * `known` is an inventory already taken under this hold, or what the
   * last create knew (see #inventory).
   */
  async #createLocked(
    type: CheckpointType,
    prepared: Prepared,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    lock: Lock,
    known?: Inventory | LastCreate,
  ): Promise<CheckpointRef> {
    const inventory = known && "items" in known
      ? known
      : await this.#inventory(lock, known);
    const seq = seqAfter(inventory);
    return await JournalBatch.run(this.#journal, async (journal) => {
      const ref = await this.#write(
        type,
        seq,
        prepared,
        extras,
        lock,
        journal,
      );
      await this.#afterCreate(ref, inventory, lock, journal);
      return ref;
    });
  }

  /**
   * A create when this manager's last create was the last hold of the
   * agent lock, as it is for an agent that is the only writer of its
   * checkpoints. That hold predicts this one's seq and fence (the fence
   * of the next hold is one more, when no one else held the lock in
   * between), so the file is written before the lock is held: the lock
   * is taken while the payload is written (fs/'s whileWriting) and the
   * prediction checked while the file is synced (beforeCommit), time
   * spent waiting on the device anyway. The file is published only if
   * the prediction holds, under the lock, as any create publishes. If it
   * does not, the temp
   * file is removed and this returns the lock, still held, with the
   * inventory taken under it, for the caller to write the file again, or
   * nothing if the lock was taken: it is not waited for there (someone
   * else holding it means the prediction failed anyway), since a wait
   * inside the write could wait on a write to the same file (fs/ runs
   * those one after another) by a create of this process that holds it.
   */
  async #createAhead(
    type: CheckpointType,
    prepared: WholePrepared,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    last: LastCreate,
    signal: AbortSignal | undefined,
  ): Promise<
    { ref: CheckpointRef } | { lock?: Lock; inventory?: Inventory }
  > {
    const seq = last.seq + 1;
    const fence = last.fence + 1;
    let lock: Lock | undefined;
    let inventory: Inventory | undefined;
    let written: { stored: StoredCheckpoint; header: CheckpointHeader };
    // Taken once, by whichever of the write's steps comes first (fs/ does
    // not order them; a small payload's write can reach beforeCommit
    // before whileWriting has the lock).
    let locking: Promise<Lock | undefined> | undefined;
    const takeLock = async (): Promise<Lock> => {
      lock ??= await (locking ??= this.#tryAcquire());
      if (!lock) throw new Mispredicted();
      return lock;
    };
    try {
      written = await this.#putWhole(type, seq, prepared, extras, fence, {
        ...(signal ? { signal } : {}),
        // The lock as the payload is written, the rest while it is synced
        // (see #putWhole).
        whileWriting: async () => {
          await takeLock();
        },
        beforeCommit: async () => {
          const held = await takeLock();
          inventory = await this.#inventory(held, last);
          if (held.fence !== fence || seqAfter(inventory) !== seq) {
            throw new Mispredicted();
          }
          held.signal.throwIfAborted();
        },
      });
    } catch (err) {
      // The write settles only after both steps have (fs/ promises it), so
      // `lock` is all that was taken.
      if (err instanceof Mispredicted && lock && inventory) {
        return { lock, inventory };
      }
      await lock?.release();
      if (err instanceof Mispredicted) return {};
      throw err;
    }
    try {
      const ref = await JournalBatch.run(this.#journal, async (journal) => {
        const ref = await this.#created(
          written.stored,
          written.header,
          journal,
        );
        await this.#afterCreate(ref, inventory!, lock!, journal);
        return ref;
      });
      return { ref };
    } finally {
      await lock!.release();
    }
  }

  /**
   * Stores a payload held whole as checkpoint `seq` with `fence`. In the
   * file store the payload is written while it is hashed, and the header
   * (which holds the hash) written over the room kept in front of it
   * afterwards; another store is given the finished file.
   */
  async #putWhole(
    type: CheckpointType,
    seq: number,
    { payload, body, room, check }: WholePrepared,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    fence: number,
    options: FilePutOptions,
  ): Promise<{ stored: StoredCheckpoint; header: CheckpointHeader }> {
    const entry = { id: formatCheckpointId(seq, type), seq, type };
    const headerNow = async () =>
      this.#header(type, seq, payload, await body.sha256, extras, { fence });
    if (!(this.#store instanceof FileCheckpointStore)) {
      // Only the file store is written ahead of the lock (#createAhead),
      // so only it is given steps to run beside the write.
      check?.();
      const header = await headerNow();
      const stored = await this.#store.put(
        entry,
        body.withHeader(encodeHeader(header)),
        { fence, ...(options.signal ? { signal: options.signal } : {}) },
      );
      return { stored, header };
    }
    let header: CheckpointHeader | undefined;
    // Work beside the write, placed so that each part fits in the time
    // the device takes anyway: the check (about a third of the cost of
    // serialising) as the payload is written, unless the caller has work
    // for then (taking the lock), in which case the check moves into the
    // sync, before the caller's beforeCommit. Synchronous work delays the
    // next step of the write (the event loop does not see the write end
    // until it yields), so what runs beside the write should take about
    // as long as the write.
    const before = options.beforeCommit;
    const late = check && options.whileWriting;
    const stored = await this.#store.put(entry, body.withRoom(), {
      ...options,
      ...(check && !late ? { whileWriting: check } : {}),
      ...(late
        ? {
          beforeCommit: async () => {
            check();
            await before?.();
          },
        }
        : {}),
      fence,
      rewriteStart: async () => {
        header = await headerNow();
        return encodeHeaderPadded(header, room);
      },
    });
    return { stored, header: header! };
  }

  /**
   * After a create's file is in place, under the same hold: clears the
   * restore counts (a routine checkpoint proves the agent healthy),
   * applies retention, and remembers what this hold knows for the next
   * create.
   */
  async #afterCreate(
    ref: CheckpointRef,
    inventory: Inventory,
    lock: Lock,
    journal: JournalBatch,
  ): Promise<void> {
    if (ref.type !== "routine") await this.#markers.compact();
    else if (await this.#markers.clearCounts()) {
      journal.append("healthy", { id: ref.id });
    }
    const known = {
      items: [...inventory.items, liveItemOf(ref)],
      operations: inventory.operations,
    };
    const trash = this.#retention.auto
      ? (await this.#prune(false, ref.id, known, journal)).trash
      : known.items.filter((i) => i.area === "trash");
    if (trash && this.#store instanceof FileCheckpointStore) {
      this.#last = { fence: lock.fence, seq: ref.seq, trash };
    }
  }

  #checkType(type: CheckpointType): void {
    if (!CHECKPOINT_TYPES.includes(type)) {
      throw new CheckpointError(
        `Invalid checkpoint type ${JSON.stringify(type)}: use ${
          CHECKPOINT_TYPES.join(", ")
        }`,
        { code: "invalid_option", agentId: this.#agentId, operation: "create" },
      );
    }
  }

  #checkExtras(
    options: CreateOptions<S>,
  ): Pick<CheckpointHeader, "label" | "meta" | "operationId"> {
    const extras: Pick<CheckpointHeader, "label" | "meta" | "operationId"> = {};
    if (options.label !== undefined) {
      if (
        typeof options.label !== "string" || options.label.length > MAX_LABEL
      ) {
        throw new CheckpointError(
          `Invalid label: use a string of at most ${MAX_LABEL} characters`,
          {
            code: "invalid_option",
            agentId: this.#agentId,
            operation: "create",
          },
        );
      }
      extras.label = options.label;
    }
    if (options.meta !== undefined) {
      let size = Infinity;
      try {
        size =
          new TextEncoder().encode(JSON.stringify(options.meta)).byteLength;
      } catch { /* reported below */ }
      if (
        options.meta === null || typeof options.meta !== "object" ||
        Array.isArray(options.meta) || !(size <= MAX_META_BYTES)
      ) {
        throw new CheckpointError(
          `Invalid meta: use a JSON object of at most ${MAX_META_BYTES} bytes; put large data in the state`,
          {
            code: "invalid_option",
            agentId: this.#agentId,
            operation: "create",
          },
        );
      }
      extras.meta = JSON.parse(JSON.stringify(options.meta));
    }
    if (options.operationId !== undefined) {
      extras.operationId = validateName(options.operationId, "operation id");
    }
    return extras;
  }

  async #stateFor(given: S | undefined, operation: string): Promise<S> {
    if (given !== undefined) return given;
    if (!this.#options.collect) {
      throw new CheckpointError(
        `Cannot ${operation} a checkpoint for agent "${this.#agentId}": no state given and no collect() configured`,
        { code: "invalid_option", agentId: this.#agentId, operation },
      );
    }
    return await this.#options.collect();
  }

  /**
   * Validates, serialises, checks and hashes a state. `extras` are the
   * header fields known now (or their longest form), to leave room for
   * the header in front of the payload.
   *
   * The check for what JSON cannot hold (a walk of the whole state, a
   * third of the cost of serialising it) runs after the serialisation,
   * unless asked for first: for the file store while the payload is
   * written and hashed (fs/'s whileWriting; a streamed payload while it
   * is synced), else before the payload is stored. That is safe: a cycle
   * or a bigint makes JSON.stringify throw, and the serialiser names it;
   * what JSON would drop or mangle the check finds before anything is
   * stored.
   */
  async #encode(
    state: S,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    checkFirst = false,
  ): Promise<Prepared> {
    const verdict = await this.#validate(state);
    if (!verdict.ok) {
      throw new CheckpointError(
        `Cannot checkpoint the state of agent "${this.#agentId}": it fails validation: ${verdict.reason}`,
        { code: "invalid_state", agentId: this.#agentId, operation: "create" },
      );
    }
    const fileStore = this.#store instanceof FileCheckpointStore;
    const room = headerRoom(this.#agentId, extras);
    // Only the file store is known to keep nothing of the bytes it is
    // given, so only its buffers are reused.
    const scratch = fileStore ? this.#scratch : undefined;
    this.#scratch = undefined;
    const encoded = await encodeChunks(state, {
      encoding: this.#options.encoding ?? "json",
      autoGzipBytes: this.#options.autoGzipBytes ?? 1_048_576,
      maxBytes: this.#maxBytes,
      agentId: this.#agentId,
      check: false,
      room,
      ...(scratch ? { scratch } : {}),
      // The file store can rewrite a file's start (for the header) and
      // keeps nothing of what it writes.
      ...(fileStore ? { stream: { room, drop: true } } : {}),
    });
    const check = () => checkSerializable(state, this.#agentId);
    if (isStreamed(encoded)) {
      // Being serialised as it is written: the check waits for the write,
      // and runs while the file is synced, unless asked for first.
      if (checkFirst) {
        try {
          check();
        } catch (err) {
          encoded.cancel(err);
          throw err;
        }
      }
      return {
        kind: "streamed",
        payload: encoded,
        room,
        ...(checkFirst ? {} : { check }),
      };
    }
    const prepared: Prepared = {
      kind: "whole",
      payload: encoded,
      body: fileBody(encoded, room, fileStore),
      room,
      ...(checkFirst ? {} : { check }),
    };
    if (checkFirst) {
      try {
        check();
      } catch (err) {
        this.#recycle(prepared);
        throw err;
      }
    }
    return prepared;
  }

  /**
   * Done with a prepared payload: keeps the buffer it was encoded into
   * for the next, or stops a streamed one that was not written.
   */
  #recycle(prepared: Prepared): void {
    if (prepared.kind === "streamed") {
      prepared.payload.cancel(new Error("not written"));
      return;
    }
    const scratch = prepared.body.scratch;
    if (this.#store instanceof FileCheckpointStore && scratch) {
      this.#scratch = scratch;
    }
  }

  /** Writes one checkpoint file under the held lock and journals it. */
  async #write(
    type: CheckpointType,
    seq: number,
    prepared: Prepared,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    lock: Lock,
    journal: JournalSink = this.#journal,
  ): Promise<CheckpointRef> {
    if (prepared.kind === "streamed") {
      const { payload, room, check } = prepared;
      let header: CheckpointHeader | undefined;
      // Only the file store is given a streamed payload.
      const stored = await (this.#store as FileCheckpointStore).put(
        { id: formatCheckpointId(seq, type), seq, type },
        payload.stream,
        {
          fence: lock.fence,
          signal: lock.signal,
          rewriteStart: () => {
            const { size, sha256, stateBytes } = payload.result();
            header = this.#header(
              type,
              seq,
              { encoding: payload.encoding, size, stateBytes },
              sha256,
              extras,
              lock,
            );
            return encodeHeaderPadded(header, room);
          },
          ...(check ? { beforeCommit: check } : {}),
        },
      );
      return await this.#created(stored, header!, journal);
    }
    const { stored, header } = await this.#putWhole(
      type,
      seq,
      prepared,
      extras,
      lock.fence,
      { signal: lock.signal },
    );
    return await this.#created(stored, header, journal);
  }

  /** The header of a new checkpoint. */
  #header(
    type: CheckpointType,
    seq: number,
    payload: Pick<PayloadChunks, "encoding" | "size" | "stateBytes">,
    sha256: string,
    extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
    lock: { fence: number },
  ): CheckpointHeader {
    return {
      format: CHECKPOINT_FORMAT,
      agentId: this.#agentId,
      id: formatCheckpointId(seq, type),
      type,
      seq,
      createdAt: new Date(this.#clock.now()).toISOString(),
      stateVersion: this.#stateVersion,
      encoding: payload.encoding,
      size: payload.size,
      sha256,
      stateBytes: payload.stateBytes,
      ...extras,
      fence: lock.fence,
    };
  }

  /** The ref of a checkpoint just stored, cached and journaled. */
  async #created(
    stored: StoredCheckpoint,
    header: CheckpointHeader,
    journal: JournalSink,
  ): Promise<CheckpointRef> {
    const ref = refOf(stored, header);
    this.#refs.set(ref.id, ref);
    await journal.append("create", {
      id: ref.id,
      seq: ref.seq,
      type: ref.type,
      bytes: ref.bytes,
      sha256: ref.sha256,
      ...(ref.operationId ? { operationId: ref.operationId } : {}),
    });
    return ref;
  }

  /** The next sequence number: above everything ever stored or promised. */
  async #nextSeq(): Promise<number> {
    return seqAfter(await this.#inventory());
  }

  /**
   * Everything stored, in every area, and the ledger. With the `lock`
   * held and `last`, what the last create of this manager left, the trash
   * comes from `last` when that create's hold was the one before this
   * (see #last) instead of from a listing.
   */
  async #inventory(lock?: Lock, last?: LastCreate): Promise<Inventory> {
    const trash = last && lock && lock.fence === last.fence + 1
      ? last.trash
      : undefined;
    const [items, operations] = await Promise.all([
      trash
        ? Promise.all([
          this.#store.list("live"),
          this.#store.list("quarantine"),
        ]).then(([live, quarantine]) =>
          [...live, ...quarantine, ...trash].sort((x, y) => x.seq - y.seq)
        )
        : this.#store.list(),
      this.#ledger.all(),
    ]);
    return { items, operations };
  }

  async #locked<T>(
    fn: (lock: Lock) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const lock = await this.#acquire(signal);
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  /** Takes the agent lock, waiting for it. */
  async #acquire(signal?: AbortSignal): Promise<Lock> {
    return await acquireLock(this.#lockName, await this.#lockOptions(signal));
  }

  /** Takes the agent lock if it is free; `undefined` if it is held. */
  async #tryAcquire(): Promise<Lock | undefined> {
    const options = { ...await this.#lockOptions(), timeout: 0 };
    return (await tryAcquireLock(this.#lockName, options)) ?? undefined;
  }

  get #lockName(): string {
    return `checkpoint.${this.#agentId}`;
  }

  async #lockOptions(signal?: AbortSignal): Promise<LockOptions> {
    if (!this.#dirReady) {
      await ensureDir(this.#dir);
      this.#dirReady = true;
    }
    return {
      root: this.#root,
      timeout: this.#options.lockTimeout ?? 30_000,
      clock: this.#clock,
      purpose: `checkpoints of agent ${this.#agentId}`,
      ...(this.#options.lockKind ? { kind: this.#options.lockKind } : {}),
      ...(signal ? { signal } : {}),
    };
  }

  // ---------------------------------------------------------------- read

  /**
   * Lists live checkpoints from their headers (not verified: see
   * {@linkcode CheckpointManager.verify}), newest first. Files whose
   * header cannot be read are left out.
   *
   * @param options Only one type; at most `limit` refs.
   * @returns The refs, newest first.
   *
   * @example List the newest two
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * for (const step of [1, 2, 3]) await checkpoints.create("routine", { state: { step } });
   * const refs = await checkpoints.list({ limit: 2 });
   * assert.deepEqual(refs.map((r) => r.seq), [3, 2]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async list(
    options: { type?: CheckpointType; limit?: number } = {},
  ): Promise<CheckpointRef[]> {
    const { refs } = await this.#scan();
    const filtered = options.type
      ? refs.filter((r) => r.type === options.type)
      : refs;
    return options.limit === undefined
      ? filtered
      : filtered.slice(0, Math.max(0, options.limit));
  }

  /**
   * The newest live checkpoint (from headers, not verified).
   *
   * @param type Only this type.
   * @returns Its ref, or `undefined` when there is none.
   *
   * @example The latest recovery checkpoint
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * assert.equal(await checkpoints.latest(), undefined);
   * const ref = await checkpoints.create("recovery", { state: {} });
   * await checkpoints.create("routine", { state: {} });
   * assert.equal((await checkpoints.latest("recovery"))?.id, ref.id);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async latest(type?: CheckpointType): Promise<CheckpointRef | undefined> {
    return (await this.list(type ? { type, limit: 1 } : { limit: 1 }))[0];
  }

  #expect(item: { id: string; seq: number; type: CheckpointType }): {
    agentId: string;
    id: string;
    seq: number;
    type: CheckpointType;
  } {
    return {
      agentId: this.#agentId,
      id: item.id,
      seq: item.seq,
      type: item.type,
    };
  }

  /**
   * Live items with their refs; unreadable headers apart. Newest first.
   * `known` is a listing of the live items, lowest seq first, taken under
   * the lock still held.
   */
  async #scan(known?: StoredCheckpoint[]): Promise<{
    refs: CheckpointRef[];
    items: Map<string, StoredCheckpoint>;
    broken: Array<{ item: StoredCheckpoint; failure: CheckFailure }>;
  }> {
    const live = known
      ? known.filter((i) => i.area === "live").reverse()
      : (await this.#store.list("live")).reverse();
    const refs: CheckpointRef[] = [];
    const items = new Map<string, StoredCheckpoint>();
    const broken: Array<{ item: StoredCheckpoint; failure: CheckFailure }> = [];
    for (const item of live) {
      items.set(item.id, item);
      const cached = this.#refs.get(item.id);
      if (cached && cached.path === item.location) {
        refs.push(cached);
        continue;
      }
      try {
        const header = parseHeader(
          await this.#store.head(item),
          this.#expect(item),
        );
        const ref = refOf(item, header);
        this.#refs.set(item.id, ref);
        refs.push(ref);
      } catch (err) {
        if (isNotFound(err)) continue; // moved away meanwhile
        if (err instanceof CheckFailure) broken.push({ item, failure: err });
        else throw err;
      }
    }
    return { refs, items, broken };
  }

  /**
   * Reads a checkpoint and runs every check; throws CheckFailure for a
   * bad file, anything else for I/O trouble. `whileHashing`: see
   * #readParsed.
   */
  async #load(
    item: StoredCheckpoint,
    signal?: AbortSignal,
    whileHashing?: () => unknown,
  ): Promise<{ ref: CheckpointRef; state: S }> {
    const { ref, state } = await this.#readState(item, signal, whileHashing);
    const verdict = await this.#validate(state as S);
    if (!verdict.ok) {
      throw new CheckFailure(
        "validation",
        `fails validation: ${verdict.reason}`,
      );
    }
    return { ref, state: verdict.value };
  }

  /**
   * Reads a file, checks its header (length, version, size limit) and
   * checksum, and decodes and parses its JSON.
   *
   * A payload held whole (plain JSON up to SINGLE_WRITE_BYTES) is hashed
   * off this thread (WebCrypto, which copies the bytes first) while this
   * thread decodes and parses it: JSON.parse is pure, so parsing bytes not
   * yet verified is safe, and no verdict is given (nor migration or
   * validation run) before the checksum has passed. `whileHashing` runs
   * then too, once the header has passed its checks: work that must come
   * before the state is handed over (counting the restore) but need not
   * wait for the checksum. The file store reads such a payload into the
   * manager's scratch buffer, kept from one call to the next: a fresh
   * buffer of a few MiB costs about as much in allocation and page faults
   * as the hash. Memory for a larger payload: the file's bytes are freed
   * before the text is parsed (at most two big copies, text and state, at
   * a time).
   */
  async #readParsed(
    item: StoredCheckpoint,
    signal?: AbortSignal,
    whileHashing?: () => unknown,
  ): Promise<{ header: CheckpointHeader; state: unknown }> {
    const fileStore = this.#store instanceof FileCheckpointStore;
    const scratch = fileStore ? this.#scratch : undefined;
    this.#scratch = undefined;
    let bytes: Uint8Array | undefined;
    // Done with the file's bytes (they were copied into the text, and by
    // WebCrypto): give the scratch buffer back, or free a fresh buffer
    // now instead of at some later collection (for a large payload the
    // parse needs room for the text and the state, and a third big copy
    // is what makes a large restore's peak) and keep a scratch buffer the
    // next read of this size fits in. Only bytes the file store read for
    // this call are ours to reuse or detach.
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (scratch && bytes?.buffer === scratch.buffer) {
        this.#scratch ??= scratch;
      } else if (fileStore && bytes) {
        (bytes.buffer as ArrayBuffer).transfer(0);
        if (!this.#scratch && bytes.byteLength <= SINGLE_WRITE_BYTES) {
          this.#scratch = new Uint8Array(
            bytes.byteLength + Math.max(65_536, bytes.byteLength >> 2),
          );
        }
      } else if (scratch) this.#scratch ??= scratch;
    };
    try {
      try {
        // The JSON limit plus the header: a gzip'd payload is smaller still.
        const limit = {
          maxBytes: this.#maxBytes + MAX_HEADER_BYTES + 1,
          ...(signal ? { signal } : {}),
        };
        bytes = fileStore
          ? await (this.#store as FileCheckpointStore).get(item, {
            ...limit,
            ...(scratch ? { into: scratch } : {}),
          })
          : await this.#store.get(item, limit);
      } catch (err) {
        if ((err as { code?: string }).code === "too_large") {
          throw new CheckFailure(
            "truncated",
            `larger than maxBytes (${this.#maxBytes}) allows: raise maxBytes to read it`,
            false,
          );
        }
        throw err;
      }
      const { header, payload } = checkLength(bytes, this.#expect(item));
      if (header.stateBytes > this.#maxBytes) {
        throw new CheckFailure(
          "truncated",
          `its state is ${header.stateBytes} bytes, above maxBytes (${this.#maxBytes}): raise maxBytes to read it`,
          false,
        );
      }
      this.#checkVersion(header);
      if (
        header.encoding === "json" && payload.byteLength <= SINGLE_WRITE_BYTES
      ) {
        const sha256 = sha256HexAside(payload);
        await whileHashing?.();
        let parsed: { state: unknown } | { error: unknown };
        try {
          const text = await decodePayload(header, payload);
          release();
          parsed = { state: parseState(text) };
        } catch (error) {
          parsed = { error };
        }
        checkSha256(header, await sha256);
        if ("error" in parsed) throw parsed.error;
        return { header, state: parsed.state };
      }
      checkSha256(header, sha256Hex(payload));
      await whileHashing?.();
      const text = await decodePayload(header, payload);
      release();
      return { header, state: parseState(text) };
    } finally {
      release();
    }
  }

  /**
   * Refuses a checkpoint this program cannot read as it stands: written
   * by a newer version, or an older one without a migrate() (the file is
   * not damaged, so it is left in place).
   */
  #checkVersion(header: CheckpointHeader): void {
    const from = header.stateVersion;
    if (from > this.#stateVersion) {
      throw new CheckFailure(
        "version",
        `written with stateVersion ${from}, newer than this program's ${this.#stateVersion}: run the newer program, or set stateVersion`,
        false,
      );
    }
    if (from < this.#stateVersion && !this.#options.migrate) {
      throw new CheckFailure(
        "version",
        `written with stateVersion ${from}; this program expects ${this.#stateVersion} and has no migrate() to upgrade it`,
        false,
      );
    }
  }

  /** Reads, checks, decodes, parses and migrates; no validation. */
  async #readState(
    item: StoredCheckpoint,
    signal?: AbortSignal,
    whileHashing?: () => unknown,
  ): Promise<{ ref: CheckpointRef; state: unknown }> {
    const { header, state: parsed } = await this.#readParsed(
      item,
      signal,
      whileHashing,
    );
    let state = parsed;
    const from = header.stateVersion;
    if (from < this.#stateVersion) {
      try {
        state = await this.#options.migrate!(state, from);
      } catch (err) {
        throw new CheckFailure(
          "migration",
          `migration from stateVersion ${from} to ${this.#stateVersion} failed: ${
            messageOf(err)
          }`,
        );
      }
    }
    const ref = refOf(item, header);
    this.#refs.set(item.id, ref);
    return { ref, state };
  }

  async #validate(
    state: S,
  ): Promise<{ ok: true; value: S } | { ok: false; reason: string }> {
    let value = state;
    const schema = this.#options.schema;
    if (schema) {
      let result;
      try {
        result = await schema["~standard"].validate(state);
      } catch (err) {
        return { ok: false, reason: `the schema threw: ${messageOf(err)}` };
      }
      if (result.issues) {
        const issues = result.issues.slice(0, 5).map((issue) => {
          const path = (issue.path ?? []).map((p) =>
            typeof p === "object" && p !== null && "key" in p
              ? String(p.key)
              : String(p)
          );
          return path.length
            ? `/${path.join("/")}: ${issue.message}`
            : issue.message;
        });
        return {
          ok: false,
          reason: issues.join("; ") || "the schema reported an issue",
        };
      }
      value = result.value;
    }
    const validate = this.#options.validate;
    if (validate) {
      let verdict;
      try {
        verdict = await validate(value);
      } catch (err) {
        return { ok: false, reason: messageOf(err) };
      }
      if (verdict === false) {
        return { ok: false, reason: "validate() returned false" };
      }
      if (typeof verdict === "string") return { ok: false, reason: verdict };
    }
    return { ok: true, value };
  }

  /**
   * Reads one checkpoint and runs every check a restore runs (length,
   * checksum, format version, JSON, migration, validation), with no side
   * effects: nothing is quarantined, no restore is counted or journaled,
   * `apply` is not called, and a poisoned checkpoint is read like any
   * other. For inspecting a checkpoint (`sturdy checkpoint show`).
   *
   * @param ref The checkpoint: a ref, an id, or a sequence number as text.
   * @returns Its ref and its state, migrated and validated.
   * @throws {CheckpointError} Code `not_found` when it is not live,
   *   `invalid_id` for a malformed id; for a bad file (the message names
   *   the file and the failed check) `corrupt_checkpoint`,
   *   `unsupported_format`, `migration_failed`, `invalid_state` (fails
   *   validation) or `too_large`.
   *
   * @example Read without restoring, and see why a damaged one fails
   * ```ts
   * import { CheckpointError, openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints<{ step: number }>({ agentId: "a", root });
   * const ref = await checkpoints.create("routine", { state: { step: 1 } });
   * assert.deepEqual((await checkpoints.read("1")).state, { step: 1 });
   * await Deno.truncate(ref.path, (await Deno.stat(ref.path)).size - 1);
   * const err = await checkpoints.read(ref).catch((e) => e);
   * assert.ok(err instanceof CheckpointError);
   * assert.equal(err.code, "corrupt_checkpoint");
   * assert.match(err.message, /truncated/);
   * await Deno.stat(ref.path); // left where it was
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async read(ref: CheckpointRef | string): Promise<{
    ref: CheckpointRef;
    state: S;
  }> {
    const wanted = this.#resolveId(ref);
    const item = (await this.#store.list("live")).find((i) =>
      matchesId(i, wanted)
    );
    const notFound = () =>
      new CheckpointError(
        `Cannot read checkpoint "${wanted}" of agent "${this.#agentId}": it is not in ${this.#dir} (trashed or quarantined? see undelete())`,
        {
          code: "not_found",
          agentId: this.#agentId,
          checkpointId: wanted,
          operation: "read",
        },
      );
    if (!item) throw notFound();
    try {
      return await this.#load(item);
    } catch (err) {
      if (isNotFound(err)) throw notFound();
      if (!(err instanceof CheckFailure)) throw err;
      throw new CheckpointError(
        `Cannot read checkpoint "${item.id}" of agent "${this.#agentId}" from "${item.location}": ${err.message}`,
        {
          code: failureCode(err),
          agentId: this.#agentId,
          checkpointId: item.id,
          path: item.location,
          operation: "read",
          cause: err,
        },
      );
    }
  }

  // ---------------------------------------------------------------- restore

  /**
   * Restores the newest checkpoint that passes every check (length,
   * checksum, format version, JSON, migration, validation) and is not
   * poisoned, or the given one (falling back to older ones if it fails).
   * A file that fails is moved to `quarantine/` with a reason file, and
   * the skip is journaled. The restore is counted before `apply` is
   * called, so a checkpoint restored `poisonAfter` times without the agent
   * proving healthy (a routine checkpoint or `markHealthy()`) is skipped
   * from then on.
   *
   * @param ref The checkpoint to start from (a ref, an id, or a sequence
   *   number as text); the newest when left out.
   * @param options Signal and type filter.
   * @returns The state, its ref and what was skipped.
   * @throws {NoValidCheckpointError} When no checkpoint passes; it lists
   *   every file tried and why.
   *
   * @example Restore a given checkpoint
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints<string>({ agentId: "a", root });
   * const first = await checkpoints.create("routine", { state: "one" });
   * await checkpoints.create("routine", { state: "two" });
   * assert.equal((await checkpoints.restore()).state, "two");
   * assert.equal((await checkpoints.restore(first)).state, "one");
   * assert.equal((await checkpoints.restore("1")).state, "one");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async restore(
    ref?: CheckpointRef | string,
    options: RestoreOptions = {},
  ): Promise<RestoreResult<S>> {
    const wanted = ref === undefined ? undefined : this.#resolveId(ref);
    const fast = await this.#restoreUnlocked(wanted, options);
    const result = "state" in fast
      ? fast
      : await this.#restoreLocked(wanted, options, fast.failed);
    await this.#options.apply?.(result.state, result.ref);
    return result;
  }

  /**
   * The common case, without the agent lock: the first candidate is not
   * poisoned and passes every check. Reading needs no lock (a checkpoint
   * file never changes once written, and one moved away meanwhile reads
   * as not found). Anything else (no candidate, a poisoned one, a failed
   * check) is left to the locked path, which quarantines, records and
   * falls back; a failed check is handed over, so it is not run twice.
   */
  async #restoreUnlocked(
    wanted: string | undefined,
    options: RestoreOptions,
  ): Promise<
    RestoreResult<S> | {
      failed?: { item: StoredCheckpoint; failure: CheckFailure };
    }
  > {
    let candidates = (await this.#store.list("live")).reverse();
    if (wanted) {
      candidates = candidates.slice(
        candidates.findIndex((c) => matchesId(c, wanted)),
      );
      if (!candidates[0] || !matchesId(candidates[0], wanted)) return {};
    }
    if (options.type) {
      candidates = candidates.filter((c) => c.type === options.type);
    }
    const item = candidates[0];
    if (!item) return {};
    options.signal?.throwIfAborted();
    // The restore is counted while the payload is hashed (see
    // #readParsed): after its header passed, before any verdict. A count
    // of a file that then fails its checks counts for nothing (the file
    // is quarantined); a file left in place for a newer program (its
    // version) fails before it is counted.
    let marks: LoadedMarks | undefined;
    let counting: Promise<{ count: number; foldDue: boolean }> | undefined;
    let loaded: { ref: CheckpointRef; state: S };
    try {
      loaded = await this.#load(item, options.signal, () => {
        marks = this.#markers.load();
        if (this.#poisoned(marks, item, wanted)) throw new Poisoned();
        counting = this.#markers.record(item.id, this.#clock.now(), marks);
        counting.catch(() => {}); // awaited below unless a check fails
        return counting;
      });
    } catch (err) {
      if (err instanceof Poisoned) return {};
      if (err instanceof CheckFailure) {
        return { failed: { item, failure: err } };
      }
      if (isNotFound(err)) return {};
      throw err;
    }
    return await this.#counted(item, loaded, [], marks, counting);
  }

  /** Why `item` is poisoned, if it is and was not asked for by name. */
  #poisoned(
    markers: RestoreMarks,
    item: StoredCheckpoint,
    wanted: string | undefined,
  ): CheckFailure | undefined {
    const count = markers.counts[item.id]?.count ?? 0;
    const explicit = wanted !== undefined && matchesId(item, wanted);
    if (
      explicit || !(markers.poisoned[item.id] || count >= this.#poisonAfter)
    ) {
      return undefined;
    }
    return new CheckFailure(
      "poisoned",
      `poisoned: restored ${
        count || markers.poisoned[item.id]?.count
      } times without the agent proving healthy ` +
        `(a routine checkpoint or markHealthy()) in between`,
      false,
    );
  }

  /**
   * Counts the restore (before the state is handed over, so a crash while
   * applying it counts), unless `counting` already did, and journals it.
   */
  async #counted(
    item: StoredCheckpoint,
    loaded: { ref: CheckpointRef; state: S },
    skipped: SkippedCheckpoint[],
    unlocked?: LoadedMarks,
    counting?: Promise<{ count: number; foldDue: boolean }>,
  ): Promise<RestoreResult<S>> {
    // Without the lock, the marks read before the checks will do: a fold
    // since then makes this line count for nothing, as it would if it
    // had come just before the fold. Under the lock they are read again:
    // this very restore may have poisoned another checkpoint (a fold).
    const { count, foldDue } = await (counting ??
      this.#markers.record(item.id, this.#clock.now(), unlocked));
    await this.#journal.append("restore", {
      id: item.id,
      seq: item.seq,
      skipped: skipped.length,
      restores: count,
    });
    if (foldDue) {
      // Restores alone never fold the log (creates do): now and then one
      // does, if the lock is free this instant.
      const lock = unlocked ? await this.#tryAcquire() : undefined;
      if (lock || !unlocked) {
        try {
          await this.#markers.compact();
        } finally {
          await lock?.release();
        }
      }
    }
    return { state: loaded.state, ref: loaded.ref, skipped };
  }

  /**
   * The full restore under the agent lock: quarantine and fall back.
   * `failed` is a check the unlocked path already ran (a file's content
   * never changes, so its verdict stands while it is at the same place).
   */
  #restoreLocked(
    wanted: string | undefined,
    options: RestoreOptions,
    failed?: { item: StoredCheckpoint; failure: CheckFailure },
  ): Promise<RestoreResult<S>> {
    return this.#locked(async () => {
      const { items } = await this.#scan();
      let candidates = [...items.values()];
      if (wanted) {
        const start = candidates.findIndex((c) => matchesId(c, wanted));
        if (start < 0) {
          throw new CheckpointError(
            `Cannot restore checkpoint "${wanted}" of agent "${this.#agentId}": it is not in ${this.#dir} (trashed or quarantined? see undelete())`,
            {
              code: "not_found",
              agentId: this.#agentId,
              checkpointId: wanted,
              operation: "restore",
            },
          );
        }
        candidates = candidates.slice(start);
      }
      if (options.type) {
        candidates = candidates.filter((c) => c.type === options.type);
      }
      const markers = this.#markers.load();
      const skipped: SkippedCheckpoint[] = [];
      const tried: TriedCheckpoint[] = [];
      for (const item of candidates) {
        options.signal?.throwIfAborted();
        try {
          const poisoned = this.#poisoned(markers, item, wanted);
          if (poisoned) throw poisoned;
          if (
            failed?.item.id === item.id &&
            failed.item.location === item.location
          ) {
            throw failed.failure;
          }
          const loaded = await this.#load(item, options.signal);
          return await this.#counted(item, loaded, skipped);
        } catch (err) {
          if (!(err instanceof CheckFailure)) throw err;
          const path = await this.#setAside(
            item,
            err,
            markers.poisoned[item.id] !== undefined,
          );
          skipped.push({
            id: item.id,
            reason: err.message,
            quarantined: path !== item.location,
          });
          tried.push({ id: item.id, path, reason: err.message });
          await this.#journal.append("fallback", {
            id: item.id,
            reason: err.message,
          });
        }
      }
      throw new NoValidCheckpointError(this.#agentId, this.#dir, tried);
    }, options.signal);
  }

  /** Quarantines a bad file (or records a poisoned one); returns its path now. */
  async #setAside(
    item: StoredCheckpoint,
    failure: CheckFailure,
    alreadyPoisoned: boolean,
    journal: JournalSink = this.#journal,
  ): Promise<string> {
    const now = this.#clock.now();
    if (failure.kind === "poisoned") {
      if (!alreadyPoisoned) {
        const count = this.#markers.load().counts[item.id]?.count ?? 0;
        await this.#markers.poison(item.id, now, count);
        await journal.append("poisoned", {
          id: item.id,
          reason: failure.message,
        });
      }
      return item.location;
    }
    if (!failure.quarantine) return item.location;
    const moved = await this.#store.move(item, "quarantine", {
      at: now,
      reason: {
        format: "sturdy.quarantine/1",
        agentId: this.#agentId,
        id: item.id,
        check: failure.kind,
        reason: failure.message,
        from: item.location,
        at: new Date(now).toISOString(),
      },
    });
    this.#refs.delete(item.id);
    await journal.append("quarantine", {
      id: item.id,
      reason: failure.message,
      path: moved.location,
    });
    return moved.location;
  }

  #resolveId(ref: CheckpointRef | string): string {
    const text = typeof ref === "string" ? ref.trim() : ref?.id;
    if (typeof text === "string") {
      if (parseCheckpointId(text)) return text;
      if (/^\d{1,12}$/.test(text)) {
        // A bare sequence number: find its type among live ids later.
        const seq = Number(text);
        for (const type of CHECKPOINT_TYPES) {
          const id = formatCheckpointId(seq, type);
          if (this.#refs.has(id)) return id;
        }
        return `#${seq}`;
      }
    }
    throw new CheckpointError(
      `Invalid checkpoint id ${
        JSON.stringify(text)
      }: use an id like "000000000042.routine" or a sequence number like "42"`,
      { code: "invalid_id", agentId: this.#agentId },
    );
  }

  // ---------------------------------------------------------------- verify

  /**
   * Checks every live checkpoint fully (length, checksum, format, JSON,
   * migration, validation) without changing anything: no quarantine, no
   * restore counts.
   *
   * @returns Whether all passed, how many were checked, and the problems.
   *
   * @example A truncated file is reported, not moved
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * const ref = await checkpoints.create("routine", { state: { step: 1 } });
   * assert.deepEqual(await checkpoints.verify(), { ok: true, checked: 1, problems: [] });
   * await Deno.truncate(ref.path, (await Deno.stat(ref.path)).size - 3);
   * const report = await checkpoints.verify();
   * assert.equal(report.ok, false);
   * assert.match(report.problems[0]!.reason, /^truncated/);
   * await Deno.stat(ref.path); // still there
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async verify(): Promise<VerifyReport> {
    const problems: VerifyReport["problems"] = [];
    let checked = 0;
    for (const item of (await this.#store.list("live")).reverse()) {
      try {
        await this.#load(item);
        checked++;
      } catch (err) {
        if (isNotFound(err)) continue;
        if (!(err instanceof CheckFailure)) throw err;
        checked++;
        problems.push({
          id: item.id,
          path: item.location,
          reason: err.message,
        });
      }
    }
    return { ok: problems.length === 0, checked, problems };
  }

  // ---------------------------------------------------------------- retention

  /**
   * Plans retention without changing anything: every live checkpoint gets
   * keep or trash, with reasons. The newest checkpoints are verified
   * (length and checksum) until one passes, which is kept whatever the
   * policy.
   *
   * @returns The plan, newest first.
   *
   * @example Routine keeps the last three
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, retention: { auto: false } });
   * for (let i = 0; i < 4; i++) await checkpoints.create("routine", { state: i });
   * const plan = await checkpoints.plan();
   * assert.equal(plan.trash.length, 1);
   * assert.deepEqual(plan.decisions.at(-1)!.reasons, ["routine beyond the last 3"]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async plan(): Promise<RetentionPlan> {
    const { refs } = await this.#scan();
    return planRetention(
      await this.#candidates(refs),
      this.#retention,
      this.#clock.now(),
    );
  }

  /**
   * Applies retention: trashes (moves to `trash/`) what the plan says,
   * quarantines files whose header cannot be read, and deletes trash older
   * than `trashTtlMs`. With `dryRun` it only plans.
   *
   * @param options `dryRun` to plan only.
   * @returns The plan applied.
   *
   * @example Prune by hand
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, retention: { auto: false } });
   * for (let i = 0; i < 5; i++) await checkpoints.create("routine", { state: i });
   * assert.equal((await checkpoints.prune({ dryRun: true })).trash.length, 2);
   * assert.equal((await checkpoints.list()).length, 5);
   * await checkpoints.prune();
   * assert.equal((await checkpoints.list()).length, 3);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async prune(options: { dryRun?: boolean } = {}): Promise<RetentionPlan> {
    if (options.dryRun) return await this.plan();
    return (await this.#locked(() => this.#prune(true))).plan;
  }

  /**
   * Retention under the held lock; `knownValid` was just written. `known`
   * is an inventory taken under the same hold, brought up to date by the
   * caller (it saves listing every directory again); `journal` collects
   * the caller's journal lines.
   */
  async #prune(
    explicit: boolean,
    knownValid?: string,
    known?: Inventory,
    journal: JournalSink = this.#journal,
  ): Promise<{ plan: RetentionPlan; trash?: StoredCheckpoint[] }> {
    const { refs, items, broken } = await this.#scan(known?.items);
    const plan = planRetention(
      await this.#candidates(refs, knownValid, known?.operations),
      this.#retention,
      this.#clock.now(),
    );
    const now = this.#clock.now();
    const trashed: StoredCheckpoint[] = [];
    for (const decision of plan.decisions) {
      if (decision.action !== "trash") continue;
      const item = items.get(decision.id);
      if (!item) continue;
      // Not synced: a move lost to a power cut leaves the checkpoint live,
      // where the next prune finds it again.
      trashed.push(
        await this.#store.move(item, "trash", { at: now, durable: false }),
      );
      this.#refs.delete(item.id);
      await journal.append("trash", {
        id: item.id,
        reason: decision.reasons.join("; "),
      });
    }
    for (const { item, failure } of broken) {
      await this.#setAside(item, failure, false, journal);
    }
    const trash = known &&
      [...known.items.filter((i) => i.area === "trash"), ...trashed].sort(
        (x, y) => x.seq - y.seq,
      );
    const purged = await this.#purge(
      this.#retention.trashTtlMs,
      trash,
      journal,
    );
    if (explicit || plan.trash.length > 0 || purged.length > 0) {
      await journal.append("prune", {
        kept: plan.keep.length,
        trashed: plan.trash,
        purged: purged.map((i) => i.id),
        quarantined: broken.map((b) => b.item.id),
      });
    }
    if (!trash) return { plan };
    const gone = new Set(purged);
    return { plan, trash: trash.filter((i) => !gone.has(i)) };
  }

  async #candidates(
    refs: CheckpointRef[],
    knownValid?: string,
    ledger?: OperationRecord[],
  ): Promise<RetentionCandidate[]> {
    const operations = new Map(
      (ledger ?? await this.#ledger.all()).map((o) => [o.checkpointId, o]),
    );
    const validity = new Map<string, boolean>();
    // Find the newest checkpoint that verifies, so retention can pin it.
    for (const ref of refs) {
      if (ref.id === knownValid) {
        validity.set(ref.id, true);
        break;
      }
      const item = { ...ref, area: "live" as const, location: ref.path };
      try {
        checkFile(await this.#store.get(item), this.#expect(item));
        validity.set(ref.id, true);
        break;
      } catch (err) {
        if (err instanceof CheckFailure) validity.set(ref.id, false);
        else if (!isNotFound(err)) throw err;
      }
    }
    return refs.map((ref) => {
      const op = operations.get(ref.id);
      const valid = validity.get(ref.id);
      return {
        id: ref.id,
        seq: ref.seq,
        type: ref.type,
        createdAt: ref.createdAt,
        ...(valid !== undefined ? { valid } : {}),
        ...(op
          ? { operation: { id: op.id, name: op.name, status: op.status } }
          : {}),
      };
    });
  }

  /** Empties the trash of what is old enough; `known` lists the trash. */
  async #purge(
    olderThanMs: number,
    known?: StoredCheckpoint[],
    journal: JournalSink = this.#journal,
  ): Promise<StoredCheckpoint[]> {
    if (!Number.isFinite(olderThanMs)) return [];
    const now = this.#clock.now();
    const purged: StoredCheckpoint[] = [];
    for (const item of known ?? await this.#store.list("trash")) {
      if (now - (item.trashedAt ?? 0) < olderThanMs) continue;
      await this.#store.delete(item);
      purged.push(item);
    }
    if (purged.length > 0) {
      await journal.append("purge", { ids: purged.map((i) => i.id) });
    }
    return purged;
  }

  /**
   * Deletes trashed checkpoints for good.
   *
   * @param options Only those trashed at least `olderThan` milliseconds
   *   ago (default: all).
   * @returns The ids deleted.
   *
   * @example Empty the trash
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, retention: { routineKeepLast: 1, trashTtlMs: Infinity } });
   * await checkpoints.create("routine", { state: 1 });
   * await checkpoints.create("routine", { state: 2 });
   * assert.deepEqual(await checkpoints.purge(), ["000000000001.routine"]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async purge(options: { olderThan?: number } = {}): Promise<string[]> {
    const olderThan = options.olderThan ?? 0;
    if (!(olderThan >= 0)) {
      throw new CheckpointError(
        `Invalid olderThan ${olderThan}: use milliseconds, 0 or more`,
        { code: "invalid_option", agentId: this.#agentId, operation: "purge" },
      );
    }
    return (await this.#locked(() => this.#purge(olderThan))).map((i) => i.id);
  }

  /**
   * Brings a checkpoint back from the trash (or from quarantine, once the
   * cause is fixed) into the live set.
   *
   * @param id The checkpoint's id (or its sequence number as text).
   * @returns Its ref.
   * @throws {CheckpointError} Code `not_found` when it is in neither.
   *
   * @example Undo a prune
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, retention: { routineKeepLast: 1 } });
   * const first = await checkpoints.create("routine", { state: 1 });
   * await checkpoints.create("routine", { state: 2 });
   * assert.equal((await checkpoints.list()).length, 1);
   * await checkpoints.undelete(first.id);
   * assert.equal((await checkpoints.list()).length, 2);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async undelete(id: string): Promise<CheckpointRef> {
    const wanted = this.#resolveId(id);
    return await this.#locked(async () => {
      const matches = (await this.#store.list()).filter((i) =>
        i.area !== "live" && matchesId(i, wanted)
      );
      // Prefer the trash, then the most recently set aside.
      matches.sort((a, b) =>
        (a.area === "trash" ? 0 : 1) - (b.area === "trash" ? 0 : 1) ||
        (b.trashedAt ?? 0) - (a.trashedAt ?? 0)
      );
      const item = matches[0];
      if (!item) {
        throw new CheckpointError(
          `Cannot undelete checkpoint "${id}" of agent "${this.#agentId}": it is not in ${this.#dir}/trash or ${this.#dir}/quarantine`,
          {
            code: "not_found",
            agentId: this.#agentId,
            checkpointId: id,
            operation: "undelete",
          },
        );
      }
      const live = await this.#store.move(item, "live", {
        at: this.#clock.now(),
      });
      const header = parseHeader(
        await this.#store.head(live),
        this.#expect(live),
      );
      const ref = refOf(live, header);
      this.#refs.set(ref.id, ref);
      await this.#journal.append("undelete", { id: ref.id, from: item.area });
      return ref;
    });
  }

  // ---------------------------------------------------------------- operations

  /**
   * Begins an operation: records it open, then writes its
   * `pre_operation` checkpoint, which retention keeps while it is open.
   *
   * @param name The operation's name (`[A-Za-z0-9._-]`, 1-128 characters).
   * @param state The state to save first (else `collect()`).
   * @returns The open operation; complete it, or dispose it.
   *
   * @example Begin, fail, roll back by hand
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints<{ n: number }>({ agentId: "a", root });
   * const op = await checkpoints.beginOperation("resize", { n: 1 });
   * assert.deepEqual((await checkpoints.restore(op.ref)).state, { n: 1 });
   * await op.complete("failed");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async beginOperation(name: string, state?: S): Promise<CheckpointOperation> {
    validateName(name, "operation name");
    const payload = await this.#encode(
      await this.#stateFor(state, "begin"),
      // Its id comes with its seq, under the lock: room for the longest.
      { operationId: `op-${Number.MAX_SAFE_INTEGER}` },
      // Checked first: a refused state must not leave an open operation.
      true,
    );
    using _ = { [Symbol.dispose]: () => this.#recycle(payload) };
    const ref = await this.#locked(async (lock) => {
      const seq = await this.#nextSeq();
      const operationId = `op-${String(seq).padStart(12, "0")}`;
      const record: OperationRecord = {
        id: operationId,
        name,
        checkpointId: formatCheckpointId(seq, "pre_operation"),
        status: "open",
        startedAt: this.#clock.now(),
        pid: Deno.pid,
        host: hostname(),
      };
      // Ledger first: a crash before the checkpoint leaves an open
      // operation without one, never an unpinned pre_operation file.
      await this.#ledger.open(record);
      await this.#journal.append("operation_begin", {
        operationId,
        name,
        id: record.checkpointId,
      });
      const ref = await this.#write("pre_operation", seq, payload, {
        operationId,
      }, lock);
      if (this.#retention.auto) await this.#prune(false, ref.id);
      return ref;
    });
    return new OperationHandle(this, ref.operationId!, name, ref);
  }

  /**
   * Completes an operation by id (for one left open by a crash, or begun
   * in another process). Its checkpoint is then trashed by retention
   * after `succeeded`, or kept as a recovery checkpoint after `failed` or
   * `abandoned`. Completing it again keeps the first outcome.
   *
   * @param id The operation's id.
   * @param outcome How it ended.
   * @returns Resolves once recorded.
   * @throws {CheckpointError} Code `operation_not_found`.
   *
   * @example Complete an operation left open
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * const op = await checkpoints.beginOperation("sync", {});
   * assert.equal((await checkpoints.listOperations({ status: "open" })).length, 1);
   * await checkpoints.completeOperation(op.id, "abandoned");
   * assert.equal((await checkpoints.listOperations({ status: "open" })).length, 0);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async completeOperation(
    id: string,
    outcome: OperationOutcome = "succeeded",
  ): Promise<void> {
    if (!["succeeded", "failed", "abandoned"].includes(outcome)) {
      throw new CheckpointError(
        `Invalid outcome ${
          JSON.stringify(outcome)
        }: use "succeeded", "failed" or "abandoned"`,
        {
          code: "invalid_option",
          agentId: this.#agentId,
          operation: "completeOperation",
        },
      );
    }
    await this.#locked(async () => {
      const record = await this.#ledger.complete(
        id,
        outcome,
        this.#clock.now(),
      );
      if (!record) {
        throw new CheckpointError(
          `Cannot complete operation "${id}" of agent "${this.#agentId}": no such operation in ${this.#dir}/operations.json`,
          {
            code: "operation_not_found",
            agentId: this.#agentId,
            operation: "completeOperation",
          },
        );
      }
      await this.#journal.append("operation_complete", {
        operationId: id,
        outcome: record.status,
        id: record.checkpointId,
      });
      if (this.#retention.auto) await this.#prune(false);
    });
  }

  /**
   * Lists recorded operations, oldest first: every open one (including
   * those left open by a crash) and the last 100 completed.
   *
   * @param options Only those with this status.
   * @returns The operation records.
   *
   * @example No operations yet
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * assert.deepEqual(await checkpoints.listOperations(), []);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async listOperations(
    options: { status?: OperationRecord["status"] } = {},
  ): Promise<OperationRecord[]> {
    const all = await this.#ledger.all();
    return options.status
      ? all.filter((o) => o.status === options.status)
      : all;
  }

  /**
   * Runs `fn` as an operation: saves a `pre_operation` checkpoint first;
   * if `fn` throws, restores that checkpoint (calling `apply`), completes
   * the operation as `failed` and rethrows; if it returns, completes it as
   * `succeeded`.
   *
   * @param fn The risky work; it gets the open operation.
   * @param options The operation's name and the state to save.
   * @returns What `fn` returns.
   * @throws What `fn` threw; `CheckpointError` code `rollback_failed`
   *   (with both errors) if the rollback failed too.
   *
   * @example Roll back on failure
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * let state = { balance: 10 };
   * await using checkpoints = await openCheckpoints<typeof state>({
   *   agentId: "bank", root,
   *   collect: () => state,
   *   apply: (restored) => { state = restored; },
   * });
   * await assert.rejects(checkpoints.guard(async () => {
   *   state = { balance: -5 };
   *   throw new Error("transfer failed");
   * }), /transfer failed/);
   * assert.deepEqual(state, { balance: 10 });
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async guard<T>(
    fn: (operation: CheckpointOperation) => Promise<T> | T,
    options: GuardOptions<S> = {},
  ): Promise<T> {
    const op = await this.beginOperation(
      options.name ?? "guard",
      options.state,
    );
    let result: T;
    try {
      result = await fn(op);
    } catch (err) {
      try {
        await this.restore(op.ref);
      } catch (rollbackError) {
        await op.complete("failed").catch(() => {});
        throw new CheckpointError(
          `Operation "${op.name}" (${op.id}) of agent "${this.#agentId}" failed (${
            messageOf(err)
          }), ` +
            `and rolling back to checkpoint ${op.ref.id} failed too (${
              messageOf(rollbackError)
            }); ` +
            `restore by hand with restore("${op.ref.id}")`,
          {
            code: "rollback_failed",
            agentId: this.#agentId,
            checkpointId: op.ref.id,
            operation: "guard",
            cause: new AggregateError(
              [err, rollbackError],
              "operation and rollback failed",
            ),
          },
        );
      }
      await op.complete("failed");
      throw err;
    }
    await op.complete("succeeded");
    return result;
  }

  // ---------------------------------------------------------------- health, metrics, drift

  /**
   * Records that the agent is healthy after a restore, so the restored
   * checkpoint's restore count starts over (poison detection). A routine
   * `create()` does this too. Poisoned checkpoints stay poisoned.
   *
   * @returns Resolves once recorded.
   *
   * @example Prove health after a restore
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, poisonAfter: 1 });
   * await checkpoints.create("recovery", { state: 1 });
   * await checkpoints.restore();
   * await checkpoints.markHealthy();
   * await checkpoints.restore(); // not poisoned: the count started over
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async markHealthy(): Promise<void> {
    await this.#locked(async () => {
      if (await this.#markers.clearCounts()) {
        await this.#journal.append("healthy", {});
      }
    });
  }

  /**
   * Records a metric sample (e.g. step time, tokens) in
   * `<dir>/metrics.jsonl`, for the drift rules.
   *
   * @param name The metric's name (`[A-Za-z0-9._-]`, 1-128 characters).
   * @param value A finite number.
   * @returns Resolves once appended.
   *
   * @example Record a metric
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * await checkpoints.recordMetric("tokens", 1200);
   * const text = await Deno.readTextFile(`${checkpoints.dir}/metrics.jsonl`);
   * assert.equal(JSON.parse(text).value, 1200);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async recordMetric(name: string, value: number): Promise<void> {
    validateName(name, "metric name");
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new CheckpointError(
        `Invalid value ${value} for metric "${name}": use a finite number`,
        {
          code: "invalid_option",
          agentId: this.#agentId,
          operation: "recordMetric",
        },
      );
    }
    if (!this.#dirReady) {
      await ensureDir(this.#dir);
      this.#dirReady = true;
    }
    await appendJsonl(
      join(this.#dir, "metrics.jsonl"),
      { name, value, at: this.#clock.now() },
      { durability: "none" },
    );
  }

  /**
   * Evaluates drift: gathers the latest checkpoint (fully checked), the
   * one before it, the history, recorded metrics and open operations, and
   * runs the built-in rules and custom `detectors` over them. Read-only.
   *
   * @returns The report: whether anything drifted, the worst level, and
   *   every finding with what changed and by how much.
   *
   * @example A removed key is drift
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * await checkpoints.create("routine", { state: { plan: "x", step: 1 } });
   * await checkpoints.create("routine", { state: { step: 2 } });
   * const report = await checkpoints.detectDrift();
   * assert.equal(report.drifted, true);
   * assert.ok(report.findings.some((f) => /plan/.test(f.message)));
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async detectDrift(): Promise<DriftReport> {
    const history = await this.list();
    const input: DriftInput = {
      now: this.#clock.now(),
      history,
      metrics: await this.#readMetrics(),
      openOperations: (await this.listOperations({ status: "open" })).map((
        o,
      ) => ({
        id: o.id,
        name: o.name,
        startedAt: o.startedAt,
      })),
      ...(this.#expectedIntervalMs !== undefined
        ? { expectedIntervalMs: this.#expectedIntervalMs }
        : {}),
    };
    const [latest, previous] = history;
    if (latest) {
      const item = { ...latest, area: "live" as const, location: latest.path };
      try {
        const { state } = await this.#readState(item);
        const verdict = await this.#validate(state as S);
        input.latest = {
          ref: latest,
          verified: true,
          state: verdict.ok ? verdict.value : state,
          valid: verdict.ok,
          ...(verdict.ok ? {} : { validationError: verdict.reason }),
        };
      } catch (err) {
        if (!(err instanceof CheckFailure)) throw err;
        input.latest = { ref: latest, verified: false, reason: err.message };
      }
    }
    if (previous) {
      const item = {
        ...previous,
        area: "live" as const,
        location: previous.path,
      };
      try {
        input.previous = {
          ref: previous,
          state: (await this.#readState(item)).state,
        };
      } catch (err) {
        if (!(err instanceof CheckFailure)) throw err;
        input.previous = { ref: previous };
      }
    }
    return await evaluateDrift(input, {
      ...this.#options.drift,
      ...(this.#options.detectors
        ? { detectors: this.#options.detectors }
        : {}),
    });
  }

  async #readMetrics(): Promise<DriftInput["metrics"]> {
    try {
      const { records } = await readJsonl<
        { name: unknown; value: unknown; at: unknown }
      >(
        join(this.#dir, "metrics.jsonl"),
        { onCorrupt: "skip" },
      );
      return records
        .filter((r) =>
          r !== null && typeof r === "object" && typeof r.name === "string" &&
          typeof r.value === "number" && typeof r.at === "number"
        )
        .slice(-MAX_METRICS_READ) as DriftInput["metrics"];
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  /**
   * Reads the journal: create, restore, fallback, quarantine, poisoned,
   * trash, prune, purge, undelete and operation events, oldest first.
   *
   * @param options Only the newest `limit` events.
   * @returns The events.
   *
   * @example The journal of a create
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using checkpoints = await openCheckpoints({ agentId: "a", root });
   * await checkpoints.create("routine", { state: 1 });
   * assert.deepEqual((await checkpoints.journal()).map((e) => e.event), ["create"]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  journal(options: { limit?: number } = {}): Promise<JournalEvent[]> {
    return this.#journal.read(options.limit);
  }

  // ---------------------------------------------------------------- schedule

  /**
   * Creates a routine checkpoint from `collect()` every `intervalMs`
   * (runs never overlap; a failed one is reported to `onError` and the
   * schedule goes on). Sets the expected interval for the staleness rule.
   *
   * @param intervalMs Milliseconds between checkpoints.
   * @param options Error hook and signal.
   * @returns The schedule; dispose or `stop()` it.
   *
   * @example Checkpoint on a schedule
   * ```ts
   * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * let step = 0;
   * await using checkpoints = await openCheckpoints({ agentId: "a", root, collect: () => ({ step: ++step }) });
   * {
   *   await using auto = checkpoints.autoCheckpoint(10);
   *   while (auto.taken < 2) await new Promise((r) => setTimeout(r, 5));
   * }
   * assert.ok((await checkpoints.list()).length >= 2);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  autoCheckpoint(
    intervalMs: number,
    options: AutoCheckpointOptions = {},
  ): AutoCheckpointHandle {
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
      throw new CheckpointError(
        `Invalid interval ${intervalMs}: use milliseconds above 0`,
        {
          code: "invalid_option",
          agentId: this.#agentId,
          operation: "autoCheckpoint",
        },
      );
    }
    if (!this.#options.collect) {
      throw new CheckpointError(
        `Cannot checkpoint agent "${this.#agentId}" automatically: configure collect() to give its state`,
        {
          code: "invalid_option",
          agentId: this.#agentId,
          operation: "autoCheckpoint",
        },
      );
    }
    this.#expectedIntervalMs = intervalMs;
    const auto = new AutoCheckpoint(
      intervalMs,
      this.#clock,
      (signal) => this.create("routine", { signal }),
      options,
      () => this.#autos.delete(auto),
    );
    this.#autos.add(auto);
    return auto;
  }

  /**
   * Stops every autoCheckpoint schedule and waits for them.
   *
   * @returns Resolves once stopped.
   */
  async close(): Promise<void> {
    await Promise.all([...this.#autos].map((a) => a.stop()));
  }

  /**
   * Same as {@linkcode CheckpointManager.close}.
   *
   * @returns Resolves once stopped.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class OperationHandle<S> implements CheckpointOperation {
  readonly #manager: CheckpointManager<S>;
  readonly id: string;
  readonly name: string;
  readonly ref: CheckpointRef;
  #completed = false;

  constructor(
    manager: CheckpointManager<S>,
    id: string,
    name: string,
    ref: CheckpointRef,
  ) {
    this.#manager = manager;
    this.id = id;
    this.name = name;
    this.ref = ref;
  }

  get completed(): boolean {
    return this.#completed;
  }

  async complete(outcome: OperationOutcome = "succeeded"): Promise<void> {
    if (this.#completed) return;
    await this.#manager.completeOperation(this.id, outcome);
    this.#completed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Leaving scope without an outcome: we cannot tell success from an
    // exception here, so record it honestly as abandoned (kept as a
    // recovery checkpoint). Only a crash leaves an operation open.
    if (!this.#completed) await this.complete("abandoned");
  }
}

function refOf(
  item: StoredCheckpoint,
  header: CheckpointHeader,
): CheckpointRef {
  return {
    id: header.id,
    seq: header.seq,
    type: header.type,
    path: item.location,
    createdAt: header.createdAt,
    bytes: header.size,
    sha256: header.sha256,
    encoding: header.encoding,
    stateBytes: header.stateBytes,
    stateVersion: header.stateVersion,
    ...(header.label !== undefined ? { label: header.label } : {}),
    ...(header.operationId !== undefined
      ? { operationId: header.operationId }
      : {}),
    ...(header.meta !== undefined ? { meta: header.meta } : {}),
  };
}

/** A state ready to store: its payload held whole, or being streamed. */
type Prepared = WholePrepared | StreamedPrepared;

/** A payload held whole: laid out, its hash under way, its state checked. */
interface WholePrepared {
  kind: "whole";
  payload: PayloadChunks;
  body: FileBody;
  /** The bytes kept for the header line in front of the payload. */
  room: number;
  /** The check for what JSON cannot hold, when it runs at the write. */
  check?: () => void;
}

/** A payload serialised as it is written (see encodeChunks). */
interface StreamedPrepared {
  kind: "streamed";
  payload: StreamedPayload;
  /** The bytes kept for the header line. */
  room: number;
  /** The check for what JSON cannot hold, when it runs at the write. */
  check?: () => void;
}

/** What a create knew at the end of its hold of the agent lock. */
interface LastCreate {
  /** The fence of that hold. */
  fence: number;
  /** The seq it wrote. */
  seq: number;
  /** The trash as it left it. */
  trash: StoredCheckpoint[];
}

/** A create's prediction of its seq and fence failed: write again. */
class Mispredicted extends CheckpointError {
  constructor() {
    super("the agent lock was held by another since the last create", {
      code: "mispredicted",
    });
  }
}

/** The unlocked restore's candidate is poisoned: leave it to the locked path. */
class Poisoned extends Error {}

/** Everything one agent has stored, as listed under its lock. */
interface Inventory {
  /** Every area's items, lowest seq first. */
  items: StoredCheckpoint[];
  /** The operation ledger. */
  operations: OperationRecord[];
}

/** The next sequence number: above everything ever stored or promised. */
function seqAfter(inventory: Inventory): number {
  let max = 0;
  for (const item of inventory.items) max = Math.max(max, item.seq);
  for (const op of inventory.operations) {
    const parsed = parseCheckpointId(op.checkpointId);
    if (parsed) max = Math.max(max, parsed.seq);
  }
  return max + 1;
}

/** The live item a ref just written names. */
function liveItemOf(ref: CheckpointRef): StoredCheckpoint {
  return {
    id: ref.id,
    seq: ref.seq,
    type: ref.type,
    area: "live",
    location: ref.path,
  };
}

/** Where journal lines go: the journal itself, or a call's batch. */
interface JournalSink {
  append(
    event: JournalEventKind,
    fields: Omit<JournalEvent, "at" | "event">,
  ): void | Promise<void>;
}

/**
 * Journal lines of one locked call, collected in order and appended with
 * one write when the call ends, so before the lock is released. A call
 * that fails still writes the lines of what it did.
 */
class JournalBatch implements JournalSink {
  readonly #journal: Journal;
  readonly #lines: JournalEvent[] = [];

  private constructor(journal: Journal) {
    this.#journal = journal;
  }

  /** Runs `fn`, then appends every line it added. */
  static async run<T>(
    journal: Journal,
    fn: (batch: JournalBatch) => Promise<T>,
  ): Promise<T> {
    const batch = new JournalBatch(journal);
    let result: T;
    try {
      result = await fn(batch);
    } catch (err) {
      // The first failure is the one to see.
      await batch.#flush().catch(() => {});
      throw err;
    }
    await batch.#flush();
    return result;
  }

  /** Adds one line, timed now. */
  append(
    event: JournalEventKind,
    fields: Omit<JournalEvent, "at" | "event">,
  ): void {
    this.#lines.push(this.#journal.record(event, fields));
  }

  #flush(): Promise<void> {
    return this.#journal.appendAll(this.#lines.splice(0));
  }
}

/** Whether `item` is the one a resolved id (or `#<seq>`) names. */
function matchesId(item: { id: string; seq: number }, wanted: string): boolean {
  return item.id === wanted || `#${item.seq}` === wanted;
}

/** The {@linkcode CheckpointError} code for a failed check. */
function failureCode(failure: CheckFailure): string {
  switch (failure.kind) {
    case "format":
    case "version":
      return "unsupported_format";
    case "migration":
      return "migration_failed";
    case "validation":
      return "invalid_state";
    case "truncated":
      // Not the file's fault: it is larger than this manager may read.
      return failure.quarantine ? "corrupt_checkpoint" : "too_large";
    default:
      return "corrupt_checkpoint";
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates a {@linkcode CheckpointManager}. Nothing is written until the
 * first change (reading an agent that has no checkpoints creates nothing).
 *
 * @typeParam S The state's type.
 * @param options As for {@linkcode CheckpointManager}.
 * @returns The manager.
 *
 * @example Open, save, restore
 * ```ts
 * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints<{ step: number }>({ agentId: "planner", root });
 * await checkpoints.create("routine", { state: { step: 7 } });
 * assert.equal((await checkpoints.restore()).state.step, 7);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function openCheckpoints<S = unknown>(
  options: CheckpointManagerOptions<S>,
): Promise<CheckpointManager<S>> {
  return await Promise.resolve(new CheckpointManager<S>(options));
}
