// Reads one directory listing whole, with a clear error when the path is
// a file or runs through one. Shared by listDir and scanDir.

import { DirectoryOperationError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** Collects every entry of `path`. */
export async function readDirEntries(
  fs: FileSystem,
  path: string,
  operation: string,
  attempt: number,
): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const entry of fs.readDir(path)) entries.push(entry);
  } catch (err) {
    if (osCodeOf(err) !== "ENOTDIR") throw err;
    // Tell "it is a file" from "a part of its path is a file".
    const info = await fs.stat(path).catch(() => undefined);
    throw new DirectoryOperationError(
      info
        ? `Cannot read directory "${path}": it is a file, not a directory; pass the directory that holds it`
        : `Cannot read directory "${path}": a part of the path is a file, not a directory; check the path`,
      {
        code: "not_a_directory",
        path,
        operation,
        attempts: attempt,
        cause: err,
      },
    );
  }
  return entries;
}

/** Orders entries by name, by UTF-16 code unit (not locale): stable everywhere. */
export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The path separator joined between a directory and an entry name. */
export const SEP: string = Deno.build.os === "windows" ? "\\" : "/";

/** `dir` ready to have a name appended. */
export function dirPrefix(dir: string): string {
  return dir.endsWith("/") || dir.endsWith(SEP) ? dir : dir + SEP;
}
