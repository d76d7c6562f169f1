import type { CheckpointRef, OperationOutcome } from "./types.ts";

/**
 * An open operation begun by {@linkcode CheckpointManager.beginOperation}:
 * its `pre_operation` checkpoint stays pinned until it is completed.
 * Disposing it without completing completes it as `"abandoned"` (its
 * checkpoint is then kept as a recovery checkpoint). An operation left
 * open by a crash stays open on disk, pinned and reported.
 *
 * @example Complete an operation
 * ```ts
 * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints({ agentId: "a", root });
 * {
 *   await using op = await checkpoints.beginOperation("migrate-db", { step: 1 });
 *   assert.equal(op.ref.type, "pre_operation");
 *   await op.complete("succeeded");
 * }
 * assert.equal((await checkpoints.listOperations())[0]!.status, "succeeded");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export interface CheckpointOperation extends AsyncDisposable {
  /** The operation's id, e.g. `"op-000000000007"`. */
  readonly id: string;
  /** Its name. */
  readonly name: string;
  /** Its pre_operation checkpoint. */
  readonly ref: CheckpointRef;
  /** Whether it has been completed (by this handle). */
  readonly completed: boolean;
  /**
   * Completes it; a second call does nothing.
   *
   * @param outcome How it ended.
   * @returns Resolves once recorded.
   */
  complete(outcome?: OperationOutcome): Promise<void>;
}
