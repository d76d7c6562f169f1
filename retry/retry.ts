import {
  type BackoffOptions,
  computeDelay,
  resolveBackoff,
  type ResolvedBackoff,
} from "./backoff.ts";
import type { RetryBudget } from "./budget.ts";
import { classifyError, type ErrorClassification } from "./classify.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  AttemptTimeoutError,
  DeadlineExceededError,
  RetryBudgetExceededError,
  RetryError,
} from "./errors.ts";
import type { RetryMetrics } from "./metrics.ts";

/** What the function under `retry` is given on each attempt. */
export interface RetryContext {
  /** The 1-based number of this attempt. */
  attempt: number;
  /**
   * Aborted when the caller's signal aborts, when this attempt runs past
   * `timeout`, or when the `deadline` passes. Pass it on to `fetch` and
   * friends so abandoned work stops. Never aborted when none of these
   * options was given.
   */
  signal: AbortSignal;
  /** Milliseconds left before the `deadline` (`Infinity` without one). */
  remainingMs: number;
}

/** The event `onRetry` receives, once per retry that will happen. */
export interface RetryEvent {
  /** The 1-based number of the attempt that failed. */
  attempt: number;
  /** The total attempts allowed. */
  maxAttempts: number;
  /** How long `retry` waits before the next attempt, in milliseconds. */
  delayMs: number;
  /** What the failed attempt threw. */
  error: unknown;
  /** How the error was classified. */
  classification: ErrorClassification;
  /** Milliseconds since the first attempt started. */
  elapsedMs: number;
  /** Milliseconds left before the deadline (`Infinity` without one). */
  remainingMs: number;
}

/** What `shouldRetry` and `fallback` are told about a failure. */
export interface RetryFailureInfo {
  /** The 1-based number of the attempt that failed. */
  attempt: number;
  /** How the error was classified. */
  classification: ErrorClassification;
  /** Every error so far, oldest first. */
  errors: unknown[];
  /** Milliseconds since the first attempt started. */
  elapsedMs: number;
}

/**
 * Options for {@linkcode retry}: Deno std's options (same names, defaults
 * and validation) plus Sturdy's.
 *
 * @typeParam T The value `fn` (and `fallback`) produce.
 */
export interface RetryOptions<T = unknown> extends BackoffOptions {
  /**
   * Limit for each attempt, in milliseconds. A slower attempt is abandoned:
   * its `signal` aborts with an {@linkcode AttemptTimeoutError} and that
   * error counts as the attempt's failure (retryable).
   * @default {undefined} (no limit)
   */
  timeout?: number;
  /**
   * Limit for the whole call, attempts and waits together, in milliseconds.
   * An attempt that cannot start in time is not started, the last wait is
   * shortened to fit, and a running attempt is cut off when time is up.
   * Ends with {@linkcode DeadlineExceededError}.
   * @default {undefined} (no limit)
   */
  deadline?: number;
  /**
   * Cancels the whole call: it rejects with `signal.reason` at once, even
   * mid-wait or mid-attempt, and an abort is never retried.
   */
  signal?: AbortSignal;
  /**
   * Std's predicate: return `false` to rethrow the error as it is.
   * Takes precedence over `shouldRetry` and `classify`.
   * @default {() => true}
   */
  isRetriable?: (error: unknown) => boolean;
  /**
   * Like `isRetriable`, but told the attempt number and the classification.
   * Takes precedence over `classify`.
   */
  shouldRetry?: (error: unknown, info: RetryFailureInfo) => boolean;
  /**
   * Classifies errors. When given (and no `isRetriable`/`shouldRetry`),
   * only errors it calls `retryable` are retried. Either way its
   * `delayHintMs` (e.g. from `Retry-After`) is honoured as a minimum delay.
   * @default {classifyError} (for hints only; every error is retried, as std does)
   */
  classify?: (error: unknown) => ErrorClassification;
  /**
   * The most a server's `Retry-After` hint may stretch one wait, in ms.
   * @default {60000}
   */
  maxRetryAfter?: number;
  /** Called before each wait, with what failed and how long the wait is. */
  onRetry?: (event: RetryEvent) => void;
  /**
   * Produces a value when retrying gives up (not when the caller aborts).
   * Its own error propagates.
   */
  fallback?: (error: unknown, info: RetryFailureInfo) => T | Promise<T>;
  /** A budget shared by many calls that stops retries in an outage. */
  budget?: RetryBudget;
  /** Counters fed with this call's outcome. */
  metrics?: RetryMetrics;
  /** The source of time. @default {systemClock} */
  clock?: Clock;
}

/** Options resolved once, so `withRetry` validates at wrap time. */
interface Plan<T> {
  backoff: ResolvedBackoff;
  options: RetryOptions<T>;
  clock: Clock;
  maxRetryAfter: number;
}

// Handed to attempts when nothing can cancel them. Nobody holds its
// controller, so it can never abort and is safe to share.
const NEVER_ABORTED: AbortSignal = new AbortController().signal;

function checkMs(name: string, value: number | undefined): void {
  if (value !== undefined && (Number.isNaN(value) || value <= 0)) {
    throw new RangeError(
      `Cannot retry as '${name}' must be a positive number of milliseconds: current value is ${value}`,
    );
  }
}

/** @internal */
export function makePlan<T>(options: RetryOptions<T> = {}): Plan<T> {
  const backoff = resolveBackoff(options);
  checkMs("timeout", options.timeout);
  checkMs("deadline", options.deadline);
  checkMs("maxRetryAfter", options.maxRetryAfter);
  return {
    backoff,
    options,
    clock: options.clock ?? systemClock,
    maxRetryAfter: options.maxRetryAfter ?? 60_000,
  };
}

/**
 * Calls `fn` until it succeeds, waiting longer after each failure, and
 * returns its value. A drop-in superset of Deno std's `retry`: with std's
 * options it behaves the same (5 attempts, waits from 1 s doubling to a
 * 60 s cap, full jitter, `RetryError` with the last error as `cause`).
 *
 * Beyond std: `fn` receives `{ attempt, signal, remainingMs }`; per-attempt
 * `timeout`, total `deadline`, error classification with `Retry-After`
 * hints, `onRetry` events, a `fallback`, a shared `budget`, `metrics`, and an
 * injectable `clock` and `random` for tests.
 *
 * How a failure is handled, in order: the caller's abort rejects with
 * `signal.reason`; an error that is not retryable is rethrown as it is;
 * after `maxAttempts` a {@linkcode RetryError}; with no budget left a
 * {@linkcode RetryBudgetExceededError}; with no time left before the
 * deadline a {@linkcode DeadlineExceededError}. `fallback`, when given,
 * turns any of these give-ups except an abort into a value.
 *
 * With std's defaults the worst-case total wait is 15 s (1 + 2 + 4 + 8) and
 * the mean, under full jitter, 7.5 s.
 *
 * @typeParam T The value `fn` produces.
 * @param fn The work to do; it may be sync or async.
 * @param options How to retry.
 * @returns The first value `fn` returns without throwing.
 * @throws {RangeError} For invalid options.
 * @throws {RetryError} When retrying gave up (see subclasses for why).
 *
 * @example Retry a flaky call
 * ```ts
 * import { retry } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const value = await retry(({ attempt }) => {
 *   calls++;
 *   if (attempt < 3) throw new Error("flaky");
 *   return "ok";
 * }, { minTimeout: 10 });
 * assert.equal(value, "ok");
 * assert.equal(calls, 3);
 * ```
 *
 * @example Only retry what can heal, with a time limit
 * ```ts
 * import { classifyError, retry } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * await assert.rejects(
 *   retry(() => {
 *     calls++;
 *     throw new Deno.errors.NotFound("config.json");
 *   }, { classify: classifyError, deadline: 5_000, timeout: 1_000 }),
 *   Deno.errors.NotFound,
 * );
 * assert.equal(calls, 1); // NotFound is permanent: rethrown at once
 * ```
 */
export function retry<T>(
  fn: (context: RetryContext) => T | Promise<T>,
  options?: RetryOptions<T>,
): Promise<T> {
  // Validation errors reject rather than throw, as in std.
  let plan: Plan<T>;
  try {
    plan = makePlan(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return runPlan(fn, plan);
}

/** @internal */
export async function runPlan<T>(
  fn: (context: RetryContext) => T | Promise<T>,
  plan: Plan<T>,
): Promise<T> {
  const { backoff, options, clock } = plan;
  const { signal, budget, metrics, deadline } = options;
  const maxAttempts = backoff.maxAttempts;
  // Reading the clock is skipped on the plain path, where nothing uses it.
  const timed = deadline !== undefined || options.onRetry !== undefined ||
    options.fallback !== undefined || options.shouldRetry !== undefined;
  const start = timed ? clock.now() : 0;
  const errors: unknown[] = [];
  let previousDelay = backoff.minDelay;
  let longestAttempt = 0;
  for (let attempt = 1;; attempt++) {
    if (signal?.aborted) throw signal.reason;
    const remainingMs = deadline === undefined
      ? Infinity
      : deadline - (clock.now() - start);
    let error: unknown;
    const attemptStart = deadline === undefined ? 0 : clock.now();
    try {
      const value = options.timeout === undefined && deadline === undefined
        ? (signal === undefined
          ? await fn({ attempt, signal: NEVER_ABORTED, remainingMs })
          : await raceSignal(fn({ attempt, signal, remainingMs }), signal))
        : await runLimited(fn, attempt, remainingMs, plan);
      budget?.recordSuccess();
      metrics?.record({ attempts: attempt, ok: true, fallback: false });
      return value;
    } catch (thrown) {
      error = thrown;
    }
    if (signal?.aborted) {
      metrics?.record({ attempts: attempt, ok: false, fallback: false });
      throw signal.reason;
    }
    if (deadline !== undefined) {
      longestAttempt = Math.max(longestAttempt, clock.now() - attemptStart);
    }
    errors.push(error);
    budget?.recordFailure();
    const classification = (options.classify ?? classifyError)(error);
    const elapsedMs = timed ? clock.now() - start : 0;
    const info: RetryFailureInfo = {
      attempt,
      classification,
      errors,
      elapsedMs,
    };
    let giveUp: unknown;
    if (!isRetryable(error, info, options)) {
      giveUp = error;
    } else if (attempt >= maxAttempts) {
      giveUp = new RetryError(error, maxAttempts, { errors, elapsedMs });
    } else if (budget && !budget.canRetry()) {
      giveUp = new RetryBudgetExceededError(error, attempt, {
        errors,
        elapsedMs,
      });
    } else {
      let delayMs = computeDelay(backoff, attempt - 1, previousDelay);
      previousDelay = delayMs;
      const hint = classification.delayHintMs;
      if (hint !== undefined) {
        delayMs = Math.max(delayMs, Math.min(hint, plan.maxRetryAfter));
      }
      let left = Infinity;
      if (deadline !== undefined) {
        // Leave room for an attempt as long as the longest one so far;
        // a wait that would eat that room is shortened, and when there is
        // no room at all, no further attempt is started.
        left = deadline - elapsedMs;
        const room = left - Math.max(longestAttempt, 1);
        if (hint !== undefined && Math.min(hint, plan.maxRetryAfter) > room) {
          giveUp = new DeadlineExceededError(error, attempt, {
            deadline,
            errors,
            elapsedMs,
            reason: "retry_after_exceeds_deadline",
          });
        } else if (room <= 0) {
          giveUp = new DeadlineExceededError(error, attempt, {
            deadline,
            errors,
            elapsedMs,
          });
        } else {
          delayMs = Math.min(delayMs, room);
        }
      }
      if (giveUp === undefined) {
        if (options.onRetry) {
          notify(options.onRetry, {
            attempt,
            maxAttempts,
            delayMs,
            error,
            classification,
            elapsedMs,
            remainingMs: left,
          });
        }
        if (delayMs > 0) await clock.sleep(delayMs, signal);
        continue;
      }
    }
    if (options.fallback && !(signal?.aborted)) {
      try {
        const value = await options.fallback(giveUp, info);
        metrics?.record({ attempts: attempt, ok: true, fallback: true });
        return value;
      } catch (fallbackError) {
        metrics?.record({ attempts: attempt, ok: false, fallback: true });
        throw fallbackError;
      }
    }
    metrics?.record({ attempts: attempt, ok: false, fallback: false });
    throw giveUp;
  }
}

function isRetryable<T>(
  error: unknown,
  info: RetryFailureInfo,
  options: RetryOptions<T>,
): boolean {
  if (options.isRetriable) return options.isRetriable(error);
  if (options.shouldRetry) return options.shouldRetry(error, info);
  if (options.classify) return info.classification.retryable;
  return true; // std: every error is retriable by default
}

// A hook that throws must not change what retry does; surface the bug
// without swallowing it, as std's circuit breaker does.
function notify<E>(hook: (event: E) => void, event: E): void {
  try {
    hook(event);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

// Settles with `work` unless `signal` aborts first; then rejects with its
// reason at once. The abandoned work's late rejection is swallowed.
function raceSignal<T>(
  work: T | Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  if (!(work instanceof Promise)) return Promise.resolve(work);
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

// Runs one attempt bounded by the per-attempt timeout and the time left
// before the deadline. The attempt's signal aborts with an
// AttemptTimeoutError when the limit passes, and with the caller's reason
// when the caller aborts.
async function runLimited<T>(
  fn: (context: RetryContext) => T | Promise<T>,
  attempt: number,
  remainingMs: number,
  plan: Plan<T>,
): Promise<T> {
  const { clock, options } = plan;
  const limit = Math.min(options.timeout ?? Infinity, remainingMs);
  const controller = new AbortController();
  const timerStop = new AbortController();
  const caller = options.signal;
  const onCallerAbort = () => controller.abort(caller!.reason);
  caller?.addEventListener("abort", onCallerAbort, { once: true });
  if (caller?.aborted) controller.abort(caller.reason);
  clock.sleep(Math.max(0, limit), timerStop.signal).then(
    () => controller.abort(new AttemptTimeoutError(Math.round(limit), attempt)),
    () => {}, // stopped: the attempt finished first
  );
  try {
    return await raceSignal(
      fn({ attempt, signal: controller.signal, remainingMs }),
      controller.signal,
    );
  } finally {
    timerStop.abort();
    caller?.removeEventListener("abort", onCallerAbort);
  }
}
