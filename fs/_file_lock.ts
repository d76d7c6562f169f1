// Kernel locks (Deno.FsFile.tryLock: flock on Unix, LockFileEx on Windows)
// as the proof that the process that made a file is alive. The kernel drops
// a lock when its holder closes the file or dies, even by SIGKILL, and a
// lock belongs to one open file: a second open of the same file, even in
// the same process, cannot take it while the first holds it.
//
// Protocol between the maker of a file and a judge (a sweep):
//   maker: create the file (exclusive), take its lock without waiting,
//          then check that the file still has a name (nlink > 0);
//   judge: open the file, try its lock; free means its maker is gone, so
//          act on it (remove it) while still holding the lock.
// A judge can find a live maker's file free only in the instant between
// its creation and its lock. It then removes the file under the lock, so
// the maker, which checks after it got the lock, sees the file unlinked
// and starts over; a maker that lost the race to take its own lock also
// starts over. No lock is ever waited for, so a stopped process cannot
// block anyone.
//
// A judge releases a lock it took explicitly (unlock) before it closes the
// file: a lock belongs to the open file description, which a process
// spawned meanwhile shares until it execs (fork copies every descriptor,
// close-on-exec or not), so a plain close could leave the lock taken for a
// moment and the next judge would wrongly find a dead maker alive.

import type { FileHandle, FileSystem } from "./file_system.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** What a judge found: the lock `held`, `free`, the file `missing`, or no way to tell. */
export type LockProbe = "held" | "free" | "missing" | "unsupported";

/** How many times a maker starts over before it gives up locking. */
const ATTEMPTS = 4;

/**
 * Tries `handle`'s exclusive lock once: `undefined` where the handle or
 * the file system has no locks (ENOLCK, some network shares).
 */
export async function tryLock(
  handle: FileHandle,
): Promise<boolean | undefined> {
  if (typeof handle.tryLock !== "function") return undefined;
  try {
    return await handle.tryLock(true);
  } catch {
    return undefined;
  }
}

/**
 * Releases the lock `handle` holds, then closes it. The explicit unlock
 * matters where the process spawns children (see the header).
 */
export async function unlockAndClose(handle: FileHandle): Promise<void> {
  try {
    await handle.unlock?.();
  } catch { /* closing releases it anyway */ }
  handle.close();
}

/**
 * Creates the file `path()` names (exclusive create, write-only) and takes
 * its lock. Returns the open, locked file, or `undefined` if no lock could
 * be had (no locks here, or judges kept taking it): then nothing is left
 * behind, and the caller makes an unlocked file instead. `path` is called
 * again for each new try.
 */
export async function createLocked(
  fs: FileSystem,
  path: () => string,
  mode: number,
  options: {
    /**
     * Check right away that the file still has a name. A caller that will
     * fstat the file anyway may pass `false` and check `nlink` itself,
     * starting over if it is 0. @default {true}
     */
    checkName?: boolean;
  } = {},
): Promise<{ path: string; handle: FileHandle } | undefined> {
  const checkName = options.checkName ?? true;
  for (let i = 0; i < ATTEMPTS; i++) {
    const name = path();
    const handle = await fs.open(name, {
      write: true,
      createNew: true,
      mode,
    });
    let locked: boolean | undefined;
    try {
      locked = await tryLock(handle);
      // nlink is null on Windows, where an open file cannot be removed.
      if (locked && (!checkName || (await handle.stat()).nlink !== 0)) {
        return { path: name, handle };
      }
    } catch { /* the stat failed: start over */ }
    handle.close();
    // Ours and still empty; a judge that holds it removes it too.
    await fs.remove(name).catch(() => {});
    if (locked === undefined) return undefined;
  }
  return undefined;
}

/**
 * Judges the maker of `path` by its lock. When the lock is free,
 * `whileFree` runs while this probe holds it (so the file can be removed
 * without racing its maker), then the lock is released.
 */
export async function probeLock(
  fs: FileSystem,
  path: string,
  whileFree?: () => Promise<void>,
): Promise<LockProbe> {
  let handle: FileHandle;
  try {
    // Read-only: the probe never creates, truncates or changes the file.
    handle = await fs.open(path, { read: true });
  } catch (err) {
    return osCodeOf(err) === "ENOENT" ? "missing" : "unsupported";
  }
  let locked: boolean | undefined;
  try {
    locked = await tryLock(handle);
    if (locked === undefined) return "unsupported";
    if (!locked) return "held";
    await whileFree?.();
    return "free";
  } finally {
    if (locked) await unlockAndClose(handle);
    else handle.close();
  }
}
