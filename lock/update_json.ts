// Read-modify-write of one JSON file under a lock, fenced.
//
// Invariant: an update lands only if its lock was held from the read to
// the write: concurrent updaters are serialised by the lock, and a holder
// that lost the lock meanwhile (paused past its lease, taken over) is
// refused by the fence check before it writes (see _fence_registry.ts for
// what that check can and cannot catch).

import type { Durability } from "../fs/mod.ts";
import { isNotFound, readJson, writeJson } from "../fs/mod.ts";
import { canonicalTarget, lockNameForTarget } from "./_fence_registry.ts";
import { admitAll, guardSignal } from "./_fence_guard.ts";
import { withLock } from "./lock.ts";
import type { Lock } from "./lock.ts";
import type { LockOptions } from "./options.ts";

/** Options of {@linkcode updateJson}. */
export interface UpdateJsonOptions extends LockOptions {
  /**
   * A lock you already hold to do the update under, instead of the lock
   * named after the file. Its fence is checked against the highest one
   * this file has seen under that lock, so a holder that lost it is
   * refused. Pass the same `root` it was acquired with.
   *
   * @default {undefined} (take the lock named after the file)
   */
  lock?: Lock;
  /**
   * How durably the new content is written (see fs/ `writeJson`).
   *
   * @default {"durable"}
   */
  durability?: Durability;
  /**
   * Indentation, as for `JSON.stringify`.
   *
   * @default {2}
   */
  space?: number | string;
}

/**
 * The name of the lock that guards a file for {@linkcode updateJson} and
 * {@linkcode lockedTransaction}: `path-<file name>-<hash of the canonical
 * path>`. Hold it with `acquireLock` to keep the file's other writers out
 * across several updates, and pass it as `updateJson`'s `lock`.
 *
 * @param path The file (it need not exist).
 * @returns The lock name.
 *
 * @example Hold a file's lock across several updates
 * ```ts
 * import { acquireLock, lockNameForPath, updateJson } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const file = `${root}/state.json`;
 * const name = await lockNameForPath(file);
 * assert.match(name, /^path-state\.json-[0-9a-f]{16}$/);
 * {
 *   await using lock = await acquireLock(name, { root });
 *   await updateJson<number>(file, (n) => (n ?? 0) + 1, { root, lock });
 *   await updateJson<number>(file, (n) => (n ?? 0) + 1, { root, lock });
 * }
 * assert.equal(JSON.parse(await Deno.readTextFile(file)), 2);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function lockNameForPath(path: string): Promise<string> {
  return await lockNameForTarget(await canonicalTarget(path));
}

/**
 * Reads a JSON file, passes its value to `fn` (`undefined` when the file
 * does not exist) and durably replaces the file with what `fn` returns,
 * all under a lock named after the file (see {@linkcode lockNameForPath}),
 * or under `options.lock`. The write is fenced: if a newer holder of the
 * lock has written the file since this one acquired it, the update is
 * refused with `StaleFenceError` and the file is untouched. If `fn`
 * throws, nothing is written and its error passes through.
 *
 * @param path The JSON file; its directory must exist.
 * @param fn Computes the new value from the current one.
 * @param options Lock options (`root`, `timeout`, `ttl`, `signal`, …), a
 *   held `lock` to use instead, `durability`, `space`.
 * @returns The value written.
 * @throws {StaleFenceError} Code `stale_fence` when a newer holder wrote.
 * @throws {LockCompromisedError} When `options.lock` was lost.
 * @throws {LockTimeoutError} When the lock could not be taken in time.
 *
 * @example Count runs safely from many processes
 * ```ts
 * import { updateJson } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const file = `${root}/runs.json`;
 * await Promise.all([1, 2, 3].map(() =>
 *   updateJson<{ runs: number }>(file, (s) => ({ runs: (s?.runs ?? 0) + 1 }), {
 *     root,
 *   })
 * ));
 * assert.deepEqual(JSON.parse(await Deno.readTextFile(file)), { runs: 3 });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function updateJson<T>(
  path: string,
  fn: (current: T | undefined) => T | Promise<T>,
  options?: UpdateJsonOptions,
): Promise<T> {
  const target = await canonicalTarget(path);
  const root = options?.root ?? ".sturdy";
  const update = async (lock: Lock): Promise<T> => {
    const signal = guardSignal([lock], options?.signal);
    const guarded = [{ lock, target }];
    const fenceOptions = { signal: options?.signal, clock: options?.clock };
    await admitAll(root, guarded, fenceOptions);
    let current: T | undefined;
    try {
      current = await readJson<T>(path, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const next = await fn(current);
    await admitAll(root, guarded, fenceOptions);
    await writeJson(path, next, {
      signal,
      ...(options?.durability ? { durability: options.durability } : {}),
      ...(options?.space === undefined ? {} : { space: options.space }),
    });
    return next;
  };
  if (options?.lock) return await update(options.lock);
  const { lock: _, durability: __, space: ___, ...lockOptions } = options ??
    {};
  return await withLock(await lockNameForTarget(target), update, lockOptions);
}
