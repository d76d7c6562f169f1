/**
 * The source of time for everything in Sturdy that waits or measures.
 * Tests pass a fake one so that no test sleeps for real.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch, like `Date.now()`. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, or rejects with `signal.reason` as soon
   * as `signal` aborts (at once if it already has).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Sleeps for `ms` milliseconds with the global `setTimeout`, cut short by
 * `signal`. The timer and the abort listener are both removed however the
 * wait ends, and no listener is added when no signal is given.
 *
 * The global `setTimeout` is looked up on every call (not captured at import)
 * so fake-timer libraries installed after import still take effect.
 *
 * @param ms How long to wait, in milliseconds.
 * @param signal Ends the wait early, rejecting with `signal.reason`.
 * @returns A promise that resolves when the time is up.
 *
 * @example Wait a little
 * ```ts
 * import { sleep } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const start = Date.now();
 * await sleep(5);
 * assert.ok(Date.now() - start >= 4);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    // setTimeout clamps values above 2^31-1 to 1 ms; chain shorter waits.
    const step = Math.min(Math.max(0, ms), 2_147_483_647);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      if (ms > step) sleep(ms - step, signal).then(resolve, reject);
      else resolve();
    }, step);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The real clock: `Date.now()` and {@linkcode sleep} on the global timers.
 *
 * @example Use the system clock explicitly
 * ```ts
 * import { systemClock } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Math.abs(systemClock.now() - Date.now()) < 1000);
 * ```
 */
export const systemClock: Clock = {
  now: (): number => Date.now(),
  sleep,
};
