import type { FileSystem } from "./file_system.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** The entry's own metadata, or `undefined` when nothing is at `path`. */
export async function lstatOrUndefined(
  fs: FileSystem,
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await fs.lstat(path);
  } catch (err) {
    if (osCodeOf(err) === "ENOENT") return undefined;
    throw err;
  }
}
