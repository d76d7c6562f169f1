import { makePlan, type RetryOptions, runPlan } from "./retry.ts";

/**
 * Wraps a function so that every call to the wrapper retries it. The options
 * are validated once, here, instead of on every call.
 *
 * @typeParam A The wrapped function's arguments.
 * @typeParam R The value it produces.
 * @param fn The function to wrap.
 * @param options How to retry, as for `retry`.
 * @returns A function with the same arguments that returns a promise.
 * @throws {RangeError} At wrap time, for invalid options.
 *
 * @example Wrap a flaky reader
 * ```ts
 * import { withRetry } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * let failures = 2;
 * const read = withRetry((key: string) => {
 *   if (failures-- > 0) throw new Error("busy");
 *   return `value of ${key}`;
 * }, { minTimeout: 1 });
 * assert.equal(await read("a"), "value of a");
 * ```
 */
export function withRetry<A extends unknown[], R>(
  fn: (...args: A) => R | Promise<R>,
  options?: RetryOptions<R>,
): (...args: A) => Promise<R> {
  const plan = makePlan(options);
  return (...args: A) => runPlan(() => fn(...args), plan);
}
