// Who owns a transaction, and whether it may still be committing, so
// recovery never rolls back a commit in flight nor removes its files.
//
// A transaction id is `<pid>-<boot>-<start>-<random>[-l]` (as in temp
// names). For its whole commit, before it makes any temp, backup, ref or
// journal, the committing process creates `<dir>/.sturdy-tx/<id>.lock` in
// every target directory and holds its kernel lock (fs/_file_lock.ts); it
// removes them last, after its own clean-up. The `-l` flag promises that
// it got every one of them: then a lock file that is missing means the
// transaction is over (removed by its owner, or by a recovery that found
// it free), or never got as far as making a file in that directory. An id
// without the flag (locks unavailable somewhere) promises nothing.
//
// Liveness, strongest first: in flight in this process; the lock file
// next to the file being judged (held: live, free: dead; missing with
// `-l`: dead); the owner checked by pid, boot and start token (/proc,
// which Deno reads only with --allow-all); the journal's own lock, which
// the committing process also holds; failing all of these (a file system
// without locks), the file's age.

import { join } from "node:path";
import type { FileHandle, FileSystem } from "./file_system.ts";
import { createLocked, probeLock, unlockAndClose } from "./_file_lock.ts";
import {
  isOtherBoot,
  ownerState,
  parseTempName,
  tempName,
} from "./_temp_name.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** The directory holding journals, refs and lock files, inside a target directory. */
export const TX_DIR = ".sturdy-tx";
const LOCK_SUFFIX = ".lock";

// Ids of the transactions this process is committing right now. Recovery
// must never roll back a commit in flight, and a pid alone cannot tell a
// live commit of this process from one it abandoned (a rollback that
// failed). Entries live only for the duration of one commit.
const live = new Set<string>();

/**
 * A fresh transaction id, owned by this process and marked live; `locked`
 * adds the `-l` flag (see the header).
 */
export function newTransactionId(locked = false): string {
  const id = tempName("tx", locked).slice(4, -".sturdy-tmp".length);
  live.add(id);
  return id;
}

/** Marks a transaction as no longer committing in this process. */
export function endTransaction(id: string): void {
  live.delete(id);
}

/** The lock file of transaction `id` in directory `dir`. */
export function lockPath(dir: string, id: string): string {
  return join(dir, TX_DIR, `${id}${LOCK_SUFFIX}`);
}

/** The lock files a committing transaction holds; `release` drops them. */
export interface TransactionHold {
  /** The transaction's id, marked live until `endTransaction`. */
  id: string;
  /** Removes the lock files (each while still locked) and closes them. */
  release(): Promise<void>;
}

/**
 * Creates and locks transaction `id`'s lock file in each of `dirs`, in
 * order; with `all`, gives up (`undefined`, nothing left) at the first
 * directory where no lock can be had.
 */
async function lockAll(
  fs: FileSystem,
  dirs: string[],
  id: string,
  all: boolean,
): Promise<TransactionHold | undefined> {
  const held: { path: string; handle: FileHandle }[] = [];
  const release = async () => {
    for (const { path, handle } of held.splice(0)) {
      await fs.remove(path).catch(() => {});
      try {
        await unlockAndClose(handle);
      } catch { /* the lock goes with the process anyway */ }
    }
  };
  try {
    for (const dir of dirs) {
      await fs.mkdir(join(dir, TX_DIR)).catch((err) => {
        if (osCodeOf(err) !== "EEXIST") throw err;
      });
      const file = await createLocked(fs, () => lockPath(dir, id), 0o666);
      if (file) held.push(file);
      else if (all) {
        await release();
        return undefined;
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { id, release };
}

/**
 * Starts a transaction in `dirs`: picks its id and creates and locks its
 * lock file in each directory, before any other file of it exists. The id
 * gets the `-l` flag only if every lock file was made; where locks are not
 * available, the lock files that could be made are kept and the
 * transaction's files are judged by age where there is none. On failure
 * nothing is left and no id stays live.
 */
export async function holdTransaction(
  fs: FileSystem,
  dirs: string[],
): Promise<TransactionHold> {
  for (const locked of [true, false]) {
    const id = newTransactionId(locked);
    try {
      const hold = await lockAll(fs, dirs, id, locked);
      if (hold) return hold;
    } catch (err) {
      endTransaction(id);
      throw err;
    }
    endTransaction(id);
  }
  throw new Error("unreachable: an unflagged hold always succeeds");
}

/**
 * The transaction's state: in flight in this process, else its lock file
 * in `dir` (held or free; missing for a `-l` id), else its owner's pid
 * and start token (/proc). With `whileFree`, a lock found free is held
 * while `whileFree` runs, so the owner cannot be mid-step meanwhile.
 */
async function state(
  fs: FileSystem,
  id: string,
  dir: string,
  whileFree?: () => Promise<void>,
): Promise<"live" | "dead" | "unknown"> {
  if (live.has(id)) return "live";
  const parsed = parseTempName(`.tx.${id}.sturdy-tmp`);
  // A lock proves nothing about an owner on another host or boot.
  if (!parsed || !isOtherBoot(parsed)) {
    const lock = await probeLock(fs, lockPath(dir, id), whileFree);
    // Held also when the owner is this very process, in another worker
    // (the set of ids in flight is per worker).
    if (lock === "held") return "live";
    if (lock === "free") return "dead";
    if (lock === "missing" && parsed?.locked) return "dead";
  }
  // Our own pid, not in flight and holding no lock: a commit this process
  // abandoned.
  if (parsed?.pid === Deno.pid) return "dead";
  const owner = parsed ? ownerState(parsed) : "unknown";
  return owner === "alive" ? "live" : owner;
}

/**
 * Whether the transaction `id`, whose journal is `journal` in `home`, may
 * still be committing: it is in flight in this process, it holds its lock
 * file or its journal's lock, or its owner provably runs.
 */
export async function isLive(
  fs: FileSystem,
  id: string,
  home: string,
  journal: string,
): Promise<boolean> {
  const known = await state(fs, id, home);
  if (known !== "unknown") return known === "live";
  return await probeLock(fs, journal) === "held";
}

/** Options of the sweeps: how old an unjudgeable leftover must be. */
export interface SweepAge {
  maxAgeMs: number;
  now: number;
}

async function oldEnough(
  fs: FileSystem,
  path: string,
  age: SweepAge,
): Promise<boolean> {
  const info = await fs.lstat(path).catch(() => undefined);
  // A hard link keeps the target's mtime; ctime says when it was made.
  const changed = info?.ctime ?? info?.mtime ?? null;
  return changed !== null && age.now - changed.getTime() >= age.maxAgeMs;
}

/**
 * Removes `path`, a leftover of transaction `id` (a backup, or a ref) in
 * `dir`, if the transaction is over there (its owner is dead, or it cannot
 * be told and the file is old) and `needed` says no record of it still
 * needs the file. Returns whether it removed it.
 *
 * `needed` runs where the owner can no longer take a step: while this
 * recovery holds the transaction's free lock file in `dir` (a dead or
 * finished owner), or once a `-l` id's lock file there is gone (its
 * owner removes it only after its last step). So a record the owner was
 * still writing when this recovery listed the directory is seen.
 */
export async function removeIfOver(
  fs: FileSystem,
  id: string,
  dir: string,
  path: string,
  age: SweepAge,
  needed: () => Promise<boolean>,
): Promise<boolean> {
  let removed = false;
  const remove = async () => {
    if (await needed()) return;
    await fs.remove(path).then(() => {
      removed = true;
    }, (err) => {
      if (osCodeOf(err) !== "ENOENT") throw err;
    });
  };
  let underLock = false;
  const known = await state(fs, id, dir, async () => {
    underLock = true;
    await remove();
  });
  if (known === "live" || underLock) return removed;
  if (known === "dead" || await oldEnough(fs, path, age)) await remove();
  return removed;
}

/**
 * Removes the lock files in `dir` of transactions that are over (lock
 * free). Runs last in a recovery: while a lock file exists, it is the
 * proof that the files of its transaction are orphans.
 */
export async function sweepLocks(
  fs: FileSystem,
  dir: string,
  age: SweepAge,
  isId: (id: string) => boolean,
): Promise<string[]> {
  const removed: string[] = [];
  const txDir = join(dir, TX_DIR);
  const names: string[] = [];
  try {
    for await (const entry of fs.readDir(txDir)) names.push(entry.name);
  } catch (err) {
    const code = osCodeOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return removed;
    throw err;
  }
  for (const name of names) {
    const id = name.slice(0, -LOCK_SUFFIX.length);
    if (!name.endsWith(LOCK_SUFFIX) || !isId(id) || live.has(id)) continue;
    const path = join(txDir, name);
    const remove = () =>
      fs.remove(path).then(() => {
        removed.push(path);
      }, (err) => {
        if (osCodeOf(err) !== "ENOENT") throw err;
      });
    const lock = await probeLock(fs, path, remove);
    if (lock === "unsupported" && await oldEnough(fs, path, age)) {
      await remove();
    }
  }
  return removed;
}
