// A FileSystem wrapper for tests: records every call and injects faults
// (errors, short writes, a SIGKILL of this process) at chosen calls.

import type { FileHandle, FileSystem } from "../../fs/file_system.ts";

/** One fault to inject. */
export interface Fault {
  /**
   * The call it applies to: a FileSystem method (`open`, `rename`, `stat`,
   * …) or a FileHandle method (`write`, `read`, `syncData`, `sync`,
   * `close`, `fstat`, `lock`, `tryLock`, `unlock`).
   */
  op: string;
  /**
   * Only calls whose path matches. For `rename`, `link` and `symlink` the
   * path tested is `"<from> -> <to>"`, so a pattern can pick either side.
   */
  path?: RegExp;
  /** Only the nth matching call (1-based); every matching call if unset. */
  nth?: number;
  /** Throw this instead of making the call. */
  error?: () => Error;
  /** For `write`: write at most this many bytes (0 writes nothing). */
  shortWrite?: number;
  /** SIGKILL this process just before the call. */
  kill?: boolean;
  /**
   * Awaited just before the call is made (or its error thrown), with the
   * call's path: pauses the caller there, e.g. to run another step of a
   * race in between. Not for `write` and `close`.
   */
  before?: (path: string) => Promise<void> | void;
}

/** A FileSystem that records its calls. */
export type FaultFileSystem = FileSystem & { calls: string[] };

/**
 * Makes an Error shaped like Deno's OS errors: `.code` is the errno name.
 *
 * @param code The errno name, e.g. `"ENOSPC"`.
 * @param message The message.
 * @returns The error.
 */
export function osError(code: string, message?: string): Error {
  return Object.assign(
    new Error(message ?? `${code}: injected fault`),
    { code },
  );
}

/**
 * Wraps `base` so every call is recorded in `calls` as `"<op> <path>"`
 * (FileHandle calls carry the path the file was opened with) and the
 * matching faults fire.
 *
 * @param base The file system to call through to.
 * @param faults The faults to inject.
 * @returns The wrapped file system.
 */
export function faultFs(base: FileSystem, faults: Fault[]): FaultFileSystem {
  const calls: string[] = [];
  const seen = faults.map(() => 0);

  // Records the call and returns the fault that fires for it, if any.
  function before(op: string, path: string): Fault | undefined {
    calls.push(`${op} ${path}`);
    let fired: Fault | undefined;
    faults.forEach((fault, i) => {
      if (fault.op !== op) return;
      if (fault.path && !fault.path.test(path)) return;
      seen[i]!++;
      if (fault.nth !== undefined && fault.nth !== seen[i]) return;
      fired ??= fault;
    });
    if (fired?.kill) Deno.kill(Deno.pid, "SIGKILL");
    return fired;
  }

  function call<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
    const fault = before(op, path);
    const run = () => fault?.error ? Promise.reject(fault.error()) : fn();
    if (fault?.before) {
      const hook = fault.before;
      return Promise.resolve().then(() => hook(path)).then(run);
    }
    return run();
  }

  function wrapHandle(handle: FileHandle, path: string): FileHandle {
    // Pass seek/truncate through (recorded) where the real handle has them.
    const extra = handle as Partial<Deno.FsFile>;
    const optional = typeof extra.seek === "function" &&
        typeof extra.truncate === "function"
      ? {
        seek: (offset: number, whence: Deno.SeekMode) =>
          call("seek", path, () => extra.seek!(offset, whence)),
        truncate: (len?: number) =>
          call("truncate", path, () => extra.truncate!(len)),
      }
      : {};
    // Locks are optional too: forwarded (and recorded) where present.
    const locks = {
      ...(handle.lock
        ? {
          lock: (exclusive?: boolean) =>
            call("lock", path, () => handle.lock!(exclusive)),
        }
        : {}),
      ...(handle.tryLock
        ? {
          tryLock: (exclusive?: boolean) =>
            call("tryLock", path, () => handle.tryLock!(exclusive)),
        }
        : {}),
      ...(handle.unlock
        ? { unlock: () => call("unlock", path, () => handle.unlock!()) }
        : {}),
    };
    return {
      ...optional,
      ...locks,
      write(p: Uint8Array): Promise<number> {
        const fault = before("write", path);
        if (fault?.error) return Promise.reject(fault.error());
        if (fault?.shortWrite !== undefined) {
          if (fault.shortWrite === 0) return Promise.resolve(0);
          return handle.write(p.subarray(0, fault.shortWrite));
        }
        return handle.write(p);
      },
      read: (p) => call("read", path, () => handle.read(p)),
      syncData: () => call("syncData", path, () => handle.syncData()),
      sync: () => call("sync", path, () => handle.sync()),
      stat: () => call("fstat", path, () => handle.stat()),
      close(): void {
        const fault = before("close", path);
        handle.close();
        if (fault?.error) throw fault.error();
      },
    };
  }

  return {
    calls,
    open: (path, options) =>
      call(
        "open",
        path,
        async () => wrapHandle(await base.open(path, options), path),
      ),
    rename: (from, to) =>
      call("rename", `${from} -> ${to}`, () => base.rename(from, to)),
    remove: (path, options) =>
      call("remove", path, () => base.remove(path, options)),
    stat: (path) => call("stat", path, () => base.stat(path)),
    lstat: (path) => call("lstat", path, () => base.lstat(path)),
    mkdir: (path, options) =>
      call("mkdir", path, () => base.mkdir(path, options)),
    readDir(path: string): AsyncIterable<Deno.DirEntry> {
      const fault = before("readDir", path);
      if (fault?.before) {
        const hook = fault.before;
        return (async function* () {
          await hook(path);
          if (fault.error) throw fault.error();
          yield* base.readDir(path);
        })();
      }
      if (fault?.error) {
        const error = fault.error();
        return {
          [Symbol.asyncIterator]: () => ({
            next: () => Promise.reject(error),
          }),
        };
      }
      return base.readDir(path);
    },
    readFile: (path, options) =>
      call("readFile", path, () => base.readFile(path, options)),
    realPath: (path) => call("realPath", path, () => base.realPath(path)),
    readLink: (path) => call("readLink", path, () => base.readLink(path)),
    chmod: (path, mode) => call("chmod", path, () => base.chmod(path, mode)),
    link: (oldpath, newpath) =>
      call(
        "link",
        `${oldpath} -> ${newpath}`,
        () => base.link(oldpath, newpath),
      ),
    symlink: (target, path, options) =>
      call(
        "symlink",
        `${target} -> ${path}`,
        () => base.symlink(target, path, options),
      ),
  };
}
