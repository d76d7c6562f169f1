import { systemClock } from "../retry/mod.ts";
import type { IoOptions } from "./io_options.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";
import { sweepOrphans, type SweepResult } from "./_sweep_orphans.ts";

/** Options of {@linkcode recoverDir}. */
export interface RecoverDirOptions extends IoOptions {
  /**
   * Milliseconds after its last change that a temp whose owner cannot be
   * checked counts as an orphan. Sturdy's writers hold a kernel lock on
   * their temp until it is in place, so a temp whose lock is free is
   * removed at once and one whose lock is held is kept however old; only
   * temps from another host, on a file system without locks, or from an
   * older Sturdy (where /proc cannot tell either) wait for this age.
   *
   * @default {3_600_000} (one hour)
   */
  maxAge?: number;
}

/** What {@linkcode recoverDir} did. */
export type RecoverDirResult = SweepResult;

/**
 * Removes the temp files that writers killed mid-write left in `dir` (not
 * its subdirectories). A temp whose writer is still running is never
 * touched. Every write into a directory also does this, at most once a
 * minute per directory; call it yourself at start-up to clean at once.
 *
 * @param dir The directory to clean.
 * @param options Age threshold, retry, timeout, signal, fs.
 * @returns The paths removed and the temps kept.
 *
 * @example Clean up after a crashed writer
 * ```ts
 * import { recoverDir } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * // A temp left by pid 999999, which is not running.
 * const orphan = `${dir}/.a.json.999999-00000000-0-${"0".repeat(24)}.sturdy-tmp`;
 * await Deno.writeTextFile(orphan, "half");
 * await Deno.utime(orphan, 0, 0); // untouched for decades
 * const { removed } = await recoverDir(dir);
 * assert.deepEqual(removed, [orphan]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function recoverDir(
  dir: string,
  options?: RecoverDirOptions,
): Promise<RecoverDirResult> {
  checkPath("directory", "recoverDir", dir);
  const clock = options?.clock ?? systemClock;
  const maxAgeMs = options?.maxAge ?? 3_600_000;
  return runIo(
    "directory",
    "recoverDir",
    dir,
    options,
    (attempt) => sweepOrphans(attempt.fs, dir, { maxAgeMs, now: clock.now() }),
  );
}
