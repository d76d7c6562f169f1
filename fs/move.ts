// Moves a file or directory by rename; across file systems only by an
// explicit, durable copy.
//
// Invariant (crossDevice "copy"): at every instant the data is complete at
// the source, at the target, or both: the copy is made under a staging
// name next to the target and renamed into place (so the target never
// shows a partial copy), and the source is removed only after that.

import { basename, dirname, join, resolve } from "node:path";
import { DirectoryOperationError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import { createTemp, publish, syncDir } from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { copyTree } from "./_copy_tree.ts";
import { fileStream } from "./_stream_io.ts";
import { runIo } from "./_run_io.ts";
import { tempName } from "./_temp_name.ts";
import { osCodeOf } from "./_to_fs_error.ts";
import { lstatOrUndefined } from "./_lstat_or_undefined.ts";

/** Options of {@linkcode move}. */
export interface MoveOptions extends IoOptions {
  /**
   * Replace an existing target (a file, or an empty directory when moving
   * a directory). Without it an existing target is an `already_exists`
   * error. The check runs just before the rename: Deno has no
   * no-replace rename, so a target created in between is replaced.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * What to do when source and target are on different file systems,
   * where no rename is possible: `"refuse"` throws code `cross_device`;
   * `"copy"` copies (synced when `durable`) under a staging name, renames
   * it into place, then removes the source. File modes are kept, times
   * are not.
   *
   * @default {"refuse"}
   */
  crossDevice?: "refuse" | "copy";
  /**
   * Sync the directories involved so the move survives a power loss.
   *
   * @default {true}
   */
  durable?: boolean;
}

/** What {@linkcode move} did. */
export interface MoveResult {
  /** The source path, absolute. */
  from: string;
  /** The target path, absolute. */
  to: string;
  /** Whether it was copied across file systems instead of renamed. */
  copied: boolean;
}

/**
 * Moves (renames) a file or directory. The rename is atomic; a move
 * across file systems is refused unless `crossDevice: "copy"`.
 *
 * @param from The file or directory to move.
 * @param to Its new path; its directory must exist.
 * @param options Overwrite, cross-device policy, durability, retry,
 *   timeout, signal, file system.
 * @returns The absolute paths and whether a copy was made.
 * @throws {DirectoryOperationError} Code `not_found` (source or target
 *   directory missing), `already_exists`, `cross_device`, `not_empty`,
 *   `invalid_path`, `missing_permission`, …
 *
 * @example Rename a file, refusing to replace another
 * ```ts
 * import { move } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * await Deno.writeTextFile(`${dir}/c.txt`, "c");
 * await move(`${dir}/a.txt`, `${dir}/b.txt`);
 * assert.equal(await Deno.readTextFile(`${dir}/b.txt`), "a");
 * await assert.rejects(move(`${dir}/b.txt`, `${dir}/c.txt`), {
 *   code: "already_exists",
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function move(
  from: string,
  to: string,
  options?: MoveOptions,
): Promise<MoveResult> {
  checkPath("directory", "move", from);
  checkPath("directory", "move", to);
  const source = resolve(from);
  const target = resolve(to);
  const durable = options?.durable ?? true;
  let moved: MoveResult | undefined;
  return await runIo("directory", "move", from, options, async (io) => {
    const fs = io.fs;
    const fail = (code: string, why: string, cause?: unknown) =>
      new DirectoryOperationError(`Cannot move "${from}" to "${to}": ${why}`, {
        code,
        path: from,
        operation: "move",
        attempts: io.attempt,
        ...(cause === undefined ? {} : { cause }),
      });
    // A retry after the switch (e.g. a failed sync) only finishes the job.
    if (!moved) {
      const info = await lstatOrUndefined(fs, source);
      if (!info) throw fail("not_found", "the source does not exist");
      if (source === target) return { from: source, to: target, copied: false };
      const existing = await lstatOrUndefined(fs, target);
      if (existing && !options?.overwrite) {
        throw fail(
          "already_exists",
          "the target already exists; pass overwrite: true to replace it",
        );
      }
      try {
        await io.commit(() => fs.rename(source, target));
        moved = { from: source, to: target, copied: false };
      } catch (err) {
        const code = osCodeOf(err);
        if (code === "EXDEV" && options?.crossDevice === "copy") {
          await copyAcross(fs, source, target, {
            durable,
            signal: io.signal,
            commit: io.commit,
          });
          moved = { from: source, to: target, copied: true };
        } else if (code === "EXDEV") {
          throw fail(
            "cross_device",
            'they are on different file systems, so it cannot be renamed atomically; pass crossDevice: "copy" to copy it and remove the source',
            err,
          );
        } else if (code === "ENOENT") {
          throw fail(
            "not_found",
            `the target directory "${
              dirname(target)
            }" does not exist; create it first (ensureDir)`,
            err,
          );
        } else if (code === "ENOTEMPTY" || (code === "EEXIST" && existing)) {
          throw fail(
            "not_empty",
            "the target is a directory that is not empty; remove it first",
            err,
          );
        } else throw err;
      }
    }
    if (moved.copied) {
      // The copy is in place: only now is it safe to drop the source.
      await fs.remove(source, { recursive: true }).catch((err) => {
        if (osCodeOf(err) !== "ENOENT") throw err;
      });
    }
    if (durable) {
      await syncDir(fs, dirname(target));
      if (dirname(source) !== dirname(target)) {
        await syncDir(fs, dirname(source));
      }
    }
    return moved;
  });
}

async function copyAcross(
  fs: FileSystem,
  source: string,
  target: string,
  options: {
    durable: boolean;
    signal: AbortSignal;
    commit: <T>(step: () => Promise<T>) => Promise<T>;
  },
): Promise<void> {
  const info = await fs.lstat(source);
  if (info.isFile) {
    // A file is staged as a locked temp, which a sweep of the target's
    // directory leaves alone while the copy runs.
    const mode = typeof info.mode === "number" ? info.mode & 0o7777 : undefined;
    const data = fileStream(await fs.open(source, { read: true }));
    let staged;
    try {
      staged = await createTemp(fs, target, data, {
        durability: options.durable ? "durable" : "none",
        signal: options.signal,
        operation: "move",
        path: source,
        ...(mode === undefined ? {} : { mode }),
      });
    } catch (err) {
      await data.cancel().catch(() => {}); // closes the source if unread
      throw err;
    }
    if (options.durable) await syncDir(fs, dirname(target));
    await publish(fs, staged, target, options.commit);
    return;
  }
  // A directory or symlink: sweeps never remove those, so a plain
  // staging name will do.
  const staging = join(dirname(target), tempName(basename(target)));
  try {
    await copyTree(fs, source, staging, {
      durable: options.durable,
      signal: options.signal,
      operation: "move",
    });
    if (options.durable) await syncDir(fs, dirname(target));
    // Publish the complete copy in one rename (over the old target when
    // overwriting, which rename allows for a file or an empty directory).
    await options.commit(() => fs.rename(staging, target));
  } catch (err) {
    await fs.remove(staging, { recursive: true }).catch(() => {});
    throw err;
  }
}
