import { formatDuration, SturdyError } from "../retry/mod.ts";
import type { LockInfo } from "./backend.ts";
import type { LockCompromisedReason } from "./options.ts";
import type { LockOwner } from "./owner.ts";

/** Describes a holder for messages: `pid 4121 on host ci-7 for 12.4s`. */
export function describeHolder(info: LockInfo | null): string {
  const owner = info?.owner;
  if (!info || !owner) {
    return info
      ? `its owner file cannot be read yet (${info.evidence})`
      : "its holder could not be read";
  }
  const held = info.heldForMs === null
    ? ""
    : ` for ${formatDuration(info.heldForMs)}`;
  const purpose = owner.purpose
    ? ` (purpose ${JSON.stringify(owner.purpose)})`
    : "";
  const self = owner.pid === Deno.pid && info.holder === "alive"
    ? " (this process)"
    : "";
  return `held by pid ${owner.pid}${self} on host ${owner.host}${held}${purpose}; holder ${info.holder}: ${info.evidence}`;
}

/**
 * A lock could not be taken within `timeout`. The message names the
 * holder, its host and how long it has held the lock.
 *
 * @example Branch on a timeout
 * ```ts
 * import { acquireLock, LockTimeoutError } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using held = await acquireLock("deploy", { root });
 * const err = await acquireLock("deploy", { root, timeout: 0 }).catch((e) => e);
 * assert.ok(err instanceof LockTimeoutError);
 * assert.equal(err.code, "lock_timeout");
 * assert.equal(err.holder?.owner?.token, held.token);
 * await held.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class LockTimeoutError extends SturdyError {
  /** The lock's name. */
  readonly lockName: string;
  /** What was known about the holder at the last attempt. */
  readonly holder: LockInfo | null;
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;

  /**
   * Creates the error.
   *
   * @param name The lock's name.
   * @param holder The holder seen at the last attempt.
   * @param waitedMs How long the caller waited.
   * @param attempts How many attempts were made.
   */
  constructor(
    name: string,
    holder: LockInfo | null,
    waitedMs: number,
    attempts = 1,
  ) {
    super(
      `Cannot acquire lock ${JSON.stringify(name)} within ${
        formatDuration(waitedMs)
      }: ${
        describeHolder(holder)
      }. Wait longer (timeout), or if the holder is gone break the lock (breakLock / "sturdy lock break ${name}")`,
      {
        code: "lock_timeout",
        operation: "acquireLock",
        attempts,
        ...(holder ? { path: holder.path } : {}),
      },
    );
    this.lockName = name;
    this.holder = holder;
    this.waitedMs = waitedMs;
  }
}

/** What a {@linkcode LockCompromisedError} is built from: a lock's identity. */
export interface CompromisedLockLike {
  /** The lock's name. */
  readonly name: string;
  /** The lost lock's token. */
  readonly token: string;
  /** The lost lock's fence. */
  readonly fence: number;
}

/**
 * A held lock was lost: another process took it over (this holder was
 * paused past its lease, or judged dead) or it was removed. Work under
 * the lock must stop; the lock's `signal` is aborted with this error.
 *
 * @example Build one and read its fields
 * ```ts
 * import { LockCompromisedError } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const err = new LockCompromisedError({ name: "deploy", token: "t1", fence: 4 });
 * assert.equal(err.code, "lock_compromised");
 * assert.equal(err.reason, "taken_over");
 * assert.match(err.message, /deploy/);
 * ```
 */
export class LockCompromisedError extends SturdyError {
  /** The lock's name. */
  readonly lockName: string;
  /** The lost lock's token. */
  readonly token: string;
  /** The lost lock's fence. */
  readonly fence: number;
  /** Why the lock is lost. */
  readonly reason: LockCompromisedReason;
  /** Who owns the lock now, when known. */
  readonly current: LockOwner | null;

  /**
   * Creates the error.
   *
   * @param lock The lost lock.
   * @param reason Why it is lost.
   * @param current Who owns it now, when known.
   */
  constructor(
    lock: CompromisedLockLike,
    reason: LockCompromisedReason = "taken_over",
    current: LockOwner | null = null,
  ) {
    const now = current
      ? `; it is now held by pid ${current.pid} on host ${current.host} with fence ${current.fence}`
      : "";
    const why = reason === "removed"
      ? "its lock was removed (broken by force or deleted)"
      : "another process took it over (this holder was paused or judged dead past its lease)";
    super(
      `Lock ${
        JSON.stringify(lock.name)
      } (fence ${lock.fence}) is no longer held: ${why}${now}. Stop the work it protected; writes fenced with ${lock.fence} are refused`,
      { code: "lock_compromised", operation: "lock" },
    );
    this.lockName = lock.name;
    this.token = lock.token;
    this.fence = lock.fence;
    this.reason = reason;
    this.current = current;
  }
}

/**
 * A write under a lock carried a fence smaller than one already recorded
 * for its target: a newer holder has written since, so this holder's lock
 * was lost and its write is refused.
 *
 * @example Build one and read its fields
 * ```ts
 * import { StaleFenceError } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const err = new StaleFenceError("/data/state.json", 3, 5, "state");
 * assert.equal(err.code, "stale_fence");
 * assert.equal(err.fence, 3);
 * assert.equal(err.newest, 5);
 * ```
 */
export class StaleFenceError extends SturdyError {
  /** The refused fence. */
  readonly fence: number;
  /** The newest fence recorded for the target. */
  readonly newest: number;
  /** The lock's name. */
  readonly lockName: string;

  /**
   * Creates the error.
   *
   * @param target The protected file.
   * @param fence The refused fence.
   * @param newest The newest fence recorded for `target`.
   * @param lockName The lock guarding `target`.
   */
  constructor(target: string, fence: number, newest: number, lockName: string) {
    super(
      `Cannot write ${JSON.stringify(target)} under lock ${
        JSON.stringify(lockName)
      }: its fence ${fence} is older than fence ${newest} already used by a newer holder, so this holder lost the lock. Stop, then acquire the lock again and redo the work`,
      { code: "stale_fence", path: target, operation: "fence" },
    );
    this.fence = fence;
    this.newest = newest;
    this.lockName = lockName;
  }
}
