// Creates a directory and its missing parents, like `mkdir -p`.
//
// Invariant (durable): when the call returns, every directory it created
// survives a power loss: each new directory's entry is flushed by syncing
// its parent, from the outermost created one down.

import { dirname, resolve } from "node:path";
import { DirectoryOperationError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import { syncDir } from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** Options of {@linkcode ensureDir}. */
export interface EnsureDirOptions extends IoOptions {
  /**
   * Sync the parent of each directory created, so the new directories
   * survive a power loss. On by default because durable writes into the
   * directory sync only the directory itself, not its own entry in its
   * parent: without this a crash could lose the directory and the file
   * written durably into it. It costs nothing when the directory already
   * exists.
   *
   * @default {true}
   */
  durable?: boolean;
  /**
   * Mode of the directories created (the umask applies).
   *
   * @default {0o777}
   */
  mode?: number;
}

/** What {@linkcode ensureDir} did. */
export interface EnsureDirResult {
  /** The absolute path of the directory. */
  path: string;
  /** The directories created, outermost first (empty if it existed). */
  created: string[];
}

/**
 * Makes sure `path` is a directory, creating it and its missing parents.
 * A file (or a broken symlink) in the way is a typed error naming which
 * part of the path it is.
 *
 * @param path The directory.
 * @param options Durability, mode, retry, timeout, signal, file system.
 * @returns The absolute path and the directories created.
 * @throws {DirectoryOperationError} Code `not_a_directory` when a part of
 *   the path is a file, `missing_permission`, `permission_denied`,
 *   `invalid_path`, …
 *
 * @example Create nested directories
 * ```ts
 * import { ensureDir } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const result = await ensureDir(`${dir}/a/b`);
 * assert.deepEqual(result.created, [`${dir}/a`, `${dir}/a/b`]);
 * assert.deepEqual((await ensureDir(`${dir}/a/b`)).created, []);
 * assert.ok((await Deno.stat(`${dir}/a/b`)).isDirectory);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function ensureDir(
  path: string,
  options?: EnsureDirOptions,
): Promise<EnsureDirResult> {
  checkPath("directory", "ensureDir", path);
  const target = resolve(path);
  return await runIo("directory", "ensureDir", path, options, async (io) => {
    const fs = io.fs;
    // Walk up to the deepest part that exists.
    const missing: string[] = [];
    let current = target;
    while (true) {
      const info = await statOrMissing(fs, current);
      if (info?.isDirectory) break;
      if (info) throw notADirectory(path, current, io.attempt, "a file");
      missing.unshift(current);
      const parent = dirname(current);
      if (parent === current) break; // a missing root cannot happen
      current = parent;
    }
    const created: string[] = [];
    for (const dir of missing) {
      try {
        await fs.mkdir(
          dir,
          options?.mode === undefined ? {} : { mode: options.mode },
        );
        created.push(dir);
      } catch (err) {
        if (osCodeOf(err) !== "EEXIST") throw err;
        // Another process created it meanwhile, or something else is there.
        const info = await statOrMissing(fs, dir);
        if (!info) {
          throw notADirectory(path, dir, io.attempt, "a broken symbolic link");
        }
        if (!info.isDirectory) {
          throw notADirectory(path, dir, io.attempt, "a file");
        }
      }
    }
    if (created.length > 0 && (options?.durable ?? true)) {
      await syncDir(fs, dirname(created[0]!));
      for (const dir of created.slice(0, -1)) await syncDir(fs, dir);
    }
    return { path: target, created };
  });
}

// stat, with "missing" (also "a parent is a file") as undefined.
async function statOrMissing(
  fs: FileSystem,
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await fs.stat(path);
  } catch (err) {
    const code = osCodeOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

function notADirectory(
  path: string,
  part: string,
  attempts: number,
  what: string,
): DirectoryOperationError {
  const where = part === resolve(path) ? "it" : `"${part}"`;
  return new DirectoryOperationError(
    `Cannot create directory "${path}": ${where} is ${what}, not a directory; remove or rename it, or choose another path`,
    { code: "not_a_directory", path, operation: "ensureDir", attempts },
  );
}
