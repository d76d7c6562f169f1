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

/**
 * Whether someone holds the kernel lock on `path`: "none" when the file is
 * missing or locks are unsupported. A probe that finds the lock free holds
 * it for an instant and lets it go.
 */
export async function probeKernelLock(path: string): Promise<KernelLockState> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch {
    return "none";
  }
  try {
    const locked = await tryLock(file);
    if (locked === undefined) return "none";
    if (locked) await file.unlock().catch(() => {});
    return locked ? "free" : "held";
  } finally {
    file.close();
  }
}

/** A file's identity: same device and inode means the same file. */
export interface FileId {
  dev: number;
  ino: number | null;
}

/** The identity of an open file. */
export async function fileId(file: Deno.FsFile): Promise<FileId> {
  const info = await file.stat();
  return { dev: info.dev, ino: info.ino };
}

/**
 * Whether `path` is still the file `id` names. Without inode numbers
 * (Windows) it cannot tell and answers true.
 */
export async function isSameFile(path: string, id: FileId): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (id.ino === null || info.ino === null) return true;
  return info.ino === id.ino && info.dev === id.dev;
}
