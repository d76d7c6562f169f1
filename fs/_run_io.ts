// Runs one fs/ call: retries it under the fileIo preset (or the caller's
// options), bounds it by `timeout`, honours `signal`, maps the failure to a
// typed error and reports it.
//
// Invariant for writes: the call's `commit` step (the rename) runs only if
// the call has not given up, and once it has started the call waits for it
// instead of timing out, so a call that rejected never commits later and a
// call that committed never rejects with a timeout.

import {
  retry,
  type RetryOptions,
  retryPresets,
  systemClock,
} from "../retry/mod.ts";
import { denoFileSystem, type FileSystem } from "./file_system.ts";
import { IoTimeoutError } from "./errors.ts";
import type { IoOptions } from "./io_options.ts";
import { type FsErrorKind, toFsError } from "./_to_fs_error.ts";

/** What one attempt of a call gets. */
export interface IoAttempt {
  /** The file system to use. */
  fs: FileSystem;
  /** Aborted when the call gives up (timeout or caller's signal). */
  signal: AbortSignal;
  /** The 1-based attempt number. */
  attempt: number;
  /**
   * Runs the commit step if the call has not given up; a timeout that
   * fires meanwhile waits for it to finish.
   */
  commit<T>(step: () => Promise<T>): Promise<T>;
}

/** Runs `fn` as the fs/ call `operation` on `path`. */
export async function runIo<T>(
  kind: FsErrorKind,
  operation: string,
  path: string,
  options: IoOptions | undefined,
  fn: (attempt: IoAttempt) => Promise<T>,
): Promise<T> {
  const fs = options?.fs ?? denoFileSystem;
  const clock = options?.clock ?? systemClock;
  const caller = options?.signal;
  if (caller?.aborted) throw caller.reason;
  const giveUp = new AbortController();
  const onCallerAbort = () => giveUp.abort(caller!.reason);
  caller?.addEventListener("abort", onCallerAbort, { once: true });
  let committing: Promise<unknown> | undefined;
  let attempts = 0;
  const timerStop = new AbortController();
  const timeout = options?.timeout;
  let timedOut: Promise<never> | undefined;
  if (timeout !== undefined) {
    timedOut = clock.sleep(timeout, timerStop.signal).then(async () => {
      // A commit in flight wins: wait for it and let the call finish.
      if (committing) await committing.catch(() => {});
      if (committing) return new Promise<never>(() => {});
      const err = new IoTimeoutError(operation, path, timeout, attempts);
      giveUp.abort(err);
      throw err;
    });
    timedOut.catch(() => {});
  }
  const retryOptions = options?.retry === false
    ? { maxAttempts: 1 }
    : { ...retryPresets.fileIo, ...options?.retry };
  const work = retry<T>(({ attempt }) => {
    attempts = attempt;
    return fn({
      fs,
      signal: giveUp.signal,
      attempt,
      commit<C>(step: () => Promise<C>): Promise<C> {
        if (giveUp.signal.aborted) return Promise.reject(giveUp.signal.reason);
        const running = step();
        committing = running;
        return running;
      },
    });
  }, { ...retryOptions, signal: giveUp.signal, clock } as RetryOptions<T>);
  try {
    return await (timedOut ? Promise.race([work, timedOut]) : work);
  } catch (err) {
    const cause = giveUp.signal.aborted ? giveUp.signal.reason : unwrap(err);
    if (caller?.aborted && cause === caller.reason) throw cause;
    const error = toFsError(kind, operation, path, cause, attempts);
    try {
      options?.reporter?.report({
        operation,
        path,
        error,
        attempts,
        ...(options.context ? { context: options.context } : {}),
      });
    } catch { /* a reporter must never change the outcome */ }
    throw error;
  } finally {
    timerStop.abort();
    caller?.removeEventListener("abort", onCallerAbort);
    // Let an abandoned attempt settle quietly; its commit is refused.
    work.catch(() => {});
  }
}

// retry() wraps the last error in RetryError when attempts run out; the
// caller wants the underlying failure, with the attempt count alongside.
function unwrap(err: unknown): unknown {
  if (err instanceof Error && err.name === "RetryError" && "cause" in err) {
    return err.cause;
  }
  return err;
}
