/** How one `retry` call ended, as fed to {@linkcode RetryMetrics}. */
export interface RetryOutcome {
  /** Attempts made (1 = succeeded or gave up at once). */
  attempts: number;
  /** Whether the call produced a value (from `fn` or from `fallback`). */
  ok: boolean;
  /** Whether the value came from the `fallback`. */
  fallback: boolean;
}

/** A plain summary of {@linkcode RetryMetrics}. */
export interface RetryMetricsSnapshot {
  /** Calls of `retry` that finished. */
  calls: number;
  /** Calls that produced a value, the fallback's included. */
  successes: number;
  /** Calls that threw. */
  failures: number;
  /** Attempts beyond the first, over all calls. */
  retries: number;
  /** Calls whose value came from the fallback. */
  fallbacks: number;
  /** `successes / calls` (1 before any call). */
  successRate: number;
  /** Mean attempts per call (0 before any call). */
  meanAttempts: number;
}

/**
 * Counts what `retry` calls did: pass one instance as `metrics` to as many
 * calls as you like and read the totals whenever you want. It holds only
 * numbers, so it is cheap to keep for the life of a process.
 *
 * @example Count calls and retries
 * ```ts
 * import { retry, RetryMetrics } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const metrics = new RetryMetrics();
 * let n = 0;
 * await retry(() => {
 *   if (++n < 3) throw new Error("flaky");
 *   return n;
 * }, { metrics, minTimeout: 0 });
 * const s = metrics.snapshot();
 * assert.equal(s.calls, 1);
 * assert.equal(s.retries, 2);
 * assert.equal(s.meanAttempts, 3);
 * ```
 */
export class RetryMetrics {
  #calls = 0;
  #successes = 0;
  #attempts = 0;
  #fallbacks = 0;

  /**
   * Adds one finished call.
   *
   * @param outcome How the call ended.
   */
  record(outcome: RetryOutcome): void {
    this.#calls++;
    this.#attempts += outcome.attempts;
    if (outcome.ok) this.#successes++;
    if (outcome.fallback) this.#fallbacks++;
  }

  /**
   * The totals so far.
   *
   * @returns A plain snapshot.
   */
  snapshot(): RetryMetricsSnapshot {
    const calls = this.#calls;
    return {
      calls,
      successes: this.#successes,
      failures: calls - this.#successes,
      retries: this.#attempts - calls,
      fallbacks: this.#fallbacks,
      successRate: calls === 0 ? 1 : this.#successes / calls,
      meanAttempts: calls === 0 ? 0 : this.#attempts / calls,
    };
  }

  /**
   * The same as {@linkcode RetryMetrics.prototype.snapshot}, for `JSON.stringify`.
   *
   * @returns A plain snapshot.
   */
  toJSON(): RetryMetricsSnapshot {
    return this.snapshot();
  }

  /** Sets every count back to zero. */
  reset(): void {
    this.#calls =
      this.#successes =
      this.#attempts =
      this.#fallbacks =
        0;
  }
}
