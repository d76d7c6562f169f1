// Removes temp files left by killed writers, never a live writer's.
//
// Invariant: a temp is removed only if its owner is provably dead (same
// host and boot, and its pid is gone or now belongs to another process) or,
// when that cannot be checked, it has not been modified for `maxAgeMs`.

import { join } from "node:path";
import type { FileSystem } from "./file_system.ts";
import { ownerState, parseTempName } from "./_temp_name.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** What a sweep did. */
export interface SweepResult {
  /** Paths of the orphan temps removed. */
  removed: string[];
  /** Paths of the temps kept (live owner, or too young to judge). */
  kept: string[];
}

/** Sweeps `dir` (not its subdirectories) for orphan temps. */
export async function sweepOrphans(
  fs: FileSystem,
  dir: string,
  options: { maxAgeMs: number; now: number },
): Promise<SweepResult> {
  const removed: string[] = [];
  const kept: string[] = [];
  for await (const entry of fs.readDir(dir)) {
    if (!entry.isFile) continue;
    const owner = parseTempName(entry.name);
    if (!owner) continue;
    const path = join(dir, entry.name);
    let orphan: boolean;
    const state = ownerState(owner);
    if (state === "unknown") {
      let mtime: Date | null;
      try {
        mtime = (await fs.lstat(path)).mtime;
      } catch (err) {
        if (osCodeOf(err) === "ENOENT") continue; // its writer finished
        throw err;
      }
      orphan = mtime !== null &&
        options.now - mtime.getTime() >= options.maxAgeMs;
    } else orphan = state === "dead";
    if (!orphan) {
      kept.push(path);
      continue;
    }
    try {
      await fs.remove(path);
      removed.push(path);
    } catch (err) {
      if (osCodeOf(err) !== "ENOENT") throw err; // another sweep won
    }
  }
  return { removed, kept };
}
