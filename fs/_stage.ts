// Preparing a transaction's targets: resolving them, and backing up their
// old content. Nothing here changes what any target holds.

import { dirname, resolve } from "node:path";
import type { FileSystem } from "./file_system.ts";
import { createTemp, publish, type StagedTemp } from "./_atomic_write.ts";
import { osCodeOf, toFsError } from "./_to_fs_error.ts";
import { writeFailure } from "./_write_error.ts";
import { lstatOrUndefined } from "./_lstat_or_undefined.ts";

/** One staged change: new bytes, or `null` for a removal. */
export interface Staged {
  path: string;
  data: Uint8Array | null;
  mode?: number;
}

/** A staged change with its resolved target and the files made for it. */
export interface Planned extends Staged {
  target: string;
  existed: boolean;
  temp: string | null;
  /** The open temp, holding its lock until the commit is over. */
  staged: StagedTemp | null;
  backup: string | null;
  ino: number | null;
}

const OPERATION = "transaction";

const PARALLEL = 16;

/** Runs `fn` over `items`, a few at a time; rethrows the first failure. */
export async function pool<T>(
  items: T[],
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  if (failure) throw failure.error;
}

/** Follows symlinks to the file a write lands in, and checks it. */
export async function plan(fs: FileSystem, s: Staged): Promise<Planned> {
  const wrap = (err: unknown) => toFsError("write", OPERATION, s.path, err);
  try {
    let target = resolve(s.path);
    let info = await lstatOrUndefined(fs, target);
    for (let hops = 0; info?.isSymlink; hops++) {
      if (hops === 40) {
        throw writeFailure(
          "symlink_loop",
          OPERATION,
          s.path,
          "too many levels of symbolic links; check for a link that points back to itself",
        );
      }
      target = resolve(dirname(target), await fs.readLink(target));
      info = await lstatOrUndefined(fs, target);
    }
    if (info?.isDirectory) {
      throw writeFailure(
        "is_a_directory",
        OPERATION,
        s.path,
        "it is a directory, not a file; pass the path of a file inside it",
      );
    }
    if (info && (await fs.stat(dirname(target))).dev !== info.dev) {
      throw writeFailure(
        "cross_device",
        OPERATION,
        s.path,
        "it is on another file system than its directory (e.g. a bind-mounted file), so it cannot be replaced atomically",
      );
    }
    const mode = s.mode ??
      (typeof info?.mode === "number" ? info.mode & 0o7777 : undefined);
    return {
      ...s,
      ...(mode === undefined ? {} : { mode }),
      target,
      existed: info !== undefined,
      temp: null,
      staged: null,
      backup: null,
      ino: null,
    };
  } catch (err) {
    throw wrap(err);
  }
}

/** Makes `backup` hold the target's current content: a hard link, else a synced copy. */
export async function backUp(
  fs: FileSystem,
  p: Planned,
  backup: string,
  durable: boolean,
): Promise<void> {
  // Hard links make backups free and atomic; where the file system
  // refuses them, the backup is a synced copy.
  try {
    return await fs.link(p.target, backup);
  } catch (err) {
    // File systems without hard links (FAT, some network shares).
    const code = osCodeOf(err);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") {
      throw err;
    }
  }
  const temp = await createTemp(fs, backup, await fs.readFile(p.target), {
    durability: durable ? "durable" : "none",
    operation: OPERATION,
    path: p.path,
    ...(p.mode === undefined ? {} : { mode: p.mode }),
  });
  await publish(fs, temp, backup);
}
