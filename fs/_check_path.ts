// Rejects a path the OS would misread before anything touches the disk.

import {
  DirectoryOperationError,
  FileReadError,
  FileWriteError,
} from "./errors.ts";
import type { FsErrorKind } from "./_to_fs_error.ts";

/** Throws a typed `invalid_path` error for an empty path or one with NUL. */
export function checkPath(
  kind: FsErrorKind,
  operation: string,
  path: string,
): void {
  const why = typeof path !== "string"
    ? "the path is not a string"
    : path === ""
    ? "the path is empty"
    : path.includes("\0")
    ? "the path contains a NUL byte, which no file name may hold"
    : undefined;
  if (why === undefined) return;
  const Class = kind === "read"
    ? FileReadError
    : kind === "write"
    ? FileWriteError
    : DirectoryOperationError;
  const verb = kind === "directory" ? "work on directory" : kind;
  const shown = JSON.stringify(String(path)).slice(1, -1);
  throw new Class(`Cannot ${verb} "${shown}": ${why}; pass a valid path`, {
    code: "invalid_path",
    path: String(path),
    operation,
  });
}
