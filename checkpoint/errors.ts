import { SturdyError } from "../retry/mod.ts";

/** Fields a {@linkcode CheckpointError} carries besides its message. */
export interface CheckpointErrorOptions {
  /**
   * Stable code: `invalid_state` (not serialisable or rejected by the
   * validator), `too_large`, `corrupt_checkpoint`, `unsupported_format`,
   * `not_found`, `invalid_id`, `invalid_option`, `migration_failed`,
   * `operation_not_found`, `rollback_failed`, `no_valid_checkpoint`.
   */
  code: string;
  /** The agent the checkpoint belongs to. */
  agentId?: string;
  /** The checkpoint involved. */
  checkpointId?: string;
  /** The file involved. */
  path?: string;
  /** The failed operation, e.g. `"create"`. */
  operation?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Any failure of the checkpoint manager, with a stable `code`.
 *
 * @example Tell a refused state by its code
 * ```ts
 * import { CheckpointError, openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints({ agentId: "a", root });
 * const err = await checkpoints.create("routine", { state: { n: NaN } })
 *   .catch((e) => e);
 * assert.ok(err instanceof CheckpointError);
 * assert.equal(err.code, "invalid_state");
 * assert.match(err.message, /"\/n" is NaN/);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class CheckpointError extends SturdyError {
  /** The agent the checkpoint belongs to. */
  readonly agentId: string | undefined;
  /** The checkpoint involved, when there is one. */
  readonly checkpointId: string | undefined;

  /**
   * Creates an error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code and context.
   */
  constructor(message: string, options: CheckpointErrorOptions) {
    // Its extra fields (agent, task, rule) are kept below, not by the base.
    super(message, options);
    this.agentId = options.agentId;
    this.checkpointId = options.checkpointId;
  }
}

/** One checkpoint {@linkcode NoValidCheckpointError} tried, and why it failed. */
export interface TriedCheckpoint {
  /** The checkpoint's id. */
  id: string;
  /** Its file (where it was, or where it was quarantined to). */
  path: string;
  /** Why it could not be used. */
  reason: string;
}

/**
 * Restore found no usable checkpoint: every one it tried is listed with
 * its path and the reason it failed (code `no_valid_checkpoint`).
 *
 * @example Restore with nothing saved
 * ```ts
 * import { NoValidCheckpointError, openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints({ agentId: "a", root });
 * const err = await checkpoints.restore().catch((e) => e);
 * assert.ok(err instanceof NoValidCheckpointError);
 * assert.deepEqual(err.tried, []);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class NoValidCheckpointError extends CheckpointError {
  /** Every checkpoint tried, newest first. */
  readonly tried: readonly TriedCheckpoint[];

  /**
   * Creates the error.
   *
   * @param agentId The agent.
   * @param dir The agent's checkpoint directory.
   * @param tried Every checkpoint tried, newest first.
   */
  constructor(agentId: string, dir: string, tried: TriedCheckpoint[]) {
    const list = tried.map((t) => `\n  - ${t.path}: ${t.reason}`).join("");
    super(
      tried.length === 0
        ? `No checkpoint to restore for agent "${agentId}" in ${dir}: create one first`
        : `No valid checkpoint for agent "${agentId}" in ${dir}; tried ${tried.length}:${list}\n` +
          `Invalid files were moved to ${dir}/quarantine with a reason file; ` +
          `inspect them, fix the cause, or start from a fresh state`,
      { code: "no_valid_checkpoint", agentId, path: dir, operation: "restore" },
    );
    this.tried = Object.freeze(tried.slice());
  }
}
