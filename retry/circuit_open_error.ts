import { SturdyError } from "./sturdy_error.ts";

/** Extra context for a {@linkcode CircuitOpenError}. */
export interface CircuitOpenErrorOptions {
  /**
   * The state that refused the call: `"open"`, or `"half_open"` when every
   * trial slot was taken.
   *
   * @default {"open"}
   */
  state?: "open" | "half_open";
  /**
   * Why the circuit refused, in words, e.g. `"3 consecutive failures"`.
   *
   * @default {"recent failures"}
   */
  detail?: string;
  /**
   * Whether the circuit is held open by `CircuitBreaker.isolate()`.
   *
   * @default {false}
   */
  isolated?: boolean;
}

/**
 * Thrown by `CircuitBreaker.execute()` when the circuit refuses a call
 * without running it: the circuit is open, it is half-open and every trial
 * slot is in use, or it is held open by `isolate()`.
 *
 * `retryAfterMs` says when a call may next be let through: the rest of the
 * cooldown when open, `0` when half-open (a slot frees as soon as a trial
 * call finishes), and `Infinity` when isolated (no time is known). Sturdy's
 * `retry()` uses it as a delay hint.
 *
 * @example Inspect a refusal
 * ```ts
 * import { CircuitOpenError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = new CircuitOpenError("api", 12_400, {
 *   detail: "3 consecutive failures",
 * });
 * assert.equal(err.code, "circuit_open");
 * assert.equal(err.breaker, "api");
 * assert.equal(err.retryAfterMs, 12_400);
 * assert.equal(
 *   err.message,
 *   'Circuit "api" is open: 3 consecutive failures; retry in 12.4s',
 * );
 * ```
 */
export class CircuitOpenError extends SturdyError {
  /** The name of the breaker that refused the call. */
  readonly breaker: string;
  /**
   * Milliseconds until a call may be let through: the rest of the cooldown,
   * `0` when half-open, `Infinity` when isolated.
   */
  readonly retryAfterMs: number;
  /** The state that refused the call. */
  readonly state: "open" | "half_open";
  /** Whether the circuit is held open by `isolate()`. */
  readonly isolated: boolean;

  /**
   * Creates the error; the message is built from the arguments.
   *
   * @param breaker The breaker's name.
   * @param retryAfterMs Milliseconds until a call may be let through.
   * @param options The refusing state and why.
   */
  constructor(
    breaker: string,
    retryAfterMs: number,
    options: CircuitOpenErrorOptions = {},
  ) {
    const { state = "open", detail = "recent failures", isolated = false } =
      options;
    super(message(breaker, retryAfterMs, state, detail, isolated), {
      code: "circuit_open",
      operation: "execute",
    });
    this.breaker = breaker;
    this.retryAfterMs = retryAfterMs;
    this.state = state;
    this.isolated = isolated;
  }
}

function message(
  breaker: string,
  retryAfterMs: number,
  state: "open" | "half_open",
  detail: string,
  isolated: boolean,
): string {
  const name = JSON.stringify(breaker);
  if (isolated) {
    return `Circuit ${name} is isolated: ${detail}; retry after the isolate() hold is released`;
  }
  if (state === "half_open") {
    return `Circuit ${name} is half-open: ${detail}; retry when a trial call finishes`;
  }
  const seconds = (Math.max(0, retryAfterMs) / 1000).toFixed(1);
  return `Circuit ${name} is open: ${detail}; retry in ${seconds}s`;
}
