import { makePlan, type RetryOptions, runPlan } from "./retry.ts";

/**
 * A decorator for async methods (TC39 decorators, as Deno runs them by default — not
 * TypeScript's legacy `experimentalDecorators`) that retries every call of
 * the method with the given options. `this` is kept.
 *
 * @typeParam This The class the method belongs to.
 * @typeParam A The method's arguments.
 * @typeParam R The value it produces.
 * @param options How to retry, as for `retry`.
 * @returns The decorator.
 * @throws {RangeError} When the class is defined, for invalid options.
 *
 * @example Retry a method
 * ```ts
 * import { retryable } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * class Client {
 *   calls = 0;
 *   @retryable({ maxAttempts: 3, minTimeout: 1 })
 *   async fetchUser(id: number): Promise<string> {
 *     if (++this.calls < 3) throw new Error("flaky");
 *     return `user ${id}`;
 *   }
 * }
 * const client = new Client();
 * assert.equal(await client.fetchUser(7), "user 7");
 * assert.equal(client.calls, 3);
 * ```
 */
export function retryable<This, A extends unknown[], R>(
  options?: RetryOptions<R>,
): (
  method: (this: This, ...args: A) => Promise<R>,
  context: ClassMethodDecoratorContext<
    This,
    (this: This, ...args: A) => Promise<R>
  >,
) => (this: This, ...args: A) => Promise<R> {
  const plan = makePlan(options);
  return (method) =>
    function (this: This, ...args: A): Promise<R> {
      return runPlan(() => method.apply(this, args), plan);
    };
}
