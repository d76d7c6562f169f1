// The plain data the checkpoint manager hands out and takes in. Everything
// here is JSON-friendly so the CLI can print it and tests can compare it.

/**
 * The kind of a checkpoint, which decides how retention treats it:
 * `routine` (the agent's regular snapshots: the last few are kept),
 * `pre_operation` (taken before a risky operation: pinned while it is
 * open) and `recovery` (kept for a time window).
 *
 * @example Pick a type
 * ```ts
 * import type { CheckpointType } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const type: CheckpointType = "recovery";
 * assert.equal(type, "recovery");
 * ```
 */
export type CheckpointType = "routine" | "pre_operation" | "recovery";

/** Every {@linkcode CheckpointType}, in a fixed order. */
export const CHECKPOINT_TYPES: readonly CheckpointType[] = Object.freeze([
  "routine",
  "pre_operation",
  "recovery",
]);

/**
 * How a checkpoint's payload is stored: `json` (UTF-8 JSON, greppable) or
 * `gzip` (the same JSON, gzip-compressed).
 */
export type CheckpointEncoding = "json" | "gzip";

/**
 * Names one stored checkpoint: what {@linkcode CheckpointManager.create}
 * returns and what `list()` and `latest()` give back.
 *
 * @example Read a ref
 * ```ts
 * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints({ agentId: "planner", root });
 * const ref = await checkpoints.create("routine", { state: { step: 1 } });
 * assert.equal(ref.seq, 1);
 * assert.equal(ref.type, "routine");
 * assert.match(ref.sha256, /^[0-9a-f]{64}$/);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export interface CheckpointRef {
  /** The checkpoint's id within its agent, e.g. `"000000000042.routine"`. */
  id: string;
  /** Its sequence number: strictly increasing per agent, never reused. */
  seq: number;
  /** Its type. */
  type: CheckpointType;
  /** Where it is stored (a file path for the file store). */
  path: string;
  /** When it was created, as an ISO 8601 string. */
  createdAt: string;
  /** The stored payload's size in bytes (after compression, if any). */
  bytes: number;
  /** The SHA-256 of the stored payload bytes, as lowercase hex. */
  sha256: string;
  /** How the payload is encoded. */
  encoding: CheckpointEncoding;
  /** The size of the state as JSON, in bytes (before compression). */
  stateBytes: number;
  /** The state's schema version, as given by `stateVersion`. */
  stateVersion: number;
  /** A free label given at creation. */
  label?: string;
  /** The operation a `pre_operation` checkpoint belongs to. */
  operationId?: string;
  /** Free metadata given at creation (small, JSON). */
  meta?: Record<string, unknown>;
}

/** A checkpoint restore passed over, and why. */
export interface SkippedCheckpoint {
  /** The checkpoint's id. */
  id: string;
  /** Why it was not used, e.g. `"checksum mismatch: …"`. */
  reason: string;
  /** Whether it was moved to `quarantine/` (kept as evidence). */
  quarantined: boolean;
}

/**
 * What {@linkcode CheckpointManager.restore} found: the state, the
 * checkpoint it came from, and every newer one it had to pass over.
 */
export interface RestoreResult<S> {
  /** The restored (migrated, validated) state. */
  state: S;
  /** The checkpoint it came from. */
  ref: CheckpointRef;
  /** Checkpoints tried first and passed over, newest first. */
  skipped: SkippedCheckpoint[];
}

/** How an operation ended. */
export type OperationOutcome = "succeeded" | "failed" | "abandoned";

/** An operation as recorded in `operations.json`. */
export interface OperationRecord {
  /** The operation's id, e.g. `"op-000000000007"`. */
  id: string;
  /** The name given to `beginOperation`. */
  name: string;
  /** The id of its `pre_operation` checkpoint. */
  checkpointId: string;
  /** `open` until completed. */
  status: "open" | OperationOutcome;
  /** When it began, in milliseconds since the epoch. */
  startedAt: number;
  /** When it was completed, in milliseconds since the epoch. */
  endedAt?: number;
  /** The process that began it. */
  pid: number;
  /** The host that process runs on. */
  host: string;
}

/**
 * Checks a state: return `false`, a string (the reason) or throw to
 * reject it; return `true` or nothing to accept it.
 */
export type StateValidator<S> = (
  state: S,
) => boolean | string | void | Promise<boolean | string | void>;

/**
 * The part of the Standard Schema interface (v1) the manager uses, so a
 * Zod, Valibot or ArkType schema can be passed as `schema`.
 */
export interface StandardSchemaLike<S> {
  /** The Standard Schema properties. */
  readonly "~standard": {
    /** The Standard Schema version: 1. */
    readonly version: 1;
    /** The library behind it. */
    readonly vendor: string;
    /** Validates a value. */
    readonly validate: (value: unknown) =>
      | StandardResult<S>
      | Promise<StandardResult<S>>;
  };
}

/** The result of a Standard Schema validation. */
export type StandardResult<S> =
  | { readonly value: S; readonly issues?: undefined }
  | {
    readonly issues: ReadonlyArray<
      {
        readonly message: string;
        readonly path?: ReadonlyArray<
          PropertyKey | { readonly key: PropertyKey }
        >;
      }
    >;
  };
