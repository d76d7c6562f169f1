import { join, resolve } from "node:path";
import { systemClock } from "../retry/mod.ts";
import type { FileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import { checkPath } from "./_check_path.ts";
import {
  isTransactionId,
  rollBackAbandoned,
  sweepBackups,
  TX_DIR,
} from "./_journal.ts";
import { runIo } from "./_run_io.ts";
import { sweepOrphans } from "./_sweep_orphans.ts";
import { osCodeOf } from "./_to_fs_error.ts";
import { sweepLocks } from "./_tx_owner.ts";

/** Options of {@linkcode recoverTransactions}. */
export interface RecoverTransactionsOptions extends IoOptions {
  /**
   * Milliseconds after its last change that a temp, backup or ref whose
   * owner cannot be checked counts as an orphan. Owners are checked by the
   * kernel lock they hold (and by /proc where Deno may read it); only
   * files from another host or on a file system without locks are judged
   * by age. A file whose owner provably runs is never removed.
   *
   * @default {3_600_000} (one hour)
   */
  maxAge?: number;
}

/** What {@linkcode recoverTransactions} did. */
export interface RecoverTransactionsResult {
  /** Journals of interrupted transactions that were rolled back. */
  rolledBack: string[];
  /** Orphan temps, backups and lock files removed. */
  removed: string[];
}

/**
 * Finishes what transactions killed mid-commit left in `dir`: every target
 * of an interrupted transaction is put back to its old content (the
 * transaction did not commit: its journal still existed), then its staged
 * files, backups and journal are removed, as are orphan temp files. A
 * transaction still committing in a running process is never touched.
 * Every {@linkcode transaction} runs this for the directories it writes
 * to, so calling it yourself is only needed to clean up at start-up.
 *
 * A journal that cannot be read or trusted is never guessed at: the call
 * fails with code `corrupt_journal` naming the file, and so does every
 * transaction in that directory until the journal is repaired or deleted.
 *
 * @param dir A directory that transactions wrote to.
 * @param options Age threshold for orphans, retry, timeout, signal, fs.
 * @returns The journals rolled back and the orphans removed.
 *
 * @example Recover after a crash (here: nothing to do)
 * ```ts
 * import { recoverTransactions, transaction } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await transaction(async (tx) => {
 *   await tx.writeText(`${dir}/a.txt`, "A");
 * });
 * const result = await recoverTransactions(dir);
 * assert.deepEqual(result, { rolledBack: [], removed: [] });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function recoverTransactions(
  dir: string,
  options?: RecoverTransactionsOptions,
): Promise<RecoverTransactionsResult> {
  checkPath("directory", "recoverTransactions", dir);
  const maxAgeMs = options?.maxAge ?? 3_600_000;
  const now = (options?.clock ?? systemClock).now();
  return runIo(
    "directory",
    "recoverTransactions",
    dir,
    options,
    ({ fs }) =>
      recoverDirectory(fs, resolve(dir), { sweep: true, maxAgeMs, now }),
  );
}

/**
 * Rolls back abandoned transactions touching `dir`; with `sweep`, also
 * removes orphan temps and backups from `dir` itself.
 */
export async function recoverDirectory(
  fs: FileSystem,
  dir: string,
  options: { sweep: boolean; maxAgeMs: number; now: number },
): Promise<RecoverTransactionsResult> {
  const sweepOptions = { maxAgeMs: options.maxAgeMs, now: options.now };
  const { rolledBack, live } = await rollBackAbandoned(fs, dir, sweepOptions);
  const removed: string[] = [];
  const txDir = join(dir, TX_DIR);
  try {
    removed.push(...(await sweepOrphans(fs, txDir, sweepOptions)).removed);
  } catch (err) {
    const code = osCodeOf(err);
    if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
  }
  if (options.sweep || rolledBack.length > 0) {
    removed.push(...(await sweepOrphans(fs, dir, sweepOptions)).removed);
    removed.push(...await sweepBackups(fs, dir, sweepOptions, live));
    // Last: a lock file is what tells the files above from orphans.
    removed.push(
      ...await sweepLocks(fs, dir, sweepOptions, isTransactionId),
    );
  }
  return { rolledBack, removed };
}
