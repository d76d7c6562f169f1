// Where checkpoint files live, behind a small interface so a store for
// several machines (PostgreSQL, with the fence checked in the same
// transaction as the insert) can replace the file store later.
//
// Invariants of the file store:
// - A live checkpoint appears whole or not at all (fs/'s durable atomic
//   replace: temp file, fsync, rename, fsync the directory).
// - Nothing is ever overwritten: checkpoint ids are never reused, a
//   quarantined file gets a fresh suffix if its name is taken, and moves
//   refuse an existing target.
// - Every path is built from a validated agent directory and a parsed id,
//   so nothing lands outside `<root>/checkpoints/<agent>/`.

import { join } from "node:path";
import {
  ensureDir,
  isNotFound,
  listDir,
  move,
  readBytes,
  remove,
  writeBytes,
  writeJson,
  writeStream,
} from "../fs/mod.ts";
import { CheckpointError } from "./errors.ts";
import { MAX_HEADER_BYTES } from "./_format.ts";
import type { CheckpointType } from "./types.ts";
import { CHECKPOINT_TYPES } from "./types.ts";

/** Where a stored checkpoint is: in use, soft-deleted, or set aside as bad. */
export type CheckpointArea = "live" | "trash" | "quarantine";

/** A checkpoint as a store knows it, from its name alone (no reading). */
export interface StoredCheckpoint {
  /** The checkpoint's id, e.g. `"000000000042.routine"`. */
  id: string;
  /** Its sequence number. */
  seq: number;
  /** Its type. */
  type: CheckpointType;
  /** Which area it is in. */
  area: CheckpointArea;
  /** Where it is (a file path for the file store). */
  location: string;
  /** When it was moved to the trash (milliseconds since the epoch). */
  trashedAt?: number;
}

/** Options of {@linkcode CheckpointStore.put}. */
export interface PutOptions {
  /**
   * The fencing token of the agent lock held by the writer. A shared store
   * refuses a put whose fence is lower than one it has seen; the file
   * store records it in the header instead, and relies on the lock.
   */
  fence?: number;
  /** Cancels the write; nothing becomes visible. */
  signal?: AbortSignal;
}

/** Options of {@linkcode FileCheckpointStore.put}. */
export interface FilePutOptions extends PutOptions {
  /**
   * A last step (a check, or taking the lock the file must be published
   * under), run once the data is in its temp file while that file is
   * synced; if it throws, nothing becomes visible and `put` rejects with
   * its error (fs/'s `beforeCommit`).
   */
  beforeCommit?: () => void | Promise<void>;
  /**
   * Work that must succeed before the file becomes visible but needs none
   * of it written (a check of the state, taking the lock): started as the
   * data is written, run alongside the write and the sync (fs/'s
   * `whileWriting`).
   */
  whileWriting?: () => void | Promise<void>;
  /**
   * Bytes that overwrite the start of the file once all of `data` is
   * written, before it is synced: the header line of a payload streamed
   * as it is made, whose size and checksum are known only at its end
   * (fs/'s `rewriteStart`), or of a payload written while its checksum
   * is computed.
   */
  rewriteStart?: () => Uint8Array | Promise<Uint8Array>;
}

/** Options of {@linkcode FileCheckpointStore.get}. */
export interface FileGetOptions {
  /** The largest file to read, in bytes. */
  maxBytes?: number;
  /** Stops the read. */
  signal?: AbortSignal;
  /**
   * A buffer to read into when the file fits in it with a byte to spare
   * (fs/'s `readBytes` `into`); the bytes returned are then a view of it.
   */
  into?: Uint8Array;
}

/**
 * Storage for one agent's checkpoint files. Implementations must make a
 * put appear whole or not at all and must never overwrite a stored file.
 *
 * @example Use the file store directly
 * ```ts
 * import { FileCheckpointStore } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = new FileCheckpointStore(dir);
 * const entry = { id: "000000000001.routine", seq: 1, type: "routine" as const };
 * await store.put(entry, new TextEncoder().encode("{}\n{}"));
 * const [item] = await store.list("live");
 * assert.equal(item!.id, entry.id);
 * assert.equal(new TextDecoder().decode(await store.get(item!)), "{}\n{}");
 * const trashed = await store.move(item!, "trash", { at: 1000 });
 * assert.equal(trashed.trashedAt, 1000);
 * assert.deepEqual(await store.list("live"), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface CheckpointStore {
  /**
   * Stores a new checkpoint. Its id must not exist in any area.
   *
   * @param entry The id, seq and type.
   * @param data The whole file, as bytes or a stream.
   * @param options Fence and signal.
   * @returns Where it was stored.
   */
  put(
    entry: { id: string; seq: number; type: CheckpointType },
    data: Uint8Array | ReadableStream<Uint8Array>,
    options?: PutOptions,
  ): Promise<StoredCheckpoint>;
  /**
   * Reads a whole stored file.
   *
   * @param item What to read.
   * @param options Size limit and signal.
   * @returns Its bytes.
   */
  get(
    item: StoredCheckpoint,
    options?: { maxBytes?: number; signal?: AbortSignal },
  ): Promise<Uint8Array>;
  /**
   * Reads at least the first line of a stored file (at most 64 KiB).
   *
   * @param item What to read.
   * @returns The first bytes of the file.
   */
  head(item: StoredCheckpoint): Promise<Uint8Array>;
  /**
   * Lists stored checkpoints by their names, lowest seq first.
   *
   * @param area Only this area; all areas when left out.
   * @returns The checkpoints found.
   */
  list(area?: CheckpointArea): Promise<StoredCheckpoint[]>;
  /**
   * Moves a checkpoint to another area, never overwriting anything.
   *
   * @param item What to move.
   * @param to The area to move it to.
   * @param options When (for the trash), a reason record kept beside
   *   a quarantined file, and whether the move must survive a power loss
   *   once it returns (`durable`, the default); retention passes `false`
   *   for moves to the trash: one lost to a power cut leaves the
   *   checkpoint live, where the next prune finds it again.
   * @returns Where it is now.
   */
  move(
    item: StoredCheckpoint,
    to: CheckpointArea,
    options: {
      at: number;
      reason?: Record<string, unknown>;
      durable?: boolean;
    },
  ): Promise<StoredCheckpoint>;
  /**
   * Deletes a stored checkpoint for good (used to empty the trash).
   *
   * @param item What to delete.
   * @returns Resolves once it is gone.
   */
  delete(item: StoredCheckpoint): Promise<void>;
}

const SEQ_DIGITS = 12;
const ID_PATTERN = /^(\d{12})\.(routine|pre_operation|recovery)$/;

/** Formats the id of checkpoint `seq` of type `type`. */
export function formatCheckpointId(seq: number, type: CheckpointType): string {
  return `${String(seq).padStart(SEQ_DIGITS, "0")}.${type}`;
}

/** Parses a checkpoint id; `undefined` if it is not one. */
export function parseCheckpointId(
  id: string,
): { seq: number; type: CheckpointType } | undefined {
  const match = ID_PATTERN.exec(id);
  if (!match) return undefined;
  return { seq: Number(match[1]), type: match[2] as CheckpointType };
}

const TRASH_PATTERN =
  /^(\d{12}\.(?:routine|pre_operation|recovery))\.(\d+)\.ckpt$/;
const QUARANTINE_PATTERN =
  /^(\d{12}\.(?:routine|pre_operation|recovery))(?:\.(\d+))?\.ckpt$/;

/**
 * The default store: one file per checkpoint under an agent directory.
 * Live files are `<dir>/<type>/<seq>.ckpt`; the trash holds
 * `<dir>/trash/<seq>.<type>.<trashedAt>.ckpt`; bad files are set aside as
 * `<dir>/quarantine/<seq>.<type>[.<n>].ckpt` with a `.reason.json` beside.
 *
 * @example Put and list
 * ```ts
 * import { FileCheckpointStore } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = new FileCheckpointStore(dir);
 * const stored = await store.put(
 *   { id: "000000000007.recovery", seq: 7, type: "recovery" },
 *   new Uint8Array([123, 125, 10]),
 * );
 * assert.equal(stored.location, `${dir}/recovery/000000000007.ckpt`);
 * assert.equal((await store.list()).length, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly #dir: string;
  readonly #ensured = new Set<string>();

  /**
   * Creates a store over an agent directory (created when first written).
   *
   * @param dir The agent's directory, e.g. `.sturdy/checkpoints/planner`.
   */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The agent directory. */
  get dir(): string {
    return this.#dir;
  }

  async #ensure(path: string): Promise<void> {
    if (this.#ensured.has(path)) return;
    await ensureDir(path);
    this.#ensured.add(path);
  }

  #areaDir(area: CheckpointArea): string {
    return join(this.#dir, area);
  }

  #livePath(seq: number, type: CheckpointType): string {
    return join(
      this.#dir,
      type,
      `${String(seq).padStart(SEQ_DIGITS, "0")}.ckpt`,
    );
  }

  /**
   * Stores a new checkpoint file with fs/'s durable atomic replace.
   *
   * @param entry The id, seq and type.
   * @param data The whole file, as bytes or a stream.
   * @param options Fence (recorded in the header by the caller), signal,
   *   a last step before the file becomes visible, and bytes to rewrite
   *   its start with.
   * @returns Where it was stored.
   */
  async put(
    entry: { id: string; seq: number; type: CheckpointType },
    data: Uint8Array | ReadableStream<Uint8Array>,
    options?: FilePutOptions,
  ): Promise<StoredCheckpoint> {
    checkEntry(entry);
    const location = this.#livePath(entry.seq, entry.type);
    await this.#ensure(join(this.#dir, entry.type));
    const io = {
      ...(options?.signal ? { signal: options.signal } : {}),
      ...(options?.beforeCommit ? { beforeCommit: options.beforeCommit } : {}),
      ...(options?.whileWriting ? { whileWriting: options.whileWriting } : {}),
      ...(options?.rewriteStart ? { rewriteStart: options.rewriteStart } : {}),
    };
    // Bytes in memory go down in one write (fs/ may retry it whole); a
    // stream is read once, and fs/ retries a failure before its first
    // chunk only.
    if (data instanceof Uint8Array) await writeBytes(location, data, io);
    else await writeStream(location, data, io);
    return {
      id: entry.id,
      seq: entry.seq,
      type: entry.type,
      area: "live",
      location,
    };
  }

  get(
    item: StoredCheckpoint,
    options?: FileGetOptions,
  ): Promise<Uint8Array> {
    return readBytes(item.location, {
      ...(options?.maxBytes !== undefined
        ? { maxBytes: options.maxBytes }
        : {}),
      ...(options?.signal ? { signal: options.signal } : {}),
      ...(options?.into ? { into: options.into } : {}),
    });
  }

  async head(item: StoredCheckpoint): Promise<Uint8Array> {
    using file = await Deno.open(item.location, { read: true });
    const buffer = new Uint8Array(MAX_HEADER_BYTES);
    let filled = 0;
    while (filled < buffer.byteLength) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      const start = filled;
      filled += n;
      // Stop at the first newline: that is all a header needs.
      if (buffer.subarray(start, filled).includes(0x0a)) break;
    }
    return buffer.subarray(0, filled);
  }

  async list(area?: CheckpointArea): Promise<StoredCheckpoint[]> {
    const areas: CheckpointArea[] = area
      ? [area]
      : ["live", "trash", "quarantine"];
    // Which of the five directories exist, from one listing of the agent
    // directory: most agents have one or two, and each missing one would
    // cost a failed call (an error built and thrown).
    const present = subdirectories(this.#dir);
    const groups: StoredCheckpoint[][] = [];
    for (const a of areas) {
      if (a === "live") {
        for (const type of CHECKPOINT_TYPES) {
          if (present?.has(type) === false) continue;
          groups.push(await this.#listLive(type));
        }
      } else if (present?.has(a) !== false) {
        groups.push(await this.#listArea(a));
      }
    }
    return groups.flat().sort((x, y) => x.seq - y.seq);
  }

  async #listLive(type: CheckpointType): Promise<StoredCheckpoint[]> {
    const found: StoredCheckpoint[] = [];
    for (const name of await names(join(this.#dir, type))) {
      const match = /^(\d{12})\.ckpt$/.exec(name);
      if (!match) continue;
      const seq = Number(match[1]);
      found.push({
        id: formatCheckpointId(seq, type),
        seq,
        type,
        area: "live",
        location: join(this.#dir, type, name),
      });
    }
    return found;
  }

  async #listArea(a: "trash" | "quarantine"): Promise<StoredCheckpoint[]> {
    const found: StoredCheckpoint[] = [];
    const pattern = a === "trash" ? TRASH_PATTERN : QUARANTINE_PATTERN;
    for (const name of await names(this.#areaDir(a))) {
      const match = pattern.exec(name);
      if (!match) continue;
      const parsed = parseCheckpointId(match[1]!)!;
      found.push({
        id: match[1]!,
        ...parsed,
        area: a,
        location: join(this.#areaDir(a), name),
        ...(a === "trash" ? { trashedAt: Number(match[2]) } : {}),
      });
    }
    return found;
  }

  async move(
    item: StoredCheckpoint,
    to: CheckpointArea,
    options: {
      at: number;
      reason?: Record<string, unknown>;
      durable?: boolean;
    },
  ): Promise<StoredCheckpoint> {
    const base = { id: item.id, seq: item.seq, type: item.type };
    const durable = { durable: options.durable ?? true };
    if (to === "live") {
      const location = this.#livePath(item.seq, item.type);
      await this.#ensure(join(this.#dir, item.type));
      await move(item.location, location, durable);
      return { ...base, area: "live", location };
    }
    const dir = this.#areaDir(to);
    await this.#ensure(dir);
    if (to === "trash") {
      const at = Math.max(0, Math.floor(options.at));
      const location = join(dir, `${item.id}.${at}.ckpt`);
      if (!durable.durable && renameFreshSync(item.location, location)) {
        return { ...base, area: "trash", location, trashedAt: at };
      }
      await move(item.location, location, durable);
      return { ...base, area: "trash", location, trashedAt: at };
    }
    // Quarantine: never overwrite earlier evidence; take the next free name.
    for (let n = 0;; n++) {
      const stem = n === 0 ? item.id : `${item.id}.${n}`;
      const location = join(dir, `${stem}.ckpt`);
      try {
        await move(item.location, location, durable);
      } catch (err) {
        if ((err as { code?: string }).code === "already_exists" && n < 1000) {
          continue;
        }
        throw err;
      }
      if (options.reason) {
        await writeJson(join(dir, `${stem}.reason.json`), options.reason);
      }
      return { ...base, area: "quarantine", location };
    }
  }

  async delete(item: StoredCheckpoint): Promise<void> {
    await remove(item.location, { missingOk: true });
  }
}

/**
 * Renames `from` to a `to` that does not exist yet, with synchronous
 * calls (see names() for why); `false` when that did not work out, for
 * fs/'s move to do it (or to report why not) instead.
 */
function renameFreshSync(from: string, to: string): boolean {
  try {
    Deno.lstatSync(to);
    return false; // taken: move() refuses it with a typed error
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) return false;
  }
  try {
    Deno.renameSync(from, to);
    return true;
  } catch {
    return false;
  }
}

function checkEntry(
  entry: { id: string; seq: number; type: CheckpointType },
): void {
  const parsed = parseCheckpointId(entry.id);
  if (!parsed || parsed.seq !== entry.seq || parsed.type !== entry.type) {
    throw new CheckpointError(
      `Invalid checkpoint entry ${JSON.stringify(entry)}: the id must be ` +
        `the 12-digit seq and the type, e.g. "000000000042.routine"`,
      { code: "invalid_id", operation: "put" },
    );
  }
}

/**
 * The names of the directories in `dir` (none when it does not exist), or
 * `undefined` when it cannot be read: then every one is tried.
 */
function subdirectories(dir: string): Set<string> | undefined {
  try {
    const found = new Set<string>();
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory || entry.isSymlink) found.add(entry.name);
    }
    return found;
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? new Set() : undefined;
  }
}

/**
 * The names of the files in `dir`; none when it does not exist.
 *
 * Read with synchronous calls: a create lists up to five directories
 * under the agent lock and a restore three, and each async call costs
 * 50–100 µs of event-loop round trip here, against a few microseconds for
 * the system calls themselves (the price, as for lock/'s metadata steps: a
 * hung file system blocks the event loop). Any failure other than a
 * missing directory is left to fs/'s listDir, which retries transient
 * errors and reports a typed one.
 */
async function names(dir: string): Promise<string[]> {
  try {
    const found: string[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile) found.push(entry.name);
    }
    return found;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
  }
  try {
    return (await listDir(dir)).filter((e) => e.isFile).map((e) => e.name);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
