import { basename, dirname, parse, resolve } from "node:path";
import { DirectoryOperationError } from "./errors.ts";
import type { IoOptions } from "./io_options.ts";
import { syncDir } from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** Options of {@linkcode remove}. */
export interface RemoveOptions extends IoOptions {
  /**
   * Remove a directory with everything in it. Without it only a file, a
   * symlink or an empty directory is removed. Symbolic links are removed,
   * never followed.
   *
   * @default {false}
   */
  recursive?: boolean;
  /**
   * Treat a missing path as already removed instead of a `not_found`
   * error.
   *
   * @default {false}
   */
  missingOk?: boolean;
  /**
   * Sync the parent directory so the removal survives a power loss. Off by
   * default: a removal lost in a crash brings back the complete old entry,
   * never a damaged one, which most callers can live with.
   *
   * @default {false}
   */
  durable?: boolean;
}

/**
 * Removes a file, symlink or directory. Refuses a file system root and
 * paths ending in `.` or `..`, as `rm` does.
 *
 * @param path What to remove.
 * @param options Recursion, missing-ok, durability, retry, timeout,
 *   signal, file system.
 * @returns `true` if something was removed, `false` if it was missing and
 *   `missingOk` is set.
 * @throws {DirectoryOperationError} Code `not_found`, `not_empty` (pass
 *   `recursive`), `invalid_path`, `missing_permission`, …
 *
 * @example Remove a directory tree, then again without error
 * ```ts
 * import { remove } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/a/b`, { recursive: true });
 * assert.equal(await remove(`${dir}/a`, { recursive: true }), true);
 * assert.equal(await remove(`${dir}/a`, { missingOk: true }), false);
 * await Deno.remove(dir);
 * ```
 */
export async function remove(
  path: string,
  options?: RemoveOptions,
): Promise<boolean> {
  checkPath("directory", "remove", path);
  const last = basename(path.replace(/[\\/]+$/, ""));
  if (
    last === "." || last === ".." || resolve(path) === parse(resolve(path)).root
  ) {
    throw new DirectoryOperationError(
      `Cannot remove "${path}": refusing to remove a file system root or a path ending in "." or ".."; name the directory itself`,
      { code: "invalid_path", path, operation: "remove" },
    );
  }
  return await runIo("directory", "remove", path, options, async ({ fs }) => {
    try {
      await fs.remove(path, { recursive: options?.recursive ?? false });
    } catch (err) {
      const code = osCodeOf(err);
      if (code === "ENOENT" && options?.missingOk) return false;
      if (code === "ENOTEMPTY" || code === "EEXIST") {
        throw new DirectoryOperationError(
          `Cannot remove "${path}": the directory is not empty; pass recursive: true to remove it with its content`,
          { code: "not_empty", path, operation: "remove", cause: err },
        );
      }
      throw err;
    }
    if (options?.durable) await syncDir(fs, dirname(resolve(path)));
    return true;
  });
}
