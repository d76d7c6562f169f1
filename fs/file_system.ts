/**
 * An open file, as far as Sturdy uses one. `Deno.FsFile` satisfies it.
 */
export interface FileHandle {
  /** Writes from `p`; returns how many bytes were written (maybe fewer). */
  write(p: Uint8Array): Promise<number>;
  /** Reads into `p`; returns how many bytes were read, `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
  /** Flushes the file's data to the device (fdatasync). */
  syncData(): Promise<void>;
  /** Flushes the file's data and metadata to the device (fsync). */
  sync(): Promise<void>;
  /** The file's metadata. */
  stat(): Promise<Deno.FileInfo>;
  /** Closes the file (and so releases its lock). */
  close(): void;
  /**
   * Takes the file's kernel lock (flock on Unix, LockFileEx on Windows),
   * waiting for it. Optional: without it (or `tryLock`) Sturdy cannot
   * prove that the writer of a temp file is alive, and judges such files
   * by age.
   */
  lock?(exclusive?: boolean): Promise<void>;
  /**
   * Takes the file's kernel lock without waiting: `false` if another open
   * file holds it. Optional, as for `lock`.
   */
  tryLock?(exclusive?: boolean): Promise<boolean>;
  /**
   * Releases the file's kernel lock without closing it. Optional: where it
   * is missing, closing releases the lock, but a child process spawned
   * meanwhile shares the open file and keeps the lock taken until it
   * execs, which can make a dead writer look alive for a moment.
   */
  unlock?(): Promise<void>;
}

/**
 * The file system calls Sturdy's fs/ module makes, as one object. The
 * default, {@linkcode denoFileSystem}, calls `Deno.*`; pass your own as the
 * `fs` option to inject faults (a full disk, a failing fsync, a crash at a
 * chosen step) in tests of code built on Sturdy, or to count calls.
 *
 * @example Make every rename fail as on a read-only file system
 * ```ts
 * import { denoFileSystem, type FileSystem, writeText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const readOnly: FileSystem = {
 *   ...denoFileSystem,
 *   rename: () =>
 *     Promise.reject(Object.assign(new Error("read-only"), { code: "EROFS" })),
 * };
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(
 *   writeText(`${dir}/a.txt`, "x", { fs: readOnly }),
 *   { code: "read_only" },
 * );
 * assert.deepEqual([...Deno.readDirSync(dir)], []); // no temp file left
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FileSystem {
  /** Opens a file (`Deno.open`). */
  open(path: string, options: Deno.OpenOptions): Promise<FileHandle>;
  /** Renames, replacing the target (`Deno.rename`). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or directory (`Deno.remove`). */
  remove(path: string, options?: Deno.RemoveOptions): Promise<void>;
  /** Metadata, following symlinks (`Deno.stat`). */
  stat(path: string): Promise<Deno.FileInfo>;
  /** Metadata of the link itself (`Deno.lstat`). */
  lstat(path: string): Promise<Deno.FileInfo>;
  /** Creates a directory (`Deno.mkdir`). */
  mkdir(path: string, options?: Deno.MkdirOptions): Promise<void>;
  /** Lists a directory (`Deno.readDir`). */
  readDir(path: string): AsyncIterable<Deno.DirEntry>;
  /** Reads a whole file (`Deno.readFile`). */
  readFile(path: string, options?: Deno.ReadFileOptions): Promise<Uint8Array>;
  /** Resolves symlinks to an absolute path (`Deno.realPath`). */
  realPath(path: string): Promise<string>;
  /** Reads a symlink's target (`Deno.readLink`). */
  readLink(path: string): Promise<string>;
  /** Changes a file's mode (`Deno.chmod`). */
  chmod(path: string, mode: number): Promise<void>;
  /** Makes a hard link `newpath` to `oldpath` (`Deno.link`). */
  link(oldpath: string, newpath: string): Promise<void>;
  /** Makes a symbolic link at `path` pointing to `target` (`Deno.symlink`). */
  symlink(
    target: string,
    path: string,
    options?: Deno.SymlinkOptions,
  ): Promise<void>;
}

// Each async Deno call is a thread-pool round trip of 50-100 µs here, while
// the same call made synchronously takes 5-20 µs on a local disk. A small
// durable write makes about ten of them, so the default file system makes
// the short metadata calls (open, stat, seek, truncate, lock, rename,
// unlink, chmod) and small reads and writes synchronously; what takes time
// (fsync, big reads and writes, directory walks) stays asynchronous, off
// the JavaScript thread. The trade-off, as in lock/: a hung file system
// blocks the event loop for a metadata call. Errors still arrive as
// rejected promises.
function now<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Reads and writes up to this size are made synchronously. */
const SMALL_WRITE = 65_536;

function quick(file: Deno.FsFile): Deno.FsFile {
  const write = file.write.bind(file);
  const read = file.read.bind(file);
  // Own properties shadow the prototype's async methods on this handle only.
  Object.assign(file, {
    write: (p: Uint8Array) =>
      p.byteLength <= SMALL_WRITE ? now(() => file.writeSync(p)) : write(p),
    read: (p: Uint8Array) =>
      p.byteLength <= SMALL_WRITE ? now(() => file.readSync(p)) : read(p),
    seek: (offset: number | bigint, whence: Deno.SeekMode) =>
      now(() => file.seekSync(offset, whence)),
    truncate: (len?: number) => now(() => file.truncateSync(len)),
    stat: () => now(() => file.statSync()),
    tryLock: (exclusive?: boolean) => now(() => file.tryLockSync(exclusive)),
    unlock: () => now(() => file.unlockSync()),
  });
  return file;
}

/**
 * The real file system, through `Deno.*`. The default `fs` of every fs/
 * call. Short metadata calls and writes up to 64 KiB are made
 * synchronously (see above), fsync and large I/O asynchronously.
 *
 * @example Use it directly
 * ```ts
 * import { denoFileSystem } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const info = await denoFileSystem.stat(dir);
 * assert.ok(info.isDirectory);
 * await denoFileSystem.remove(dir);
 * ```
 */
export const denoFileSystem: FileSystem = Object.freeze({
  open: (path: string, options: Deno.OpenOptions) =>
    now(() => quick(Deno.openSync(path, options))),
  rename: (from: string, to: string) => now(() => Deno.renameSync(from, to)),
  remove: (path: string, options?: Deno.RemoveOptions) =>
    options?.recursive
      ? Deno.remove(path, options)
      : now(() => Deno.removeSync(path, options)),
  stat: (path: string) => now(() => Deno.statSync(path)),
  lstat: (path: string) => now(() => Deno.lstatSync(path)),
  mkdir: (path: string, options?: Deno.MkdirOptions) =>
    Deno.mkdir(path, options),
  readDir: (path: string) => Deno.readDir(path),
  readFile: (path: string, options?: Deno.ReadFileOptions) =>
    Deno.readFile(path, options),
  realPath: (path: string) => Deno.realPath(path),
  readLink: (path: string) => now(() => Deno.readLinkSync(path)),
  chmod: (path: string, mode: number) => now(() => Deno.chmodSync(path, mode)),
  link: (oldpath: string, newpath: string) => Deno.link(oldpath, newpath),
  symlink: (target: string, path: string, options?: Deno.SymlinkOptions) =>
    Deno.symlink(target, path, options),
});
