// The durable atomic replace of one file (DESIGN.md section 5).
//
// Invariant: after a crash at any instant the target holds its complete
// old content or its complete new content, never a mix and never empty.
// Each step keeps it:
//   1. the new bytes go to a fresh temp file in the target's directory
//      (exclusive create, random name): the target is untouched; the
//      temp's kernel lock is held from its creation until it is renamed
//      or removed, so a sweep in any process can tell it from an orphan;
//   2. every byte is written and the size checked, then the data synced
//      (unless durability is "none"): a torn temp is never renamed;
//   3. rename(temp, target) is the single atomic switch, and it runs only
//      through `attempt.commit`, so a call that gave up never switches;
//   4. the directory is synced (durable) so the switch survives power loss.
// On any failure before the switch the temp is removed; after it the temp
// name no longer exists. A failed fsync is never retried: the kernel may
// have dropped the dirty pages and a second fsync would report success.

import { basename, dirname, join, resolve } from "node:path";
import { SturdyError } from "../retry/mod.ts";
import type { FileHandle, FileSystem } from "./file_system.ts";
import type { IoAttempt } from "./_run_io.ts";
import { createLocked, unlockAndClose } from "./_file_lock.ts";
import { osCodeOf } from "./_to_fs_error.ts";
import { tempName } from "./_temp_name.ts";
import { copyStream, fileStream, writeAll } from "./_stream_io.ts";
import { writeFailure } from "./_write_error.ts";

export { isTempName } from "./_temp_name.ts";

/** How hard a write works to survive a crash. */
export type Durability = "durable" | "atomic" | "none";

/** What a write does when the target is a symlink. */
export type SymlinkPolicy = "follow" | "replace" | "reject";

/** Data to write: bytes in memory or a stream of them. */
export type WriteData = Uint8Array | ReadableStream<Uint8Array>;

/**
 * A complete temp file whose writer still holds it open, and so holds its
 * kernel lock: a sweep leaves it alone until `close`. Close it only once
 * it has been renamed into place or removed.
 */
export interface StagedTemp {
  /** The temp file's path. */
  readonly path: string;
  /**
   * Releases the lock (explicitly, so a child process spawned meanwhile,
   * which shares the open file, cannot keep it taken), then closes the
   * file; later calls do nothing. `unlock: false` skips the explicit
   * unlock, for a temp already renamed over its target: it is no longer a
   * temp, so no sweep will ever probe its lock.
   */
  close(unlock?: boolean): Promise<void>;
}

/** Options of {@linkcode createTemp}. */
export interface CreateTempOptions {
  /** `"none"` skips the fsync of the temp. */
  durability: Durability;
  /** The temp's mode; the umask'd default for a new file if unset. */
  mode?: number;
  /** Stops a stream between chunks. */
  signal?: AbortSignal;
  /** The public call, for error messages. @default {"write"} */
  operation?: string;
  /** The path the caller asked for, for error messages. @default {target} */
  path?: string;
  /**
   * The device the target lives on: the temp (in the target's directory)
   * must be on it, or the rename would not replace the target atomically
   * (e.g. a bind-mounted file). @default {undefined} (not checked)
   */
  device?: number;
  /**
   * Hold the temp's kernel lock until `close`; without it the temp is
   * closed at once and a sweep judges it by age.
   * @default {true}
   */
  lock?: boolean;
  /**
   * Runs once every byte is in the temp, while the temp is synced; if it
   * throws, the temp is removed and its error thrown.
   */
  beforeCommit?: () => void | Promise<void>;
  /**
   * Starts once the temp exists, as its data is written, and runs
   * alongside the write and the sync; the temp is published only if it
   * succeeds, and nothing settles before it has. If it throws, the temp
   * is removed and its error thrown.
   */
  whileWriting?: () => void | Promise<void>;
  /**
   * Bytes that overwrite the start of the temp once all of the data is
   * in it, before it is synced.
   */
  rewriteStart?: () => Uint8Array | Promise<Uint8Array>;
}

/** Options of {@linkcode atomicWrite}. */
export interface AtomicWriteOptions {
  /** @default {"durable"} */
  durability?: Durability;
  /** @default {"follow"} */
  symlinks?: SymlinkPolicy;
  /** Keep the previous content as `<name>.bak`. @default {false} */
  backup?: boolean;
  /** The new file's mode; the existing file's mode if unset. */
  mode?: number;
  /** The public call, for error messages. @default {"write"} */
  operation?: string;
  /** As for {@linkcode CreateTempOptions.beforeCommit}. */
  beforeCommit?: () => void | Promise<void>;
  /** As for {@linkcode CreateTempOptions.whileWriting}. */
  whileWriting?: () => void | Promise<void>;
  /** As for {@linkcode CreateTempOptions.rewriteStart}. */
  rewriteStart?: () => Uint8Array | Promise<Uint8Array>;
}

const WINDOWS = Deno.build.os === "windows";
/** Codes after which another attempt could report a false success. */
const FATAL_CODES = new Set(["sync_failed", "stream_consumed"]);

/** Whether a failure must end the call instead of being retried. */
export function isFatalWriteError(err: unknown): boolean {
  return err instanceof SturdyError && FATAL_CODES.has(err.code);
}

/**
 * Wraps one attempt of a write so that once an attempt failed fatally (a
 * failed fsync, a consumed stream) every later attempt rethrows that error
 * instead of trying again, whatever the caller's retry policy says.
 * `alsoFatal` adds the caller's own condition (e.g. a consumed stream).
 */
export function guardAttempts<T>(
  fn: (attempt: IoAttempt) => Promise<T>,
  alsoFatal: (err: unknown) => boolean = () => false,
): (attempt: IoAttempt) => Promise<T> {
  let fatal: { error: unknown } | undefined;
  return async (attempt) => {
    if (fatal) throw fatal.error;
    try {
      return await fn(attempt);
    } catch (err) {
      if (isFatalWriteError(err) || alsoFatal(err)) fatal = { error: err };
      throw err;
    }
  };
}

/**
 * Creates a temp file next to `target` holding all of `data`, synced
 * unless durability is `"none"`, and returns it still open and locked. On
 * failure nothing is left behind.
 *
 * @param fs The file system.
 * @param target The file the temp will replace.
 * @param data The bytes or a stream of them.
 * @param options Durability, mode, signal, lock.
 * @returns The temp; close it once it is renamed or removed.
 */
export async function createTemp(
  fs: FileSystem,
  target: string,
  data: WriteData,
  options: CreateTempOptions,
): Promise<StagedTemp> {
  // Bytes can be written again: their temp's name check is folded into the
  // size check (one fstat fewer). A sweep that took the temp in the
  // instant between its creation and its lock removed it; start over.
  if (data instanceof Uint8Array && options.lock !== false) {
    for (let i = 0; i < 3; i++) {
      try {
        return await stageTemp(fs, target, data, options, false);
      } catch (err) {
        if (!(err instanceof TempLost)) throw err;
      }
    }
  }
  return await stageTemp(fs, target, data, options, true);
}

/** The temp was removed by a sweep before its lock was taken. */
class TempLost extends Error {}

async function stageTemp(
  fs: FileSystem,
  target: string,
  data: WriteData,
  options: CreateTempOptions,
  checkName: boolean,
): Promise<StagedTemp> {
  const operation = options.operation ?? "write";
  const path = options.path ?? target;
  options.signal?.throwIfAborted();
  const name = (locked: boolean) =>
    join(dirname(target), tempName(basename(target), locked));
  // Exclusive create: 96 random bits make a collision practically
  // impossible, and createNew makes one harmless. The temp starts with the
  // target's mode (less the umask), never more exposed than the target.
  // Its name says whether its lock is held (where locks work).
  const mode = options.mode ?? 0o666;
  const created = options.lock === false
    ? undefined
    : await createLocked(fs, () => name(true), mode, { checkName });
  const temp = created?.path ?? name(false);
  const handle: FileHandle = created?.handle ??
    await fs.open(temp, { write: true, createNew: true, mode });
  let open = true;
  const close = async (unlock = true) => {
    if (!open) return;
    open = false;
    if (created && unlock) await unlockAndClose(handle);
    else handle.close();
  };
  // Started in a microtask: it runs once this function waits on the
  // first write, so the write is under way meanwhile.
  const alongside = options.whileWriting
    ? Promise.resolve().then(options.whileWriting).then(
      () => undefined,
      (error: unknown) => ({ error }),
    )
    : undefined;
  try {
    const site = { operation, path };
    const size = data instanceof Uint8Array
      ? (await writeAll(handle, data, site), data.length)
      : await copyStream(handle, data, site, options.signal);
    if (options.rewriteStart) {
      await rewriteStart(handle, await options.rewriteStart(), size, site);
    }
    const info = await handle.stat();
    // nlink is null on Windows, where an open file cannot be removed.
    if (created && !checkName && info.nlink === 0) throw new TempLost();
    if (options.device !== undefined && info.dev !== options.device) {
      throw writeFailure(
        "cross_device",
        operation,
        path,
        `it is on another file system (device ${options.device}) than its directory (device ${info.dev}), e.g. a bind-mounted file, so it cannot be replaced atomically; write to a file whose directory is on the same file system`,
      );
    }
    if (info.size !== size) {
      throw writeFailure(
        "short_write",
        operation,
        path,
        `the temp file holds ${info.size} bytes instead of ${size}; the target was left unchanged`,
      );
    }
    // The umask may have cut the mode given to open; chmod is not masked.
    // Most of the time it did not, and the chmod is saved.
    if (
      options.mode !== undefined && !WINDOWS &&
      ((info.mode ?? 0) & 0o7777) !== options.mode
    ) {
      await fs.chmod(temp, options.mode);
    }
    // The caller's last step runs while the data is flushed (the fsync
    // waits on the device, not on this thread), and the temp is published
    // only if it succeeds.
    const syncing = options.durability !== "none"
      ? handle.syncData()
      : undefined;
    syncing?.catch(() => {}); // awaited below
    let refused: { error: unknown } | undefined;
    if (options.beforeCommit) {
      try {
        await options.beforeCommit();
      } catch (err) {
        refused = { error: err };
      }
    }
    if (syncing) {
      try {
        await syncing;
      } catch (err) {
        if (refused) throw refused.error;
        throw writeFailure(
          "sync_failed",
          operation,
          path,
          `flushing the new data to the device failed (${
            osCodeOf(err) ?? "fsync error"
          }); the target was left unchanged and the write is not retried, since a failed fsync may have dropped the data (check the device and its logs)`,
          err,
        );
      }
    }
    if (refused) throw refused.error;
    const failed = await alongside;
    if (failed) throw failed.error;
    if (!created) await close();
    return { path: temp, close };
  } catch (err) {
    await alongside; // never settle while it runs (it may hold a lock)
    // Removed while still locked, so no sweep races the removal.
    await fs.remove(temp).catch(() => {});
    await close().catch(() => {}); // already failing
    throw err;
  }
}

/** A file handle that can move its position (Deno's files can). */
interface Seekable extends FileHandle {
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
}

/** Overwrites the first bytes of a file just written (`size` bytes long). */
async function rewriteStart(
  handle: FileHandle,
  bytes: Uint8Array,
  size: number,
  site: { operation: string; path: string },
): Promise<void> {
  const seekable = handle as Partial<Seekable>;
  if (typeof seekable.seek !== "function" || bytes.length > size) {
    throw writeFailure(
      "invalid_data",
      site.operation,
      site.path,
      bytes.length > size
        ? `the bytes to rewrite its start with (${bytes.length}) are more than were written (${size}); the target was left unchanged`
        : "its file system cannot seek, so its start cannot be rewritten; the target was left unchanged",
    );
  }
  await (handle as Seekable).seek(0, Deno.SeekMode.Start);
  await writeAll(handle, bytes, site);
}

/**
 * Renames a staged temp over `target` (through `commit` if given), then
 * releases it; on failure the temp is removed first.
 */
export async function publish(
  fs: FileSystem,
  temp: StagedTemp,
  target: string,
  commit: <T>(step: () => Promise<T>) => Promise<T> = (step) => step(),
): Promise<void> {
  try {
    await commit(() => fs.rename(temp.path, target));
  } catch (err) {
    // Removed while still locked, so no sweep races the removal.
    await fs.remove(temp.path).catch(() => {});
    // The first failure is the one to see.
    await temp.close().catch(() => {});
    throw err;
  }
  await temp.close(false);
}

/**
 * Flushes a directory's entries (a rename into it) to the device. Skipped
 * on Windows, which cannot open a directory; tolerated where the file
 * system does not support it (EINVAL, ENOTSUP).
 *
 * @param fs The file system.
 * @param dir The directory.
 */
export async function syncDir(fs: FileSystem, dir: string): Promise<void> {
  if (WINDOWS) return;
  const handle = await fs.open(dir, { read: true });
  try {
    await handle.sync();
  } catch (err) {
    const code = osCodeOf(err);
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") {
      throw err;
    }
  } finally {
    handle.close();
  }
}

function isMissing(err: unknown): boolean {
  return osCodeOf(err) === "ENOENT";
}

/** The file a write lands in, per the symlink policy, and its metadata. */
async function resolveTarget(
  fs: FileSystem,
  path: string,
  policy: SymlinkPolicy,
  operation: string,
): Promise<{ target: string; info: Deno.FileInfo | undefined }> {
  let current = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    let info: Deno.FileInfo;
    try {
      info = await fs.lstat(current);
    } catch (err) {
      if (isMissing(err)) return { target: current, info: undefined };
      throw err;
    }
    if (!info.isSymlink) return { target: current, info };
    if (policy === "reject") {
      throw writeFailure(
        "symlink_rejected",
        operation,
        path,
        `${
          hops === 0 ? "it" : `"${current}"`
        } is a symbolic link and the symlinks policy is "reject"; write to the real file or pass symlinks: "follow" or "replace"`,
      );
    }
    // "replace" swaps the link itself for a regular file.
    if (policy === "replace") return { target: current, info: undefined };
    current = resolve(dirname(current), await fs.readLink(current));
  }
  throw writeFailure(
    "symlink_loop",
    operation,
    path,
    "too many levels of symbolic links; check for a link that points back to itself",
  );
}

// The backup is itself an atomic replace of `<name>.bak` with a copy of
// the current content, so a crash leaves it complete (old or new backup).
async function writeBackup(
  fs: FileSystem,
  target: string,
  options: CreateTempOptions,
): Promise<void> {
  const bak = `${target}.bak`;
  const source = fileStream(await fs.open(target, { read: true }));
  let temp: StagedTemp;
  try {
    temp = await createTemp(fs, bak, source, options);
  } catch (err) {
    await source.cancel().catch(() => {}); // closes the file if unread
    throw err;
  }
  await publish(fs, temp, bak);
}

/**
 * Replaces `path` atomically with `data` (DESIGN.md section 5): symlink
 * policy, kept mode, same-device check, temp, commit, directory sync.
 *
 * @param attempt The current attempt of the call (its `commit` guards the
 *   rename).
 * @param path The file to replace.
 * @param data The new content.
 * @param options Durability, symlinks, backup, mode.
 */
export async function atomicWrite(
  attempt: IoAttempt,
  path: string,
  data: WriteData,
  options: AtomicWriteOptions,
): Promise<void> {
  const { fs, signal } = attempt;
  const operation = options.operation ?? "write";
  const durability = options.durability ?? "durable";
  const { target, info } = await resolveTarget(
    fs,
    path,
    options.symlinks ?? "follow",
    operation,
  );
  if (info?.isDirectory) {
    throw writeFailure(
      "is_a_directory",
      operation,
      path,
      "it is a directory, not a file; pass the path of a file inside it",
    );
  }
  const dir = dirname(target);
  // Deno.rename copies across devices (EXDEV) instead of failing: the temp
  // checks it is on the target's device before anything is renamed.
  const mode = options.mode ??
    (typeof info?.mode === "number" ? info.mode & 0o7777 : undefined);
  const tempOptions: CreateTempOptions = {
    durability,
    operation,
    path,
    ...(mode === undefined ? {} : { mode }),
    ...(info ? { device: info.dev } : {}),
    signal,
  };
  if (options.backup && info?.isFile) {
    await writeBackup(fs, target, tempOptions);
  }
  const temp = await createTemp(fs, target, data, {
    ...tempOptions,
    ...(options.beforeCommit ? { beforeCommit: options.beforeCommit } : {}),
    ...(options.whileWriting ? { whileWriting: options.whileWriting } : {}),
    ...(options.rewriteStart ? { rewriteStart: options.rewriteStart } : {}),
  });
  await publish(fs, temp, target, attempt.commit);
  if (durability !== "durable") return;
  try {
    await syncDir(fs, dir);
  } catch (err) {
    throw writeFailure(
      "sync_failed",
      operation,
      path,
      `the new content is in place but flushing its directory failed (${
        osCodeOf(err) ?? "fsync error"
      }), so the change may not survive a power loss; check the device`,
      err,
    );
  }
}
