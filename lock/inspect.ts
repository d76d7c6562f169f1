// Looking at locks from outside: who holds them, and breaking dead ones.

import { validateName } from "../retry/mod.ts";
import type { LockBackend, LockInfo } from "./backend.ts";
import { backendFor } from "./acquire.ts";
import { lockIoError } from "./_lock_error.ts";
import type { LockKind, LockRootOptions } from "./options.ts";
import { locksDir } from "./_paths.ts";

/** Options of {@linkcode inspectLock} and {@linkcode listLocks}. */
export interface InspectLockOptions extends LockRootOptions {
  /**
   * Only this mechanism.
   *
   * @default {undefined} (both "dir" and "flock")
   */
  kind?: LockKind;
}

/** Options of {@linkcode breakLock}. */
export interface BreakLockOptions extends InspectLockOptions {
  /**
   * Break the lock even if its holder is alive or cannot be proven dead.
   * The holder's heartbeat then reports the lock lost, and its fenced
   * writes are refused.
   *
   * @default {false}
   */
  force?: boolean;
}

function backends(options: InspectLockOptions): LockBackend[] {
  const kinds: LockKind[] = options.kind ? [options.kind] : ["dir", "flock"];
  return kinds.map((kind) => backendFor(kind, options));
}

/**
 * Reports who holds lock `name`, for how long, whether the holder is
 * alive, and whether a waiter could take the lock over now.
 *
 * @param name The lock's name.
 * @param options Root, kind.
 * @returns What is known, or `null` when the lock is not held.
 *
 * @example Inspect a held lock
 * ```ts
 * import { acquireLock, inspectLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using lock = await acquireLock("deploy", { root, purpose: "release 1.2" });
 * const info = await inspectLock("deploy", { root });
 * assert.equal(info?.owner?.purpose, "release 1.2");
 * assert.equal(info?.holder, "alive");
 * assert.equal(info?.stale, false);
 * await lock.release();
 * assert.equal(await inspectLock("deploy", { root }), null);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function inspectLock(
  name: string,
  options: InspectLockOptions = {},
): Promise<LockInfo | null> {
  validateName(name, "lock name");
  try {
    for (const backend of backends(options)) {
      const info = await backend.inspect(name);
      if (info) return info;
    }
    return null;
  } catch (err) {
    throw lockIoError(
      err,
      "inspect",
      name,
      locksDir(options.root ?? ".sturdy"),
    );
  }
}

/**
 * Lists every lock under the root, sorted by name.
 *
 * @param options Root, kind.
 * @returns One entry per held (or stale) lock.
 *
 * @example List locks
 * ```ts
 * import { acquireLock, listLocks } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using a = await acquireLock("a", { root });
 * await using b = await acquireLock("b", { root, kind: "flock" });
 * const names = (await listLocks({ root })).map((i) => `${i.name}:${i.kind}`);
 * assert.deepEqual(names, ["a:dir", "b:flock"]);
 * await a.release();
 * await b.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listLocks(
  options: InspectLockOptions = {},
): Promise<LockInfo[]> {
  try {
    const lists = await Promise.all(backends(options).map((b) => b.list()));
    return lists.flat().sort((x, y) =>
      x.name < y.name ? -1 : x.name > y.name ? 1 : x.kind < y.kind ? -1 : 1
    );
  } catch (err) {
    throw lockIoError(err, "list", "*", locksDir(options.root ?? ".sturdy"));
  }
}

/**
 * Removes lock `name` when its holder is provably dead (or, for a holder
 * on another host, its lease expired). A live holder, or one that cannot
 * be proven dead, is refused unless `force` is set.
 *
 * @param name The lock's name.
 * @param options Root, force, kind.
 * @returns `true` if a lock was removed, `false` if there was none.
 * @throws {SturdyError} Code `lock_held` for a live holder without `force`.
 *
 * @example Refuse to break a live lock, then force it
 * ```ts
 * import { acquireLock, breakLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const lock = await acquireLock("deploy", { root });
 * await assert.rejects(breakLock("deploy", { root }), { code: "lock_held" });
 * assert.equal(await breakLock("deploy", { root, force: true }), true);
 * await lock.release(); // finds the lock gone: nothing to remove
 * assert.equal(lock.compromised, true);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function breakLock(
  name: string,
  options: BreakLockOptions = {},
): Promise<boolean> {
  validateName(name, "lock name");
  try {
    let broken = false;
    for (const backend of backends(options)) {
      if (await backend.break(name, options.force ?? false)) broken = true;
    }
    return broken;
  } catch (err) {
    throw lockIoError(err, "break", name, locksDir(options.root ?? ".sturdy"));
  }
}
