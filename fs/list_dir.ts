import type { IoOptions } from "./io_options.ts";
import { checkPath } from "./_check_path.ts";
import { byName, dirPrefix, readDirEntries } from "./_read_dir.ts";
import { runIo } from "./_run_io.ts";

/** One entry of a directory, as {@linkcode listDir} returns it. */
export interface ListEntry {
  /** The entry's name, e.g. `"a.txt"`. */
  name: string;
  /** The directory path joined with the name. */
  path: string;
  /** A regular file (for a symlink, see {@linkcode ListEntry.isSymlink}). */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
  /** A symbolic link (not followed: `isFile` and `isDirectory` are false). */
  isSymlink: boolean;
}

/** Options of {@linkcode listDir}. */
export interface ListDirOptions extends IoOptions {
  /**
   * Sort entries by name (by UTF-16 code unit, the same on every system);
   * `false` keeps the order the operating system returned.
   *
   * @default {true}
   */
  sort?: boolean;
}

/**
 * Lists a directory's entries (not recursively), retried on transient
 * errors and bounded by `timeout`.
 *
 * @param path The directory.
 * @param options Sorting, retry, timeout, signal, file system.
 * @returns The entries, sorted by name unless `sort` is `false`.
 * @throws {DirectoryOperationError} Code `not_found`, `not_a_directory`
 *   (a file was given), `missing_permission`, `permission_denied`,
 *   `invalid_path` (empty or NUL), …
 *
 * @example List a directory
 * ```ts
 * import { listDir } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/b.txt`, "b");
 * await Deno.mkdir(`${dir}/a`);
 * const entries = await listDir(dir);
 * assert.deepEqual(entries.map((e) => e.name), ["a", "b.txt"]);
 * assert.ok(entries[0]!.isDirectory);
 * assert.equal(entries[1]!.path, `${dir}/b.txt`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function listDir(
  path: string,
  options?: ListDirOptions,
): Promise<ListEntry[]> {
  checkPath("directory", "listDir", path);
  return await runIo("directory", "listDir", path, options, async (attempt) => {
    const raw = await readDirEntries(
      attempt.fs,
      path,
      "listDir",
      attempt.attempt,
    );
    if (options?.sort !== false) raw.sort(byName);
    const prefix = dirPrefix(path);
    return raw.map((e) => ({
      name: e.name,
      path: prefix + e.name,
      isFile: e.isFile,
      isDirectory: e.isDirectory,
      isSymlink: e.isSymlink,
    }));
  });
}
