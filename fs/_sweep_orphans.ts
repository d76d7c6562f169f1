// Removes temp files left by killed writers, never a live writer's.
//
// Invariant: a temp is removed only if its owner is provably dead or, when
// that cannot be checked, it has not been modified for `maxAgeMs`. Proof
// of death, strongest first (see fs/_temp_name.ts and fs/_file_lock.ts):
//   1. a temp whose name says its writer holds its kernel lock, made on
//      this host: the lock is free. The temp is then removed while the
//      sweep holds the lock, so it never races its writer;
//   2. the owner's pid is gone or belongs to another process (/proc, which
//      Deno reads only with --allow-all).

import { join } from "node:path";
import type { FileSystem } from "./file_system.ts";
import { probeLock } from "./_file_lock.ts";
import {
  isOtherBoot,
  ownerState,
  parseTempName,
  type TempOwner,
} from "./_temp_name.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** What a sweep did. */
export interface SweepResult {
  /** Paths of the orphan temps removed. */
  removed: string[];
  /** Paths of the temps kept (live owner, or too young to judge). */
  kept: string[];
}

type Verdict = "removed" | "kept" | "gone";

/** Sweeps `dir` (not its subdirectories) for orphan temps. */
export async function sweepOrphans(
  fs: FileSystem,
  dir: string,
  options: { maxAgeMs: number; now: number },
): Promise<SweepResult> {
  const result: SweepResult = { removed: [], kept: [] };
  for await (const entry of fs.readDir(dir)) {
    if (!entry.isFile) continue;
    const owner = parseTempName(entry.name);
    if (!owner) continue;
    const path = join(dir, entry.name);
    const verdict = await judge(fs, path, owner, options);
    if (verdict !== "gone") result[verdict].push(path);
  }
  return result;
}

/** Removes `path`; `false` if it was already gone (its writer finished). */
async function removeIfThere(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.remove(path);
    return true;
  } catch (err) {
    if (osCodeOf(err) !== "ENOENT") throw err; // another sweep won
    return false;
  }
}

async function judge(
  fs: FileSystem,
  path: string,
  owner: TempOwner,
  options: { maxAgeMs: number; now: number },
): Promise<Verdict> {
  if (owner.locked && !isOtherBoot(owner)) {
    let removed = false;
    const lock = await probeLock(fs, path, async () => {
      removed = await removeIfThere(fs, path);
    });
    if (lock === "held") return "kept";
    if (lock === "free") return removed ? "removed" : "gone";
    if (lock === "missing") return "gone";
    // No locks to be had here: judged as an unlocked temp.
  }
  const state = ownerState(owner);
  if (state === "alive") return "kept";
  if (state === "unknown") {
    let mtime: Date | null;
    try {
      mtime = (await fs.lstat(path)).mtime;
    } catch (err) {
      if (osCodeOf(err) === "ENOENT") return "gone"; // its writer finished
      throw err;
    }
    const old = mtime !== null &&
      options.now - mtime.getTime() >= options.maxAgeMs;
    if (!old) return "kept";
  }
  return await removeIfThere(fs, path) ? "removed" : "gone";
}
