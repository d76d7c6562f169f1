// Overhead of Sturdy's retry and circuit breaker against a bare call and
// against peer libraries (p-retry, cockatiel), imported through npm: here
// only; they are not dependencies of the library.
//
//   deno bench -A bench/retry_bench.ts
//
// Every operation resolves (or rejects) at once, so each figure is the cost
// of the wrapper itself. Groups, each with its own baseline:
// - success:  one successful attempt; baseline `await fn()`
// - signal:   retry with a signal, a timeout or a deadline; baseline plain retry
// - failure:  fail once, then succeed, with no delay; baseline a hand loop
// - breaker:  one call through a closed breaker; baseline `await fn()`
//
// Like-for-like settings: Sturdy's `maxAttempts` counts every attempt,
// p-retry's `retries` and cockatiel's `maxAttempts` count only retries, so
// 5 attempts is `{ maxAttempts: 5 }`, `{ retries: 4 }` and `{ maxAttempts: 4 }`.

import pRetry from "p-retry";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ConstantBackoff,
  handleAll,
  retry as cockatielRetry,
} from "cockatiel";
import { CircuitBreaker, retry, withRetry } from "../retry/mod.ts";

const op = (): Promise<number> => Promise.resolve(42);

// One preallocated error, so no bench pays for capturing a stack trace.
const failure = new Error("transient");

// An operation that fails on every odd call and succeeds on every even one,
// so each retried call sees exactly one failure and then a success, with no
// per-iteration closure. Each bench gets its own.
function failEveryOther(): () => Promise<number> {
  let calls = 0;
  return () =>
    (calls++ & 1) === 0 ? Promise.reject(failure) : Promise.resolve(42);
}

// Keeps results observable so the JIT cannot drop the calls.
let sink = 0;
function use(value: number): void {
  sink = (sink + value) | 0;
}

// ---- success path -------------------------------------------------------

const wrapped = withRetry(op);
const sturdyFiveAttempts = { maxAttempts: 5 };
const cockatielPolicy = cockatielRetry(handleAll, { maxAttempts: 4 });

Deno.bench({
  name: "await fn() (bare call)",
  group: "success",
  baseline: true,
  async fn() {
    use(await op());
  },
});

Deno.bench({
  name: "sturdy retry(fn)",
  group: "success",
  async fn() {
    use(await retry(op));
  },
});

Deno.bench({
  name: "sturdy retry(fn, { maxAttempts: 5 }) (options literal per call)",
  group: "success",
  async fn() {
    use(await retry(op, { maxAttempts: 5 }));
  },
});

Deno.bench({
  name: "sturdy retry(fn, options) (shared options object)",
  group: "success",
  async fn() {
    use(await retry(op, sturdyFiveAttempts));
  },
});

Deno.bench({
  name: "sturdy withRetry(fn)()",
  group: "success",
  async fn() {
    use(await wrapped());
  },
});

Deno.bench({
  name: "p-retry pRetry(fn)",
  group: "success",
  async fn() {
    use(await pRetry(op));
  },
});

Deno.bench({
  name: "p-retry pRetry(fn, { retries: 4 })",
  group: "success",
  async fn() {
    use(await pRetry(op, { retries: 4 }));
  },
});

Deno.bench({
  name: "cockatiel retry(handleAll, { maxAttempts: 4 }).execute(fn)",
  group: "success",
  async fn() {
    use(await cockatielPolicy.execute(op));
  },
});

// ---- AbortSignal plumbing -----------------------------------------------

// Never aborted: the figures are the cost of wiring a signal up, not of
// aborting.
const controller = new AbortController();
const withSignal = { signal: controller.signal };
const withTimeout = { timeout: 60_000 };
const withDeadline = { deadline: 60_000 };
const withAll = { signal: controller.signal, timeout: 60_000 };

Deno.bench({
  name: "sturdy retry(fn)",
  group: "signal",
  baseline: true,
  async fn() {
    use(await retry(op));
  },
});

Deno.bench({
  name: "sturdy retry(fn, { signal })",
  group: "signal",
  async fn() {
    use(await retry(op, withSignal));
  },
});

Deno.bench({
  name: "sturdy retry(fn, { timeout: 60_000 })",
  group: "signal",
  async fn() {
    use(await retry(op, withTimeout));
  },
});

Deno.bench({
  name: "sturdy retry(fn, { deadline: 60_000 })",
  group: "signal",
  async fn() {
    use(await retry(op, withDeadline));
  },
});

Deno.bench({
  name: "sturdy retry(fn, { signal, timeout: 60_000 })",
  group: "signal",
  async fn() {
    use(await retry(op, withAll));
  },
});

Deno.bench({
  name: "p-retry pRetry(fn, { retries: 4, signal })",
  group: "signal",
  async fn() {
    use(await pRetry(op, { retries: 4, signal: controller.signal }));
  },
});

Deno.bench({
  name: "cockatiel policy.execute(fn, signal)",
  group: "signal",
  async fn() {
    use(await cockatielPolicy.execute(op, controller.signal));
  },
});

// ---- failure path: fail once, then succeed, no delay --------------------

const sturdyNoDelay = { maxAttempts: 5, minTimeout: 0 };
const pRetryNoDelay = { retries: 4, minTimeout: 0 };
// cockatiel's default backoff is already ConstantBackoff(0), but it still
// awaits a setTimeout(0) before every retry; there is no way to skip it.
const cockatielNoDelay = cockatielRetry(handleAll, {
  maxAttempts: 4,
  backoff: new ConstantBackoff(0),
});
const flakyLoop = failEveryOther();
const flakyRetry = failEveryOther();
const flakyWrapped = withRetry(failEveryOther(), sturdyNoDelay);
const flakyPRetry = failEveryOther();
const flakyCockatiel = failEveryOther();

Deno.bench({
  name: "hand-written loop (try, catch, call again)",
  group: "failure",
  baseline: true,
  async fn() {
    for (let attempt = 1;; attempt++) {
      try {
        use(await flakyLoop());
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
  },
});

Deno.bench({
  name: "sturdy retry(fn, { minTimeout: 0 })",
  group: "failure",
  async fn() {
    use(await retry(flakyRetry, sturdyNoDelay));
  },
});

Deno.bench({
  name: "sturdy withRetry(fn, { minTimeout: 0 })()",
  group: "failure",
  async fn() {
    use(await flakyWrapped());
  },
});

Deno.bench({
  name: "p-retry pRetry(fn, { retries: 4, minTimeout: 0 })",
  group: "failure",
  async fn() {
    use(await pRetry(flakyPRetry, pRetryNoDelay));
  },
});

Deno.bench({
  name: "cockatiel retry(ConstantBackoff(0)).execute(fn) (setTimeout 0)",
  group: "failure",
  async fn() {
    use(await cockatielNoDelay.execute(flakyCockatiel));
  },
});

// ---- circuit breaker, closed path ---------------------------------------

// Sturdy's CircuitBreaker is looked up at run time so this file type-checks
// and runs before (and after) it is exported from retry/mod.ts.
const cockatielBreaker = circuitBreaker(handleAll, {
  halfOpenAfter: 10_000,
  breaker: new ConsecutiveBreaker(5),
});

Deno.bench({
  name: "await fn() (bare call)",
  group: "breaker",
  baseline: true,
  async fn() {
    use(await op());
  },
});

const sturdyBreaker = new CircuitBreaker({ name: "bench" });
Deno.bench({
  name: "sturdy CircuitBreaker.execute(fn)",
  group: "breaker",
  async fn() {
    use(await sturdyBreaker.execute(op));
  },
});

Deno.bench({
  name: "cockatiel circuitBreaker(ConsecutiveBreaker(5)).execute(fn)",
  group: "breaker",
  async fn() {
    use(await cockatielBreaker.execute(op));
  },
});

// Read once so `sink` is not dead code.
globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
