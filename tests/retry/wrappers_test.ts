import assert from "node:assert/strict";
import {
  backoffSchedule,
  retry,
  retryable,
  retryPresets,
  withRetry,
} from "../../mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

Deno.test("withRetry() keeps the arguments and retries each call", async () => {
  const clock = new FakeClock();
  const seen: [string, number][] = [];
  let failures = 2;
  const wrapped = withRetry((a: string, b: number) => {
    seen.push([a, b]);
    if (failures-- > 0) throw new Error("flaky");
    return `${a}${b}`;
  }, { clock });
  assert.equal(await clock.run(wrapped("x", 1)), "x1");
  assert.deepEqual(seen, [["x", 1], ["x", 1], ["x", 1]]);
});

Deno.test("withRetry() validates its options when wrapping, not when called", () => {
  assert.throws(() => withRetry(() => 1, { maxAttempts: 0 }), RangeError);
});

Deno.test("retryable() retries a method and keeps this", async () => {
  const clock = new FakeClock();
  class Repo {
    calls = 0;
    constructor(readonly name: string) {}
    @retryable({ clock, maxAttempts: 4 })
    async load(id: number): Promise<string> {
      await Promise.resolve();
      if (++this.calls < 4) throw new Error("flaky");
      return `${this.name}/${id}`;
    }
  }
  const repo = new Repo("users");
  assert.equal(await clock.run(repo.load(3)), "users/3");
  assert.equal(repo.calls, 4);
});

Deno.test("retryPresets document their schedules truthfully", () => {
  const none = { jitter: "none" } as const;
  assert.deepEqual(backoffSchedule({ ...retryPresets.quick, ...none }), [
    100,
    200,
  ]);
  assert.deepEqual(
    backoffSchedule({ ...retryPresets.conservative, ...none }),
    [5_000, 15_000, 45_000],
  );
  assert.deepEqual(
    backoffSchedule({ ...retryPresets.fileIo, ...none }),
    [50, 100, 200],
  );
  const aggressive = backoffSchedule(retryPresets.aggressive);
  assert.equal(aggressive.length, 7);
  assert.ok(aggressive.every((d) => d >= 1_000 && d <= 30_000));
});

Deno.test("retryPresets.fileIo retries only errors the OS calls temporary", async () => {
  const clock = new FakeClock();
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw new Error("who knows");
    }, { ...retryPresets.fileIo, clock }),
    /who knows/,
  );
  assert.equal(calls, 1);
  calls = 0;
  const value = await clock.run(retry(() => {
    if (++calls < 3) throw Object.assign(new Error("x"), { code: "EMFILE" });
    return "opened";
  }, { ...retryPresets.fileIo, clock }));
  assert.equal(value, "opened");
});

Deno.test("retryPresets are frozen so nobody changes them for everyone", () => {
  assert.ok(Object.isFrozen(retryPresets));
  assert.ok(Object.isFrozen(retryPresets.quick));
});
