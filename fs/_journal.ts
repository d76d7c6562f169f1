// The rollback journal of multi-file transactions (SQLite style) and the
// rollback that recovery runs from it.
//
// Layout, for a transaction with id <id> (owner pid, boot, start token and
// 96 random bits, so a journal says who wrote it, and `-l` where it holds a
// lock file in every target directory, fs/_tx_owner.ts):
//   <dir>/.sturdy-tx/<id>.json      the journal, in the directory of the
//                                   first target (sorted); its existence is
//                                   the "commit in progress" bit
//   <dir2>/.sturdy-tx/<id>.ref      in every other target directory: names
//                                   the journal, so recovery started from
//                                   any touched directory finds it
//   <dir>/.<name>.<id>.sturdy-bak   hard link to (or copy of) a target's old
//                                   content
//   <dir>/.<name>.<…>.sturdy-tmp    the staged new content
//   <dir>/.sturdy-tx/<id>.lock      in every target directory, for the
//                                   whole commit: its kernel lock, held by
//                                   the committing process, says the
//                                   files above are not orphans
//                                   (fs/_tx_owner.ts)
//
// Invariant: while a journal exists, every target it lists can be put back
// to its old content: a target that existed has its backup (or was already
// restored), a target that did not exist is removed only if it is still
// the very file staged for it (same inode). So rolling back from the
// journal is always correct, and it is idempotent: a rollback killed
// halfway is finished by the next one.
//
// What keeps the backups there (the journal may sit in another directory
// than a backup, and the owner may die at any instant, also while a
// recovery elsewhere is halfway through its listing):
//   - records: while the journal exists, every ref it names exists (refs
//     are written before it, and removed only after it is gone: by the
//     commit's clean-up, by the rollback, or by a recovery that finds the
//     journal gone). So every directory holding a backup the journal
//     needs holds `<id>.json` (the first directory) or `<id>.ref`;
//   - backups: only the owner (discard before the journal exists, the
//     clean-up after the commit point, its own rollback) and a rollback
//     from the journal remove them while a record of their transaction
//     may exist. A sweep removes a backup only when its transaction is
//     over there AND neither `<id>.ref` nor `<id>.json` exists in the
//     backup's directory, checked while the owner can take no further
//     step: while the sweep holds the transaction's free lock file there
//     (the owner is dead or done; it held that lock from before it made
//     the backup), or once a `-l` id's lock file is gone (its owner
//     removes it only after its last step). A record the owner wrote
//     after the recovery listed `.sturdy-tx` is therefore still seen;
//   - recovery order: journals and refs first (rollBackAbandoned: a hot
//     journal is rolled back, which restores and then removes the
//     backups; a ref whose journal is gone is removed, under the same
//     rule, once the journal is still gone while the owner is stopped),
//     then backups (sweepBackups), then lock files (sweepLocks).
// So for any transaction: with its journal present, all its backups stay
// until the rollback; with the journal deleted (committed, or rolled
// back) the refs go next and then the backups, in any order of crashes;
// with no journal ever written, no target changed and the refs and
// backups go the same way. Files judged by age (no locks, another host)
// keep this only as far as the age threshold is longer than a commit.

import { basename, dirname, isAbsolute, join } from "node:path";
import { FileWriteError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";
import {
  createTemp,
  publish,
  type StagedTemp,
  syncDir,
} from "./_atomic_write.ts";
import { isTempName } from "./_temp_name.ts";
import { isLive, removeIfOver, type SweepAge, TX_DIR } from "./_tx_owner.ts";
import { osCodeOf } from "./_to_fs_error.ts";

export {
  endTransaction,
  holdTransaction,
  newTransactionId,
  TX_DIR,
} from "./_tx_owner.ts";
export type { SweepAge } from "./_tx_owner.ts";

const FORMAT = "sturdy.transaction/1";
const REF_FORMAT = "sturdy.transaction-ref/1";
const ID = /^\d+-(?:[0-9a-f]{8}|x)-(?:[0-9a-z]+|x)-[0-9a-f]{24}(?:-l)?$/;

/** Whether `id` has the shape of a transaction id. */
export function isTransactionId(id: string): boolean {
  return ID.test(id);
}
const BACKUP_SUFFIX = ".sturdy-bak";

/** One target of a transaction, as recorded in its journal. */
export interface JournalEntry {
  /** The absolute path of the file to replace or remove. */
  target: string;
  /** The staged new content, or `null` for a removal. */
  temp: string | null;
  /** The old content's backup, or `null` if the target did not exist. */
  backup: string | null;
  /** The staged file's inode where the target did not exist. */
  ino: number | null;
}

/** A transaction's journal. */
export interface Journal {
  format: typeof FORMAT;
  id: string;
  createdAt: string;
  entries: JournalEntry[];
  /** The ref files in the other target directories. */
  refs: string[];
}

/** The backup path for `target` in transaction `id`. */
export function backupPath(target: string, id: string): string {
  return join(
    dirname(target),
    `.${basename(target).slice(0, 80)}.${id}${BACKUP_SUFFIX}`,
  );
}

/** The journal path of transaction `id` in directory `dir`. */
export function journalPath(dir: string, id: string): string {
  return join(dir, TX_DIR, `${id}.json`);
}

/** The ref path of transaction `id` in directory `dir`. */
export function refPath(dir: string, id: string): string {
  return join(dir, TX_DIR, `${id}.ref`);
}

function ignoreMissing(err: unknown): void {
  if (osCodeOf(err) !== "ENOENT") throw err;
}

/**
 * Writes `value` as JSON to `path` atomically (temp, sync, rename), so a
 * journal or ref is either absent or complete, never torn. With `lock`,
 * the temp's kernel lock, taken when it was created, is kept across the
 * rename, so no recovery can ever see the record unlocked while this
 * process lives; the open file that holds the lock is returned (close it
 * to release).
 */
export async function writeRecord(
  fs: FileSystem,
  path: string,
  value: unknown,
  options: { durable: boolean; lock?: boolean },
): Promise<StagedTemp | undefined> {
  await fs.mkdir(dirname(path)).catch((err) => {
    if (osCodeOf(err) !== "EEXIST") throw err;
  });
  const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
  const temp = await createTemp(fs, path, bytes, {
    durability: options.durable ? "durable" : "none",
    operation: "transaction",
  });
  if (!options.lock) {
    await publish(fs, temp, path);
    return undefined;
  }
  try {
    await fs.rename(temp.path, path);
    return temp;
  } catch (err) {
    await fs.remove(temp.path).catch(() => {});
    await temp.close().catch(() => {});
    throw err;
  }
}

/** The record a ref file holds. */
export function refRecord(journal: string): unknown {
  return { format: REF_FORMAT, journal };
}

function corrupt(path: string, why: string, cause?: unknown): FileWriteError {
  const dir = dirname(dirname(path));
  return new FileWriteError(
    `Cannot recover transactions in "${dir}": the journal "${path}" is unreadable (${why}), so it is unknown which files to restore; it is kept as it is and blocks transactions there. Check the files it lists, restore them from their "${BACKUP_SUFFIX}" files if needed, then delete it`,
    {
      code: "corrupt_journal",
      path,
      operation: "recoverTransactions",
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

async function readRecord(fs: FileSystem, path: string): Promise<unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      await fs.readFile(path),
    );
  } catch (err) {
    if (osCodeOf(err) === "ENOENT") return undefined;
    if (err instanceof TypeError) throw corrupt(path, "not UTF-8", err);
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw corrupt(path, "not valid JSON", err);
  }
}

function sameDir(a: string, b: string): boolean {
  return dirname(a) === dirname(b);
}

/** Checks a parsed journal so recovery never touches a file it should not. */
function validate(value: unknown, path: string, id: string): Journal {
  const j = value as Partial<Journal> | null;
  const bad = (why: string) => corrupt(path, why);
  if (j?.format !== FORMAT) throw bad(`its format is not "${FORMAT}"`);
  if (j.id !== id) throw bad("its id does not match its name");
  if (!Array.isArray(j.entries) || !Array.isArray(j.refs)) {
    throw bad("it has no entries");
  }
  for (const e of j.entries as Partial<JournalEntry>[]) {
    const ok = typeof e?.target === "string" && isAbsolute(e.target) &&
      (e.temp === null ||
        (typeof e.temp === "string" && sameDir(e.temp, e.target) &&
          isTempName(basename(e.temp)))) &&
      (e.backup === null || e.backup === backupPath(e.target, id)) &&
      (e.ino === null || typeof e.ino === "number");
    if (!ok) throw bad(`an entry is malformed: ${JSON.stringify(e)}`);
  }
  for (const r of j.refs) {
    if (typeof r !== "string" || r !== refPath(dirname(dirname(r)), id)) {
      throw bad(`a ref is malformed: ${JSON.stringify(r)}`);
    }
  }
  return j as Journal;
}

/** Syncs a directory, tolerating its absence. */
async function syncIfPresent(fs: FileSystem, dir: string): Promise<void> {
  await syncDir(fs, dir).catch(ignoreMissing);
}

/**
 * Puts every target of `journal` back to its old content, removes the
 * temps and backups, then deletes the journal (the point after which the
 * transaction is settled as rolled back) and its refs.
 */
export async function rollBack(
  fs: FileSystem,
  journal: Journal,
  path: string,
): Promise<void> {
  for (const e of journal.entries) {
    if (e.backup !== null) {
      // If the target was never replaced, backup and target are the same
      // inode and rename does nothing; the remove below then drops the
      // extra link.
      await fs.rename(e.backup, e.target).catch(ignoreMissing);
      await fs.remove(e.backup).catch(ignoreMissing);
    } else if (e.temp !== null) {
      // The target did not exist: remove it only if it is our staged file.
      const info = await fs.lstat(e.target).catch((err) => {
        ignoreMissing(err);
        return undefined;
      });
      const ours = info !== undefined &&
        (e.ino === null ? !(await exists(fs, e.temp)) : info.ino === e.ino);
      if (ours) await fs.remove(e.target).catch(ignoreMissing);
    }
    if (e.temp !== null) await fs.remove(e.temp).catch(ignoreMissing);
  }
  const dirs = new Set(journal.entries.map((e) => dirname(e.target)));
  await Promise.all([...dirs].map((d) => syncIfPresent(fs, d)));
  await fs.remove(path).catch(ignoreMissing);
  await syncIfPresent(fs, dirname(path));
  for (const ref of journal.refs) await fs.remove(ref).catch(ignoreMissing);
}

async function exists(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (err) {
    ignoreMissing(err);
    return false;
  }
}

/** Reads and validates a journal; `undefined` if it no longer exists. */
async function readJournal(
  fs: FileSystem,
  path: string,
  id: string,
): Promise<Journal | undefined> {
  const value = await readRecord(fs, path);
  return value === undefined ? undefined : validate(value, path, id);
}

/**
 * Rolls back every abandoned transaction that touched `dir` (journals in
 * its `.sturdy-tx`, and journals elsewhere named by refs there). Returns
 * the journals rolled back. Throws a `corrupt_journal` error for a journal
 * it cannot trust.
 */
export async function rollBackAbandoned(
  fs: FileSystem,
  dir: string,
  age: SweepAge,
): Promise<{ rolledBack: string[]; live: Set<string> }> {
  const txDir = join(dir, TX_DIR);
  const names: string[] = [];
  try {
    for await (const entry of fs.readDir(txDir)) names.push(entry.name);
  } catch (err) {
    if (osCodeOf(err) === "ENOENT" || osCodeOf(err) === "ENOTDIR") {
      return { rolledBack: [], live: new Set() };
    }
    throw err;
  }
  const rolledBack: string[] = [];
  const liveIds = new Set<string>();
  for (const name of names.sort()) {
    const m = /^(.*)\.(json|ref)$/.exec(name);
    if (!m || !ID.test(m[1]!)) continue;
    const id = m[1]!;
    const path = join(txDir, name);
    let journal = path;
    if (m[2] === "ref") {
      const ref = await readRecord(fs, path) as
        | { format?: unknown; journal?: unknown }
        | undefined;
      if (ref === undefined) continue;
      if (
        ref?.format !== REF_FORMAT || typeof ref.journal !== "string" ||
        ref.journal !== journalPath(dirname(dirname(ref.journal)), id)
      ) throw corrupt(path, "it does not name a journal");
      journal = ref.journal;
    }
    if (await isLive(fs, id, dirname(dirname(journal)), journal)) {
      liveIds.add(id);
      continue;
    }
    const record = await readJournal(fs, journal, id);
    if (record) {
      await rollBack(fs, record, journal);
      rolledBack.push(journal);
    } else if (m[2] === "ref") {
      // A ref whose journal is gone belongs to a settled transaction, or
      // to one whose journal is not written yet: its lock file tells, and
      // the journal is looked for again while the owner cannot write it.
      const needed = () => exists(fs, journal).catch(() => true);
      await removeIfOver(fs, id, dir, path, age, needed);
    }
  }
  return { rolledBack, live: liveIds };
}

/**
 * Removes backups in `dir` whose transaction is over and has no record
 * left here that could still need them (see the header).
 */
export async function sweepBackups(
  fs: FileSystem,
  dir: string,
  age: SweepAge,
  liveIds: Set<string>,
): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of fs.readDir(dir)) {
    if (!entry.name.endsWith(BACKUP_SUFFIX)) continue;
    const id = entry.name.slice(0, -BACKUP_SUFFIX.length).split(".").at(-1)!;
    const path = join(dir, entry.name);
    if (!ID.test(id) || liveIds.has(id)) continue;
    // The transaction may have been live when rollBackAbandoned listed
    // this directory, and written its ref or journal here, switched its
    // targets and died since: its journal is then hot and needs this
    // backup. So the records are looked for only once the owner can no
    // longer write them (its lock file here free and held by us, or gone).
    // Where it cannot be told, the backup is kept.
    const needed = async () =>
      await exists(fs, refPath(dir, id)).catch(() => true) ||
      await exists(fs, journalPath(dir, id)).catch(() => true);
    if (await removeIfOver(fs, id, dir, path, age, needed)) {
      removed.push(path);
    }
  }
  return removed;
}
