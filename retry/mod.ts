/**
 * Retry with exponential backoff and jitter, deadlines, cancellation, error
 * classification, fallbacks, a circuit breaker, a shared retry budget and
 * metrics. A drop-in superset of Deno std's `retry`.
 *
 * This module is also the home of the plumbing every other Sturdy module
 * shares: {@linkcode SturdyError}, the {@linkcode Clock}, duration parsing
 * and name validation.
 *
 * @example Retry a flaky operation, giving up after two seconds
 * ```ts
 * import { retry, retryPresets } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const value = await retry(({ attempt }) => {
 *   calls++;
 *   if (attempt === 1) {
 *     throw Object.assign(new Error("resource busy"), { code: "EBUSY" });
 *   }
 *   return "done";
 * }, { ...retryPresets.quick, deadline: 2_000 });
 * assert.equal(value, "done");
 * assert.equal(calls, 2);
 * ```
 *
 * @module
 */
export {
  type BackoffOptions,
  backoffSchedule,
  type Jitter,
  type JitterContext,
  type JitterFunction,
} from "./backoff.ts";
export * from "./budget.ts";
export * from "./circuit_breaker.ts";
export * from "./circuit_open_error.ts";
export * from "./classify.ts";
export * from "./clock.ts";
export * from "./duration.ts";
export * from "./errors.ts";
export * from "./metrics.ts";
export * from "./name.ts";
export * from "./presets.ts";
export {
  retry,
  type RetryContext,
  type RetryEvent,
  type RetryFailureInfo,
  type RetryOptions,
} from "./retry.ts";
export * from "./retry_after.ts";
export * from "./retryable.ts";
export * from "./sturdy_error.ts";
export * from "./with_retry.ts";
