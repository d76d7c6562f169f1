// Where a lock's files live. Every name is validated before it gets here,
// so each path stays inside `<root>/locks/`.

import { join } from "node:path";

/** `<root>/locks`. */
export function locksDir(root: string): string {
  return join(root, "locks");
}

/** Every path belonging to lock `name`. */
export interface LockPaths {
  /** `<name>.lock`: the lock directory (kind "dir"). */
  dir: string;
  /**
   * `<name>.lock/alive`: the liveness file of earlier versions (the record
   * itself is kernel-locked now); probed first when present.
   */
  alive: string;
  /** `<name>.lock/owner.json`: the owner record, kernel-locked by its holder. */
  owner: string;
  /** `<name>.lock.reclaim`: kernel-locked while one waiter takes over. */
  reclaim: string;
  /** `<name>.fence`: the fencing counter. */
  fence: string;
  /** `<name>.flock`: the kernel-locked file (kind "flock"). */
  flock: string;
  /** `<name>.flock.json`: the owner record beside it. */
  flockOwner: string;
}

/** The paths of lock `name` under `root`. */
export function lockPaths(root: string, name: string): LockPaths {
  const locks = locksDir(root);
  const dir = join(locks, `${name}.lock`);
  return {
    dir,
    alive: join(dir, "alive"),
    owner: join(dir, "owner.json"),
    reclaim: join(locks, `${name}.lock.reclaim`),
    fence: join(locks, `${name}.fence`),
    flock: join(locks, `${name}.flock`),
    flockOwner: join(locks, `${name}.flock.json`),
  };
}

/** A unique name to move a lock directory to before deleting it. */
export function graveyardPath(root: string, name: string): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  const suffix = Array.from(random, (n) => n.toString(36)).join("");
  return join(locksDir(root), `${name}.lock.stale-${suffix}`);
}

/**
 * The names of the locks under `root` whose entry ends in `suffix` and is
 * a directory (kind "dir") or a file (kind "flock"); none when the locks
 * folder does not exist yet.
 */
export async function lockNames(
  root: string,
  suffix: ".lock" | ".flock",
): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(locksDir(root))) {
      const isLock = suffix === ".lock" ? entry.isDirectory : entry.isFile;
      if (isLock && entry.name.endsWith(suffix)) {
        names.push(entry.name.slice(0, -suffix.length));
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return names;
}
