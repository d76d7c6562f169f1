// The commit of a transaction's staged changes. The protocol and its
// invariant are described at the top of transaction.ts and _journal.ts.

import { dirname, join } from "node:path";
import { SturdyError } from "../retry/mod.ts";
import type { FileSystem } from "./file_system.ts";
import { FileWriteError } from "./errors.ts";
import { createTemp, type StagedTemp, syncDir } from "./_atomic_write.ts";
import { backUp, plan, type Planned, pool, type Staged } from "./_stage.ts";
import {
  backupPath,
  endTransaction,
  holdTransaction,
  type Journal,
  journalPath,
  refPath,
  refRecord,
  rollBack,
  TX_DIR,
  writeRecord,
} from "./_journal.ts";
import type { IoAttempt } from "./_run_io.ts";
import { osCodeOf, toFsError } from "./_to_fs_error.ts";
import { writeFailure } from "./_write_error.ts";

export type { Staged } from "./_stage.ts";

const OPERATION = "transaction";

// Each staged temp keeps its file (and kernel lock) open until the commit
// is over, so a sweep can tell it is live. A transaction writing more
// files than this locks only the first ones; the others get unlocked
// temp names and are judged by age, as where locks are unavailable.
const LOCKED_TEMPS = 256;

/** Removes files made before the journal existed. */
async function discard(fs: FileSystem, plans: Planned[]): Promise<void> {
  await pool(plans, async (p) => {
    for (const f of [p.temp, p.backup]) {
      if (f !== null) await fs.remove(f).catch(() => {});
    }
  });
  await release(plans);
}

/** Closes the staged temps, releasing their locks. */
async function release(plans: Planned[]): Promise<void> {
  for (const p of plans) {
    const staged = p.staged;
    p.staged = null;
    // The lock goes with the file anyway.
    await staged?.close().catch(() => {});
  }
}

// Errors made by `failed`: retry decisions look at their cause, so a
// transient OS error (EBUSY) still gets another attempt.
const wrapped = new WeakSet<Error>();

/** The error a retry policy should judge: the OS error behind ours. */
export function retryCause(err: unknown): unknown {
  return err instanceof Error && wrapped.has(err) ? err.cause : err;
}

function failed(p: Planned, err: unknown): SturdyError {
  if (err instanceof SturdyError) return err;
  const typed = toFsError("write", OPERATION, p.path, err);
  const error = new FileWriteError(
    `${typed.message}; the transaction was rolled back, so no file changed`,
    { code: typed.code, path: p.path, operation: OPERATION, cause: err },
  );
  wrapped.add(error);
  return error;
}

/**
 * Commits the staged changes all or none, within one attempt of the
 * `transaction` call. `recover` runs for the target directories first.
 */
export async function commitStaged(
  attempt: IoAttempt,
  staged: Map<string, Staged>,
  options: { durable: boolean; recover(dirs: string[]): Promise<void> },
): Promise<void> {
  const { fs, signal } = attempt;
  const { durable } = options;
  // Last staged wins, also when two paths lead to the same file.
  const byTarget = new Map<string, Planned>();
  for (
    const p of await Promise.all([...staged.values()].map((s) => plan(fs, s)))
  ) {
    byTarget.delete(p.target);
    byTarget.set(p.target, p);
  }
  const plans = [...byTarget.values()]
    .filter((p) => p.data !== null || p.existed)
    .sort((a, b) => a.target < b.target ? -1 : 1);
  if (plans.length === 0) return;
  const dirs = [...new Set(plans.map((p) => dirname(p.target)))];
  await options.recover(dirs);
  // Before any file of the transaction exists, its lock files do. A
  // failure here leaves nothing behind.
  const hold = await holdTransaction(fs, dirs);
  const { id } = hold;
  let locked = 0;
  try {
    // Steps 1 and 2: nothing visible changes; on failure, discard.
    try {
      await pool(plans, async (p) => {
        if (p.data === null) return;
        signal.throwIfAborted();
        p.staged = await createTemp(fs, p.target, p.data, {
          durability: durable ? "durable" : "none",
          operation: OPERATION,
          path: p.path,
          signal,
          lock: locked++ < LOCKED_TEMPS,
          ...(p.mode === undefined ? {} : { mode: p.mode }),
        });
        p.temp = p.staged.path;
        if (!p.existed) p.ino = (await fs.stat(p.temp)).ino;
      });
      await pool(plans.filter((p) => p.existed), async (p) => {
        p.backup = backupPath(p.target, id);
        await backUp(fs, p, p.backup, durable);
      });
    } catch (err) {
      await discard(fs, plans);
      throw err;
    }
    await attempt.commit(() => switchAll(fs, plans, id, dirs, durable))
      .catch(async (err) => {
        // Refused because the call gave up: nothing was switched.
        if (signal.aborted && err === signal.reason) await discard(fs, plans);
        throw err;
      });
  } finally {
    await release(plans);
    await hold.release();
    endTransaction(id);
  }
}

/** Steps 3 to 7: journal, switch, commit point, clean-up. */
async function switchAll(
  fs: FileSystem,
  plans: Planned[],
  id: string,
  dirs: string[],
  durable: boolean,
): Promise<void> {
  const home = dirs[0]!;
  const journalFile = journalPath(home, id);
  const refs = dirs.slice(1).map((d) => refPath(d, id));
  const journal: Journal = {
    format: "sturdy.transaction/1",
    id,
    createdAt: new Date().toISOString(),
    entries: plans.map((p) => ({
      target: p.target,
      temp: p.temp,
      backup: p.backup,
      ino: p.ino,
    })),
    refs,
  };
  // Step 3. Refs first: once the journal exists, every directory it
  // touches can lead recovery to it.
  let lock: StagedTemp | undefined;
  try {
    for (const ref of refs) {
      await writeRecord(fs, ref, refRecord(journalFile), { durable });
    }
    lock = await writeRecord(fs, journalFile, journal, { durable, lock: true });
  } catch (err) {
    await discard(fs, plans);
    for (const ref of refs) await fs.remove(ref).catch(() => {});
    throw failed(plans[0]!, err);
  }
  // The lock is held until the journal is gone (or the call fails).
  try {
    let current = plans[0]!;
    try {
      if (durable) {
        const all = dirs.flatMap((d) => [d, join(d, TX_DIR)]);
        await Promise.all(all.map((d) => syncDir(fs, d)));
      }
      // Step 4: the switch.
      for (const p of plans) {
        current = p;
        if (p.temp !== null) await fs.rename(p.temp, p.target);
        else await fs.remove(p.target);
      }
      // Step 5, then step 6: the commit point.
      if (durable) await Promise.all(dirs.map((d) => syncDir(fs, d)));
      await fs.remove(journalFile);
    } catch (err) {
      try {
        await rollBack(fs, journal, journalFile);
      } catch (rollbackError) {
        throw writeFailure(
          "rollback_failed",
          OPERATION,
          current.path,
          `the transaction failed (${
            err instanceof Error ? err.message : String(err)
          }) and rolling it back failed too (${
            rollbackError instanceof Error
              ? rollbackError.message
              : String(rollbackError)
          }); the journal "${journalFile}" was kept, so recoverTransactions("${home}") or the next transaction there puts the old contents back`,
          err,
        );
      }
      throw failed(current, err);
    }
    if (durable) {
      try {
        await syncDir(fs, join(home, TX_DIR));
      } catch (err) {
        // Backups stay: if the journal came back after a power loss, the
        // rollback would need them.
        throw writeFailure(
          "sync_failed",
          OPERATION,
          current.path,
          `the transaction committed but flushing its journal's directory failed (${
            osCodeOf(err) ?? "fsync error"
          }), so it may be rolled back after a power loss; check the device`,
          err,
        );
      }
    }
    // Step 7: clean-up is best effort; recovery sweeps leftovers.
    await pool(plans, async (p) => {
      if (p.backup !== null) await fs.remove(p.backup).catch(() => {});
    });
    for (const ref of refs) await fs.remove(ref).catch(() => {});
  } finally {
    await lock?.close().catch(() => {});
  }
}
