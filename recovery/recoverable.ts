import type { RecoveryManager } from "./manager.ts";
import type { ExecuteOptions } from "./options.ts";

/**
 * A decorator for async methods (TC39 decorators) that runs every call as
 * a recovery task, like {@linkcode RecoveryManager.wrap}: the call returns
 * the value (or the fallback's), `undefined` when skipped, and throws a
 * {@linkcode TaskFailedError} otherwise. `this` is kept.
 *
 * @typeParam This The class the method belongs to.
 * @typeParam A The method's arguments.
 * @typeParam R The value it produces.
 * @param manager The manager, or a function of `this` that returns it
 *   (for a manager held by the instance).
 * @param taskId The task id, or a function of the arguments making one.
 * @param options As for {@linkcode RecoveryManager.execute}.
 * @returns The decorator.
 *
 * @example A method that runs once per order
 * ```ts
 * import { recoverable, RecoveryManager } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * class Shop {
 *   recovery = new RecoveryManager({ root, retry: { minDelay: 1 } });
 *   charged = 0;
 *   @recoverable((shop: Shop) => shop.recovery, (order: string) => `charge-${order}`)
 *   async charge(order: string): Promise<string> {
 *     this.charged++;
 *     return `charged ${order}`;
 *   }
 * }
 * const shop = new Shop();
 * assert.equal(await shop.charge("A17"), "charged A17");
 * assert.equal(await shop.charge("A17"), "charged A17"); // not charged twice
 * assert.equal(shop.charged, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function recoverable<This, A extends unknown[], R>(
  manager: RecoveryManager | ((self: This) => RecoveryManager),
  taskId: string | ((...args: A) => string),
  options?: ExecuteOptions<R>,
): (
  method: (this: This, ...args: A) => Promise<R>,
  context: ClassMethodDecoratorContext<
    This,
    (this: This, ...args: A) => Promise<R>
  >,
) => (this: This, ...args: A) => Promise<R> {
  return (method) =>
    function (this: This, ...args: A): Promise<R> {
      const m = typeof manager === "function" ? manager(this) : manager;
      return m.wrap(taskId, (...a: A) => method.apply(this, a), options)(
        ...args,
      );
    };
}
