/**
 * Sturdy keeps long-running agent scripts alive through flaky I/O, crashes
 * and concurrent access. This entry point re-exports every concern; import a
 * concern's own entry (`@sturdy/sturdy/retry`) to pull in only that part.
 *
 * @example Retry with backoff
 * ```ts
 * import { retry } from "@sturdy/sturdy";
 * import assert from "node:assert/strict";
 *
 * let n = 0;
 * const value = await retry(() => {
 *   if (++n < 2) throw new Error("flaky");
 *   return n;
 * }, { minTimeout: 1 });
 * assert.equal(value, 2);
 * ```
 *
 * @module
 */
export * from "./checkpoint/mod.ts";
export * from "./episode/mod.ts";
export * from "./fs/mod.ts";
export * from "./lock/mod.ts";
export * from "./recovery/mod.ts";
export * from "./retry/mod.ts";
