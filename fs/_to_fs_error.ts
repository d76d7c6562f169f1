// Turns whatever the runtime threw into a typed fs error whose message says
// what failed, where, why, and what to do. The original error is the cause.

import { SturdyError } from "../retry/mod.ts";
import {
  DirectoryOperationError,
  FileReadError,
  FileWriteError,
} from "./errors.ts";

/** Which error class a failure becomes. */
export type FsErrorKind = "read" | "write" | "directory";

const VERB: Record<FsErrorKind, string> = {
  read: "read",
  write: "write",
  directory: "work on directory",
};

/** OS error codes, their Sturdy code and what to tell the user. */
const BY_OS_CODE: Record<string, [code: string, why: string]> = {
  ENOENT: ["not_found", "no such file or directory"],
  EACCES: [
    "permission_denied",
    "the operating system refused access (EACCES); check the owner and mode of the file and its directory",
  ],
  EPERM: [
    "permission_denied",
    "the operating system refused the operation (EPERM); check the owner, mode and flags of the file and its directory",
  ],
  EROFS: ["read_only", "the file system is read-only (EROFS)"],
  ENOSPC: ["no_space", "the disk is full (ENOSPC); free some space and retry"],
  EDQUOT: ["no_space", "the disk quota is exhausted (EDQUOT)"],
  EXDEV: [
    "cross_device",
    "the source and target are on different file systems (EXDEV)",
  ],
  EMFILE: [
    "too_many_open_files",
    "the process has too many open files (EMFILE); close some or raise the limit (ulimit -n)",
  ],
  ENFILE: [
    "too_many_open_files",
    "the system has too many open files (ENFILE)",
  ],
  EISDIR: ["is_a_directory", "it is a directory, not a file"],
  ENOTDIR: ["not_a_directory", "a part of the path is not a directory"],
  EEXIST: ["already_exists", "it already exists"],
  ENOTEMPTY: ["not_empty", "the directory is not empty"],
  EBUSY: ["busy", "the file or device is busy (EBUSY)"],
  EAGAIN: ["busy", "the resource is temporarily unavailable (EAGAIN)"],
  EINTR: ["interrupted", "the call was interrupted (EINTR)"],
  EIO: ["io_error", "the device reported an I/O error (EIO)"],
  ELOOP: ["symlink_loop", "too many levels of symbolic links (ELOOP)"],
  ENAMETOOLONG: ["name_too_long", "the path or a name in it is too long"],
  EINVAL: [
    "invalid_argument",
    "the operating system refused the arguments (EINVAL)",
  ],
};

const BY_CLASS: Array<[new (...args: never[]) => Error, string]> = [
  [Deno.errors.NotFound, "ENOENT"],
  [Deno.errors.PermissionDenied, "EACCES"],
  [Deno.errors.AlreadyExists, "EEXIST"],
  [Deno.errors.IsADirectory, "EISDIR"],
  [Deno.errors.NotADirectory, "ENOTDIR"],
  [Deno.errors.Busy, "EBUSY"],
  [Deno.errors.Interrupted, "EINTR"],
  [Deno.errors.FilesystemLoop, "ELOOP"],
];

const DENO_PERMISSION =
  /Requires (\w+) access to ([^,]+), run again with the (--allow-\w+) flag/;

/**
 * Builds the typed error for a failed call. A SturdyError passes through
 * unchanged (with `attempts` filled in when it had none).
 */
export function toFsError(
  kind: FsErrorKind,
  operation: string,
  path: string,
  err: unknown,
  attempts?: number,
): SturdyError {
  if (err instanceof SturdyError) return err;
  const Class = kind === "read"
    ? FileReadError
    : kind === "write"
    ? FileWriteError
    : DirectoryOperationError;
  const base = {
    path,
    operation,
    cause: err,
    ...(attempts === undefined ? {} : { attempts }),
  };
  const verb = VERB[kind];
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Deno.errors.NotCapable) {
    const match = DENO_PERMISSION.exec(message);
    const flag = match
      ? `${match[3]}=${match[2]!.replace(/^"|"$/g, "")}`
      : "the matching --allow-* flag";
    return new Class(
      `Cannot ${verb} "${path}": Deno was not granted ${
        match?.[1] ?? "the needed"
      } access to it; run with ${flag}`,
      { code: "missing_permission", ...base },
    );
  }
  const osCode = osCodeOf(err);
  const known = osCode === undefined ? undefined : BY_OS_CODE[osCode];
  if (known) {
    return new Class(`Cannot ${verb} "${path}": ${known[1]}`, {
      code: known[0],
      ...base,
    });
  }
  return new Class(`Cannot ${verb} "${path}": ${message}`, {
    code: "io_error",
    ...base,
  });
}

/** The errno-style code of a runtime error (`ENOSPC`), if it has one. */
export function osCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  for (const [Class, name] of BY_CLASS) if (err instanceof Class) return name;
  return undefined;
}
