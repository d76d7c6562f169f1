// An fs/ transaction over several files, each locked against other
// processes for the whole transaction, and fenced.
//
// Invariants:
// - Locks are taken in one global order (sorted lock names), so two
//   lockedTransactions over overlapping files never wait on each other in
//   a cycle; a file listed twice is locked once.
// - Every lock is held from before the first read of the callback to after
//   the commit or rollback, and released on every path out.
// - Only the listed files may be staged: the others are not locked.
// - Each file's fence is recorded before the callback runs and checked
//   again before the commit, as updateJson does; a holder that lost any of
//   its locks commits nothing.

import { resolve } from "node:path";
import { transaction } from "../fs/mod.ts";
import type { Durability, Transaction } from "../fs/mod.ts";
import { SturdyError, systemClock } from "../retry/mod.ts";
import { canonicalTarget, lockNameForTarget } from "./_fence_registry.ts";
import { admitAll, type Guarded, guardSignal } from "./_fence_guard.ts";
import { acquireLock, type Lock } from "./lock.ts";
import type { LockOptions } from "./options.ts";

/** Options of {@linkcode lockedTransaction}. */
export interface LockedTransactionOptions extends LockOptions {
  /**
   * How long to wait for all the locks together; 0 tries each once.
   *
   * @default {30_000}
   */
  timeout?: number;
  /**
   * How durably the commit is written (see fs/ `transaction`).
   *
   * @default {"durable"}
   */
  durability?: Durability;
}

/**
 * Runs an fs/ `transaction` over `paths` with each file locked (the lock
 * named after it, see {@linkcode lockNameForPath}, so `updateJson` on the
 * same file waits too), taken in sorted order so concurrent transactions
 * cannot deadlock. `fn` stages writes and removals through `tx`; they
 * commit all or none when it returns, and every lock is released after
 * the commit or rollback. Staging a file not in `paths` is refused (code
 * `not_locked`). If any lock was lost meanwhile and a newer holder began
 * on one of the files, nothing commits and the call rejects with
 * `StaleFenceError`.
 *
 * @param paths The files the transaction may change (existing or not).
 * @param fn Reads what it needs and stages changes; its result is returned.
 * @param options Lock options (`root`, `timeout` for all the locks
 *   together, `ttl`, `signal`, …) and `durability`.
 * @returns What `fn` returned, once committed.
 * @throws {StaleFenceError} Code `stale_fence` when a newer holder began.
 * @throws {LockTimeoutError} When the locks could not be taken in time.
 *
 * @example Move an amount between two files, all or nothing
 * ```ts
 * import { lockedTransaction } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const [a, b] = [`${root}/a.json`, `${root}/b.json`];
 * await Deno.writeTextFile(a, "10");
 * await Deno.writeTextFile(b, "0");
 * await lockedTransaction([a, b], async (tx) => {
 *   const from = JSON.parse(await Deno.readTextFile(a));
 *   const to = JSON.parse(await Deno.readTextFile(b));
 *   await tx.writeJson(a, from - 3);
 *   await tx.writeJson(b, to + 3);
 * }, { root });
 * assert.equal(JSON.parse(await Deno.readTextFile(a)), 7);
 * assert.equal(JSON.parse(await Deno.readTextFile(b)), 3);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function lockedTransaction<T>(
  paths: readonly string[],
  fn: (tx: Transaction) => Promise<T>,
  options?: LockedTransactionOptions,
): Promise<T> {
  const root = options?.root ?? ".sturdy";
  const clock = options?.clock ?? systemClock;
  // One lock per distinct file, in lock-name order.
  const byName = new Map<string, string>();
  const allowed = new Map<string, string>(); // resolved → canonical
  for (const path of paths) {
    const target = await canonicalTarget(path);
    allowed.set(resolve(path), target);
    byName.set(await lockNameForTarget(target), target);
  }
  const names = [...byName.keys()].sort();
  const { durability, ...lockOptions } = options ?? {};
  const timeout = options?.timeout ?? 30_000;
  const deadline = clock.now() + timeout;
  const held: Guarded[] = [];
  try {
    for (const name of names) {
      const remaining = Math.max(0, deadline - clock.now());
      const lock = await acquireLock(name, {
        ...lockOptions,
        timeout: remaining,
      });
      held.push({ lock, target: byName.get(name)! });
    }
    const locks = held.map((g) => g.lock);
    const signal = guardSignal(locks, options?.signal);
    const fenceOptions = { signal: options?.signal, clock };
    await admitAll(root, held, fenceOptions);
    return await transaction(async (tx) => {
      const value = await fn(restrict(tx, allowed));
      // The commit follows this return at once: the last check before it.
      await admitAll(root, held, fenceOptions);
      return value;
    }, { signal, ...(durability ? { durability } : {}) });
  } finally {
    await releaseAll(held.map((g) => g.lock));
  }
}

/** `tx`, refusing paths that are not locked. */
function restrict(tx: Transaction, allowed: Map<string, string>): Transaction {
  const check = (operation: string, path: string): Promise<void> | null => {
    if (allowed.has(resolve(path))) return null;
    return Promise.reject(
      new SturdyError(
        `Cannot ${operation} "${path}" in this lockedTransaction: it is not one of the locked paths; list it in lockedTransaction's paths`,
        { code: "not_locked", path, operation },
      ),
    );
  };
  return {
    writeBytes: (path, data, o) =>
      check("writeBytes", path) ?? tx.writeBytes(path, data, o),
    writeText: (path, text, o) =>
      check("writeText", path) ?? tx.writeText(path, text, o),
    writeJson: (path, value, o) =>
      check("writeJson", path) ?? tx.writeJson(path, value, o),
    remove: (path) => check("remove", path) ?? tx.remove(path),
  };
}

/** Releases in reverse order; one failure does not keep the rest held. */
async function releaseAll(locks: Lock[]): Promise<void> {
  for (const lock of locks.reverse()) {
    await lock.release().catch(() => {
      // A lost lock has nothing left to release; the fence check already
      // kept its holder from committing.
    });
  }
}
