import { classifyError, type ErrorClassification } from "./classify.ts";
import type { RetryOptions } from "./retry.ts";

/** The names of the built-in presets. */
export type RetryPresetName =
  | "quick"
  | "aggressive"
  | "conservative"
  | "fileIo";

// File I/O should be retried only for failures the OS calls temporary
// (EBUSY, EAGAIN, EINTR, EIO) or out of a resource that frees up (EMFILE,
// ENOSPC): never for an error nobody recognised.
function classifyFileIo(error: unknown): ErrorClassification {
  const c = classifyError(error);
  const known = c.reason !== "unrecognised error, assumed transient";
  return (c.category === "transient" || c.category === "resource") && known
    ? c
    : { ...c, retryable: false };
}

/**
 * Ready-made retry policies. Spread one into the options and override what
 * you need: `retry(fn, { ...retryPresets.quick, signal })`. Every preset
 * classifies errors, so permanent ones (not found, permission denied, bad
 * input, HTTP 4xx) fail at once. Delays are before jitter:
 *
 * | preset | attempts | delays | jitter | for |
 * |---|---|---|---|---|
 * | `quick` | 3 | 100 ms, 200 ms (cap 1 s) | full | cheap calls where a person waits |
 * | `aggressive` | 8 | from 1 s, each up to 3× the last (cap 30 s) | decorrelated | rate-limited APIs; honours `Retry-After` up to 2 min |
 * | `conservative` | 4 | 5, 15, 45 s (cap 60 s) | equal | expensive work that must not pile up |
 * | `fileIo` | 4 | 50, 100, 200 ms (cap 2 s) | full | file system calls; only EBUSY, EAGAIN, EINTR, EIO, EMFILE, ENFILE, ENOSPC… |
 *
 * @example Use a preset
 * ```ts
 * import { backoffSchedule, retry, retryPresets } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   backoffSchedule({ ...retryPresets.quick, jitter: "none" }),
 *   [100, 200],
 * );
 * const value = await retry(() => 42, { ...retryPresets.fileIo });
 * assert.equal(value, 42);
 * ```
 */
export const retryPresets: Readonly<
  Record<RetryPresetName, Readonly<RetryOptions>>
> = Object.freeze({
  quick: Object.freeze({
    maxAttempts: 3,
    minTimeout: 100,
    maxTimeout: 1_000,
    multiplier: 2,
    jitter: "full",
    classify: classifyError,
  }),
  aggressive: Object.freeze({
    maxAttempts: 8,
    minTimeout: 1_000,
    maxTimeout: 30_000,
    multiplier: 2,
    jitter: "decorrelated",
    maxRetryAfter: 120_000,
    classify: classifyError,
  }),
  conservative: Object.freeze({
    maxAttempts: 4,
    minTimeout: 5_000,
    maxTimeout: 60_000,
    multiplier: 3,
    jitter: "equal",
    classify: classifyError,
  }),
  fileIo: Object.freeze({
    maxAttempts: 4,
    minTimeout: 50,
    maxTimeout: 2_000,
    multiplier: 2,
    jitter: "full",
    classify: classifyFileIo,
  }),
});
