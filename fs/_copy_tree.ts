// Copies a file, a symlink or a whole directory tree into a path that does
// not exist yet, for a move across file systems. The caller copies into a
// staging name and renames it into place, so the target never shows a
// partial copy.

import { join } from "node:path";
import type { FileSystem } from "./file_system.ts";
import { syncDir } from "./_atomic_write.ts";
import { copyStream, fileStream } from "./_stream_io.ts";

/** How to copy. */
export interface CopyOptions {
  /** Sync every file and directory written. */
  durable: boolean;
  /** Stops the copy between files and chunks. */
  signal: AbortSignal;
  /** The public call, for error messages. */
  operation: string;
}

/** Copies `from` (file, symlink or directory) to the new path `to`. */
export async function copyTree(
  fs: FileSystem,
  from: string,
  to: string,
  options: CopyOptions,
): Promise<void> {
  options.signal.throwIfAborted();
  const info = await fs.lstat(from);
  const mode = typeof info.mode === "number" ? info.mode & 0o7777 : undefined;
  if (info.isSymlink) {
    await fs.symlink(await fs.readLink(from), to);
  } else if (info.isDirectory) {
    await fs.mkdir(to, mode === undefined ? {} : { mode });
    for await (const entry of fs.readDir(from)) {
      await copyTree(fs, join(from, entry.name), join(to, entry.name), options);
    }
    // mkdir's mode is masked by the umask; chmod is not.
    if (mode !== undefined) await fs.chmod(to, mode);
    if (options.durable) await syncDir(fs, to);
  } else {
    await copyFile(fs, from, to, mode, options);
  }
}

async function copyFile(
  fs: FileSystem,
  from: string,
  to: string,
  mode: number | undefined,
  options: CopyOptions,
): Promise<void> {
  const source = await fs.open(from, { read: true });
  let target;
  try {
    target = await fs.open(to, {
      write: true,
      createNew: true,
      ...(mode === undefined ? {} : { mode }),
    });
  } catch (err) {
    source.close();
    throw err;
  }
  try {
    // copyStream cancels the source stream on failure, which closes it.
    await copyStream(target, fileStream(source), {
      operation: options.operation,
      path: from,
    }, options.signal);
    if (mode !== undefined) await fs.chmod(to, mode);
    if (options.durable) await target.syncData();
  } finally {
    target.close();
  }
}
