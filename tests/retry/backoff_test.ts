import assert from "node:assert/strict";
import { backoffSchedule, type JitterContext } from "../../mod.ts";

function sweep(jitter: "full" | "equal" | "decorrelated", runs = 2_000) {
  const all: number[][] = [];
  for (let i = 0; i < runs; i++) {
    all.push(
      backoffSchedule({
        jitter,
        maxAttempts: 8,
        minTimeout: 100,
        maxTimeout: 5_000,
      }),
    );
  }
  return all;
}

Deno.test("backoffSchedule() lists maxAttempts - 1 delays, growing by the multiplier to the cap", () => {
  assert.deepEqual(
    backoffSchedule({
      jitter: "none",
      maxAttempts: 6,
      minTimeout: 10,
      maxTimeout: 100,
    }),
    [10, 20, 40, 80, 100],
  );
  assert.deepEqual(backoffSchedule({ maxAttempts: 1 }), []);
  assert.deepEqual(
    backoffSchedule({
      jitter: 0,
      multiplier: 1,
      maxAttempts: 3,
      minTimeout: 7,
    }),
    [7, 7],
  );
});

Deno.test("backoffSchedule() full jitter stays within (0, delay]", () => {
  for (const delays of sweep("full")) {
    delays.forEach((d, i) => {
      const cap = Math.min(5_000, 100 * 2 ** i);
      assert.ok(d > 0 && d <= cap, `${d} outside (0, ${cap}]`);
    });
  }
});

Deno.test("backoffSchedule() equal jitter stays within [delay/2, delay]", () => {
  for (const delays of sweep("equal")) {
    delays.forEach((d, i) => {
      const cap = Math.min(5_000, 100 * 2 ** i);
      assert.ok(d >= cap / 2 && d <= cap, `${d} outside [${cap / 2}, ${cap}]`);
    });
  }
});

Deno.test("backoffSchedule() decorrelated jitter stays within [min, 3 × previous] and the cap", () => {
  for (const delays of sweep("decorrelated")) {
    let previous = 100;
    for (const d of delays) {
      assert.ok(d >= 100, `${d} below the floor`);
      assert.ok(d <= Math.min(5_000, previous * 3) + 1e-9, `${d} above bound`);
      previous = d;
    }
  }
  // With the highest random value it reaches the cap and stays there.
  const top = backoffSchedule({
    jitter: "decorrelated",
    random: () => 0.999999,
    maxAttempts: 10,
    minTimeout: 100,
    maxTimeout: 1_000,
  });
  assert.ok(top.at(-1)! > 999 && top.at(-1)! <= 1_000);
});

Deno.test("backoffSchedule() numeric jitter follows std's (1 - j × random) × delay", () => {
  assert.deepEqual(
    backoffSchedule({
      jitter: 0.5,
      random: () => 1,
      maxAttempts: 3,
      minTimeout: 100,
    }),
    [50, 100],
  );
});

Deno.test("backoffSchedule() takes a custom jitter function and clamps its result", () => {
  const seen: JitterContext[] = [];
  const delays = backoffSchedule({
    maxAttempts: 4,
    minTimeout: 100,
    maxTimeout: 300,
    random: () => 0.25,
    jitter: (ctx) => {
      seen.push(ctx);
      return ctx.retry === 0 ? -5 : ctx.retry === 1 ? 1e9 : NaN;
    },
  });
  assert.deepEqual(delays, [0, 300, 300]);
  assert.deepEqual(seen[1], {
    retry: 1,
    delay: 200,
    previousDelay: 0,
    minDelay: 100,
    maxDelay: 300,
    random: 0.25,
  });
});
