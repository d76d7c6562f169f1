import type { Clock, RetryOptions } from "../retry/mod.ts";
import type { FileSystem } from "./file_system.ts";

/** A failed fs/ call, as handed to an {@linkcode IoErrorSink}. */
export interface IoFailure {
  /** The call that failed, e.g. `"writeJson"`. */
  operation: string;
  /** The path it worked on. */
  path: string;
  /** The typed error it threw. */
  error: Error & { code?: string };
  /** How many attempts were made. */
  attempts: number;
  /** What the caller passed as `context`. */
  context?: Record<string, unknown>;
}

/**
 * Where failed calls are reported: `ErrorReporter` implements it. A sink
 * must not throw; if it does, the error is ignored so reporting can never
 * change what a call does.
 */
export interface IoErrorSink {
  /** Records one failure. */
  report(failure: IoFailure): unknown;
}

/**
 * Options every fs/ call takes.
 *
 * @example Read with a short timeout and no retries
 * ```ts
 * import { type IoOptions, readText, writeText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const options: IoOptions = { timeout: 2_000, retry: false };
 * await writeText(`${dir}/a.txt`, "hello", options);
 * assert.equal(await readText(`${dir}/a.txt`, options), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface IoOptions {
  /**
   * How to retry a failed attempt, merged over the `fileIo` preset (which
   * retries only transient and resource errors such as EBUSY, EAGAIN,
   * EMFILE); `false` for a single attempt.
   *
   * @default {retryPresets.fileIo}
   */
  retry?: RetryOptions<unknown> | false;
  /**
   * Milliseconds the whole call (every attempt and wait) may take before it
   * rejects with `IoTimeoutError`. A write that has given up never commits
   * later.
   *
   * @default {undefined} (no limit)
   */
  timeout?: number;
  /** Cancels the call; it rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * The file system to call.
   *
   * @default {denoFileSystem}
   */
  fs?: FileSystem;
  /** Where to report a call that finally failed (e.g. an `ErrorReporter`). */
  reporter?: IoErrorSink;
  /** Extra context stored with a report. */
  context?: Record<string, unknown>;
  /**
   * Time source for retry delays and timeouts.
   *
   * @default {systemClock}
   */
  clock?: Clock;
}
