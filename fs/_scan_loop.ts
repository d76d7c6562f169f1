// Detects symbolic-link loops during a walk that follows links: a link
// loops when it leads to a directory on the current path (same dev:ino, or
// the same real path where the system reports no inode).

import { DirectoryOperationError } from "./errors.ts";
import type { FileSystem } from "./file_system.ts";

/** A directory on the walk's current path. */
export interface PathNode {
  path: string;
  parent: PathNode | undefined;
  /** The directory's identity once known. */
  id: string | undefined;
}

// A directory's identity: device and inode, or its real path where the
// system reports no inode (Windows).
export async function identity(
  fs: FileSystem,
  path: string,
  info?: Deno.FileInfo,
): Promise<string> {
  info ??= await fs.stat(path);
  return info.ino !== null
    ? `${info.dev}:${info.ino}`
    : await fs.realPath(path);
}

/** Whether `id` is `node` or one of its ancestors: following would loop. */
export async function isLoop(
  fs: FileSystem,
  node: PathNode,
  id: string,
): Promise<boolean> {
  for (let n: PathNode | undefined = node; n; n = n.parent) {
    try {
      n.id ??= await identity(fs, n.path);
    } catch {
      continue; // an ancestor gone meanwhile cannot be on a loop
    }
    if (n.id === id) return true;
  }
  return false;
}

export function loopError(path: string, rel: string): DirectoryOperationError {
  return new DirectoryOperationError(
    `Skipped "${path}": it is a symbolic link back to a directory already being walked (a loop); exclude "${rel}" or walk without followSymlinks`,
    { code: "symlink_loop", path, operation: "scanDir" },
  );
}
