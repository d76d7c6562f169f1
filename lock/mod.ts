/**
 * Locks between processes: two processes never hold the same lock at
 * once; a lock whose holder died is taken over quickly and by exactly one
 * waiter; a live holder is never robbed because it is slow; and a holder
 * paused past its lease cannot do damage, because its fencing token is
 * refused.
 *
 * A lock is a directory `<root>/locks/<name>.lock` holding `owner.json`
 * (pid, host, process start, heartbeat, ttl, fence), which its holder
 * keeps kernel-locked as proof of life, or with `kind: "flock"` a kernel
 * lock on `<root>/locks/<name>.flock`. Every acquisition gets a strictly larger
 * `fence` from `<root>/locks/<name>.fence`.
 *
 * @example Hold a lock while working; the fence grows
 * ```ts
 * import { acquireLock, inspectLock, tryAcquireLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * let fence: number;
 * {
 *   await using lock = await acquireLock("deploy", { root, purpose: "release" });
 *   fence = lock.fence;
 *   assert.equal(await tryAcquireLock("deploy", { root }), null);
 *   assert.equal((await inspectLock("deploy", { root }))?.holder, "alive");
 * }
 * await using next = await acquireLock("deploy", { root });
 * assert.ok(next.fence > fence);
 * await next.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */
export {
  acquireLock,
  getTaskLock,
  tryAcquireLock,
  withLock,
} from "./acquire.ts";
export type { Lock } from "./lock.ts";
export type {
  AcquireAttempt,
  AcquireRequest,
  Lease,
  LockBackend,
  LockInfo,
  RenewOutcome,
} from "./backend.ts";
export {
  type CompromisedLockLike,
  LockCompromisedError,
  LockTimeoutError,
  StaleFenceError,
} from "./errors.ts";
export * from "./inspect.ts";
export * from "./options.ts";
export { type HolderState, type LockOwner, OWNER_FORMAT } from "./owner.ts";
// Referenced by the types above; re-exported so this entry point is whole.
export { type Clock, SturdyError } from "../retry/mod.ts";
export * from "./update_json.ts";
export * from "./locked_transaction.ts";
// Referenced by updateJson and lockedTransaction; re-exported so this entry point is whole.
export type {
  Durability,
  StageJsonOptions,
  StageOptions,
  Transaction,
} from "../fs/mod.ts";
