/** What a custom jitter function is told about the delay it shapes. */
export interface JitterContext {
  /** The 0-based index of the retry (0 = the wait after the first failure). */
  retry: number;
  /** The capped exponential delay before jitter, in milliseconds. */
  delay: number;
  /** The delay used before the previous retry (`minDelay` for the first). */
  previousDelay: number;
  /** The floor of the schedule, in milliseconds. */
  minDelay: number;
  /** The cap of the schedule, in milliseconds. */
  maxDelay: number;
  /** A random number in [0, 1). */
  random: number;
}

/** Shapes a delay; the result is clamped to `[0, maxDelay]`. */
export type JitterFunction = (context: JitterContext) => number;

/**
 * How a delay is randomised, so that many clients do not retry in lock-step:
 * - `"full"` (same as `1`): uniform in (0, delay] — fewest total calls (AWS);
 * - `"equal"`: uniform in [delay/2, delay];
 * - `"decorrelated"`: uniform in [minDelay, previous × 3], capped (AWS);
 * - `"none"` (same as `0`): exactly the exponential delay;
 * - a number `j` in [0, 1]: `(1 - j × random) × delay`, as Deno std does;
 * - a function: your own shape.
 */
export type Jitter =
  | "full"
  | "equal"
  | "decorrelated"
  | "none"
  | number
  | JitterFunction;

/** The knobs of an exponential backoff. Std's names and defaults. */
export interface BackoffOptions {
  /**
   * Total number of attempts, the first included.
   * @default {5}
   */
  maxAttempts?: number;
  /**
   * The first delay and the floor of the schedule, in milliseconds.
   * Same as `minDelay` (pass one of them).
   * @default {1000}
   */
  minTimeout?: number;
  /** Alias of `minTimeout`, the name DESIGN.md uses. @default {1000} */
  minDelay?: number;
  /**
   * The cap of any one delay, in milliseconds. Same as `maxDelay`.
   * @default {60000}
   */
  maxTimeout?: number;
  /** Alias of `maxTimeout`. @default {60000} */
  maxDelay?: number;
  /**
   * Growth factor of the delay per retry.
   * @default {2}
   */
  multiplier?: number;
  /**
   * How the delay is randomised (see {@linkcode Jitter}).
   * @default {1}
   */
  jitter?: Jitter;
  /**
   * The source of randomness, returning a number in [0, 1).
   * @default {Math.random}
   */
  random?: () => number;
}

/**
 * A validated backoff policy. Resolve once, use for many delays.
 * @internal
 */
export interface ResolvedBackoff {
  maxAttempts: number;
  minDelay: number;
  maxDelay: number;
  multiplier: number;
  jitter: Jitter;
  random: () => number;
}

function pick(
  options: BackoffOptions,
  std: "minTimeout" | "maxTimeout",
  alias: "minDelay" | "maxDelay",
  fallback: number,
): number {
  const a = options[std];
  const b = options[alias];
  if (a !== undefined && b !== undefined && a !== b) {
    throw new RangeError(
      `Cannot retry as '${std}' and '${alias}' are the same option with different values: '${std}=${a}', '${alias}=${b}'`,
    );
  }
  return a ?? b ?? fallback;
}

/**
 * Validates backoff options with Deno std's rules and messages and fills in
 * the defaults.
 *
 * @param options The options to check.
 * @returns The resolved policy.
 * @throws {RangeError} For an out-of-range, non-integer or non-finite value.
 * @internal
 */
export function resolveBackoff(options: BackoffOptions = {}): ResolvedBackoff {
  const {
    maxAttempts = 5,
    multiplier = 2,
    jitter = 1,
    random = Math.random,
  } = options;
  const maxDelay = pick(options, "maxTimeout", "maxDelay", 60000);
  const minDelay = pick(options, "minTimeout", "minDelay", 1000);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry as 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
    );
  }
  if (!Number.isFinite(multiplier) || multiplier < 1) {
    throw new RangeError(
      `Cannot retry as 'multiplier' must be a finite number >= 1: current value is ${multiplier}`,
    );
  }
  if (Number.isNaN(maxDelay) || maxDelay <= 0) {
    throw new RangeError(
      `Cannot retry as 'maxTimeout' must be a positive number: current value is ${maxDelay}`,
    );
  }
  if (Number.isNaN(minDelay) || minDelay < 0) {
    throw new RangeError(
      `Cannot retry as 'minTimeout' must be >= 0: current value is ${minDelay}`,
    );
  }
  if (minDelay > maxDelay) {
    throw new RangeError(
      `Cannot retry as 'minTimeout' must be <= 'maxTimeout': current values 'minTimeout=${minDelay}', 'maxTimeout=${maxDelay}'`,
    );
  }
  if (typeof jitter === "number") {
    if (Number.isNaN(jitter) || jitter < 0 || jitter > 1) {
      throw new RangeError(
        `Cannot retry as 'jitter' must be between 0 and 1: current value is ${jitter}`,
      );
    }
  } else if (
    typeof jitter !== "function" &&
    !["full", "equal", "decorrelated", "none"].includes(jitter)
  ) {
    throw new RangeError(
      `Cannot retry as 'jitter' must be "full", "equal", "decorrelated", "none", a number in [0, 1] or a function: current value is ${
        JSON.stringify(jitter)
      }`,
    );
  }
  return { maxAttempts, minDelay, maxDelay, multiplier, jitter, random };
}

/**
 * The delay before retry number `retry` (0-based) of a resolved policy.
 *
 * @param policy The resolved policy.
 * @param retry 0 for the wait after the first failed attempt.
 * @param previousDelay The delay used last time (for decorrelated jitter).
 * @returns The delay in milliseconds, in `[0, maxDelay]`.
 * @internal
 */
export function computeDelay(
  policy: ResolvedBackoff,
  retry: number,
  previousDelay: number,
): number {
  const { minDelay, maxDelay, multiplier, jitter } = policy;
  // Cap before jitter, as std does, so "full" stays uniform over (0, cap].
  const delay = Math.min(maxDelay, minDelay * multiplier ** retry);
  switch (jitter) {
    case "none":
      return delay;
    case "full":
      return (1 - policy.random()) * delay;
    case "equal":
      return delay / 2 + (policy.random() * delay) / 2;
    case "decorrelated": {
      // AWS "decorrelated jitter": grows from the previous delay, not the
      // attempt count, then is capped; never below the floor.
      const high = Math.max(minDelay, previousDelay * 3);
      return Math.min(maxDelay, minDelay + policy.random() * (high - minDelay));
    }
    default:
      if (typeof jitter === "number") {
        return (1 - jitter * policy.random()) * delay;
      }
      return clamp(
        jitter({
          retry,
          delay,
          previousDelay,
          minDelay,
          maxDelay,
          random: policy.random(),
        }),
        maxDelay,
      );
  }
}

function clamp(value: number, max: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(0, value)) : max;
}

/**
 * Lists the delays a policy would wait between its attempts (one fewer than
 * `maxAttempts`), for docs, previews and tests. Jitter is applied with the
 * given `random`, so pass `jitter: "none"` (or `random: () => 0.5`) for a
 * stable preview.
 *
 * @param options The backoff options, as for `retry`.
 * @returns The delays in milliseconds, in order.
 *
 * @example Preview std's defaults without jitter
 * ```ts
 * import { backoffSchedule } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(backoffSchedule({ jitter: "none" }), [1000, 2000, 4000, 8000]);
 * ```
 */
export function backoffSchedule(options: BackoffOptions = {}): number[] {
  const policy = resolveBackoff(options);
  const delays: number[] = [];
  let previous = policy.minDelay;
  for (let retry = 0; retry < policy.maxAttempts - 1; retry++) {
    previous = computeDelay(policy, retry, previous);
    delays.push(previous);
  }
  return delays;
}
