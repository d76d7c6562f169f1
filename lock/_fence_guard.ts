// Fenced access to targets under held locks: the steps updateJson and
// lockedTransaction share.
//
// Protocol, per target and the lock guarding it:
//   1. begin: the lock must still be held; record its fence for the target
//      (refused if a newer holder has begun) before reading anything;
//   2. the caller reads and computes;
//   3. commit: the lock must still be held and its fence still the newest
//      recorded for every target, checked immediately before the write.
// See _fence_registry.ts for why step 1 records and not only checks.

import { systemClock } from "../retry/mod.ts";
import type { Clock } from "../retry/mod.ts";
import { admitFence } from "./_fence_registry.ts";
import { LockCompromisedError } from "./errors.ts";
import type { Lock } from "./lock.ts";

/** One target and the lock that guards it. */
export interface Guarded {
  lock: Lock;
  /** Canonical path. */
  target: string;
}

/**
 * A signal aborted when the caller's is, or when any lock is lost or
 * released, so reads and a not-yet-committed write stop at once.
 */
export function guardSignal(
  locks: readonly Lock[],
  signal?: AbortSignal,
): AbortSignal {
  return AbortSignal.any([
    ...(signal ? [signal] : []),
    ...locks.map((lock) => lock.signal),
  ]);
}

/** Throws when `lock` no longer protects anything. */
export function assertHeld(lock: Lock): void {
  if (lock.compromised || lock.signal.aborted) {
    throw lock.signal.reason instanceof Error
      ? lock.signal.reason
      : new LockCompromisedError(lock);
  }
}

/**
 * Steps 1 and 3 of the protocol: every fence still the newest for its
 * target (recorded if new), and every lock still held. A newer fence is
 * the stronger evidence, so it is looked for first: a holder that resumes
 * after a takeover gets `StaleFenceError` whether or not its heartbeat has
 * noticed the loss yet. `signal` is the caller's own, not the locks': a
 * lost lock must not cut the fence check short.
 */
export async function admitAll(
  root: string,
  guarded: readonly Guarded[],
  options: { signal?: AbortSignal | undefined; clock?: Clock | undefined },
): Promise<void> {
  const now = (options.clock ?? systemClock).now();
  for (const { lock, target } of guarded) {
    await admitFence({
      root,
      lock: lock.name,
      fence: lock.fence,
      target,
      now,
      signal: options.signal,
      beforeRecord: () => assertHeld(lock),
    });
  }
  // A loss noticed while the records were written also stops the write.
  for (const { lock } of guarded) assertHeld(lock);
}
