import { SturdyError, type SturdyErrorOptions } from "../retry/mod.ts";

/**
 * A file could not be read. `code` says why: `not_found`,
 * `permission_denied` (the OS refused), `missing_permission` (Deno was not
 * given `--allow-read` for the path), `is_a_directory`, `invalid_json`,
 * `invalid_data`, `too_large`, `io_error`, …
 *
 * @example Tell a missing file from other failures
 * ```ts
 * import { FileReadError, isNotFound } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const err = new FileReadError('Cannot read "a.json": no such file', {
 *   code: "not_found",
 *   path: "a.json",
 *   operation: "readJson",
 * });
 * assert.ok(isNotFound(err));
 * assert.equal(err.path, "a.json");
 * ```
 */
export class FileReadError extends SturdyError {
  /**
   * Creates the error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code, path, operation, attempts and cause.
   */
  constructor(message: string, options: SturdyErrorOptions) {
    super(message, options);
  }
}

/**
 * A file could not be written; the target was left as it was. `code` says
 * why: `no_space`, `permission_denied`, `missing_permission`,
 * `cross_device`, `short_write`, `sync_failed`, `symlink_rejected`,
 * `io_error`, …
 *
 * @example Inspect a write failure
 * ```ts
 * import { FileWriteError } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const err = new FileWriteError('Cannot write "out.txt": the disk is full', {
 *   code: "no_space",
 *   path: "out.txt",
 *   operation: "writeText",
 * });
 * assert.equal(err.code, "no_space");
 * assert.equal(err.name, "FileWriteError");
 * ```
 */
export class FileWriteError extends SturdyError {
  /**
   * Creates the error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code, path, operation, attempts and cause.
   */
  constructor(message: string, options: SturdyErrorOptions) {
    super(message, options);
  }
}

/**
 * A directory operation (create, list, scan, move, remove) failed.
 *
 * @example Inspect a directory failure
 * ```ts
 * import { DirectoryOperationError } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const err = new DirectoryOperationError('Cannot list "src": no such directory', {
 *   code: "not_found",
 *   path: "src",
 *   operation: "listDir",
 * });
 * assert.equal(err.operation, "listDir");
 * ```
 */
export class DirectoryOperationError extends SturdyError {
  /**
   * Creates the error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code, path, operation, attempts and cause.
   */
  constructor(message: string, options: SturdyErrorOptions) {
    super(message, options);
  }
}

/**
 * A file system call did not finish within its `timeout` (code
 * `io_timeout`). A write that timed out never commits later.
 *
 * @example Inspect a timeout
 * ```ts
 * import { IoTimeoutError } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const err = new IoTimeoutError("readText", "slow.txt", 5_000);
 * assert.equal(err.code, "io_timeout");
 * assert.equal(err.timeoutMs, 5_000);
 * assert.match(err.message, /did not finish within 5s/);
 * ```
 */
export class IoTimeoutError extends SturdyError {
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param operation The call that timed out, e.g. `"readText"`.
   * @param path The path it worked on.
   * @param timeoutMs The timeout that passed.
   * @param attempts How many attempts were made.
   */
  constructor(
    operation: string,
    path: string,
    timeoutMs: number,
    attempts?: number,
  ) {
    super(
      `${operation} "${path}" did not finish within ${
        formatMs(timeoutMs)
      }; the storage may be slow or hung (raise "timeout" if that is expected)`,
      {
        code: "io_timeout",
        path,
        operation,
        ...(attempts === undefined ? {} : { attempts }),
      },
    );
    this.timeoutMs = timeoutMs;
  }
}

function formatMs(ms: number): string {
  return ms < 1_000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

/**
 * Whether `err` means "no such file or directory": a Sturdy error with code
 * `not_found` or Deno's `NotFound`.
 *
 * @param err Anything thrown.
 * @returns `true` for a missing file or directory.
 *
 * @example Fall back when a file is missing
 * ```ts
 * import { isNotFound, readText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const text = await readText(`${dir}/missing.txt`).catch((err) => {
 *   if (isNotFound(err)) return "default";
 *   throw err;
 * });
 * assert.equal(text, "default");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound ||
    (err instanceof SturdyError && err.code === "not_found");
}
