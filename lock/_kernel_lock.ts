// Non-blocking kernel locks (Deno.FsFile.tryLock: flock on Unix,
// LockFileEx on Windows). The kernel drops them when the holder's file is
// closed or the process dies, even by kill -9, which makes them the best
// proof of death on one machine. tryLock never blocks, so no probe can
// hang on a stopped or stuck holder.

/** The state of a kernel lock on a file. */
export type KernelLockState = "held" | "free" | "none";

/**
 * Tries to take `file`'s exclusive lock once. `undefined` when the file
 * system does not support locks.
 */
export async function tryLock(file: Deno.FsFile): Promise<boolean | undefined> {
  try {
    return await file.tryLock(true);
  } catch {
    return undefined;
  }
}

/** A file's identity: same device and inode means the same file. */
export interface FileId {
  dev: number;
  ino: number | null;
}

// Synchronous steps, for a claim, a release and a waiter's poll: each is
// one or two system calls on a local file system (5-20 µs), where an async
// op costs a thread-pool hop (50-100 µs here); see "Synchronous steps" in
// _dir_backend.ts for the trade-off.

/** {@linkcode tryLock}, synchronously. */
export function tryLockSync(file: Deno.FsFile): boolean | undefined {
  try {
    return file.tryLockSync(true);
  } catch {
    return undefined;
  }
}

/**
 * Whether someone holds the kernel lock on `path`: "none" when the file is
 * missing or locks are unsupported. A probe that finds the lock free holds
 * it for an instant and lets it go.
 */
export function probeKernelLockSync(path: string): KernelLockState {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: true });
  } catch {
    return "none";
  }
  try {
    const locked = tryLockSync(file);
    if (locked === undefined) return "none";
    if (locked) {
      try {
        file.unlockSync();
      } catch { /* closing unlocks too */ }
    }
    return locked ? "free" : "held";
  } finally {
    file.close();
  }
}

/** The identity of an open file. */
export function fileIdSync(file: Deno.FsFile): FileId {
  const info = file.statSync();
  return { dev: info.dev, ino: info.ino };
}

/**
 * Whether `path` is still the file `id` names. Without inode numbers
 * (Windows) it cannot tell and answers true.
 */
export function isSameFileSync(path: string, id: FileId): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (id.ino === null || info.ino === null) return true;
  return info.ino === id.ino && info.dev === id.dev;
}
