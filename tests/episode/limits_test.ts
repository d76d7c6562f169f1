import assert from "node:assert/strict";
import {
  type CooldownPolicy,
  type EpisodeConfig,
  parseEpisode,
} from "../../episode/config.ts";
import {
  cooldownDelay,
  pruneErrorTimes,
  shouldResetCooldown,
  thresholdReached,
  worstCaseBudget,
} from "../../episode/limits.ts";

const GEOMETRIC: CooldownPolicy = {
  initialMs: 1_000,
  maxMs: 60_000,
  steps: 6,
  resetAfterMs: 300_000,
};

function config(body: string): EpisodeConfig {
  return parseEpisode(`version: 1\nepisode: demo\n${body}`, {
    baseDir: "/srv/demo",
  });
}

// --- cooldownDelay -----------------------------------------------------------

Deno.test("cooldownDelay() grows 1s to 60s in 6 steps like the design table, then stays at max", () => {
  const seconds = [1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) =>
    Math.round(cooldownDelay(GEOMETRIC, n) / 100) / 10
  );
  assert.deepEqual(seconds, [1, 2, 3.9, 7.7, 15.3, 30.3, 60, 60, 60]);
});

Deno.test("cooldownDelay() lands exactly on max at the last step", () => {
  for (const steps of [1, 2, 3, 7, 10, 50]) {
    const policy = { ...GEOMETRIC, initialMs: 3, maxMs: 10_007, steps };
    assert.equal(cooldownDelay(policy, steps + 1), 10_007, `steps ${steps}`);
    assert.ok(cooldownDelay(policy, steps) < 10_007);
  }
});

Deno.test("cooldownDelay() never decreases and never passes max", () => {
  for (
    const [initialMs, maxMs, steps] of [[1, 2, 1], [250, 90_000, 9], [
      7,
      7_000,
      3,
    ]]
  ) {
    const policy = {
      initialMs: initialMs!,
      maxMs: maxMs!,
      steps: steps!,
      resetAfterMs: 0,
    };
    let previous = 0;
    for (let n = 1; n <= 20; n++) {
      const delay = cooldownDelay(policy, n);
      assert.ok(
        delay >= previous && delay <= maxMs!,
        `${JSON.stringify(policy)} n=${n}`,
      );
      assert.ok(Number.isInteger(delay));
      previous = delay;
    }
  }
});

Deno.test("cooldownDelay() gives a plain cooldown the same delay every time", () => {
  const plain = {
    initialMs: 60_000,
    maxMs: 60_000,
    steps: 0,
    resetAfterMs: 300_000,
  };
  assert.deepEqual([1, 2, 5].map((n) => cooldownDelay(plain, n)), [
    60_000,
    60_000,
    60_000,
  ]);
});

Deno.test("cooldownDelay() counts n below 1, fractional or not a number as the nearest sensible recovery", () => {
  assert.equal(cooldownDelay(GEOMETRIC, 0), 1_000);
  assert.equal(cooldownDelay(GEOMETRIC, -3), 1_000);
  assert.equal(cooldownDelay(GEOMETRIC, Number.NaN), 1_000);
  assert.equal(cooldownDelay(GEOMETRIC, 2.9), cooldownDelay(GEOMETRIC, 2));
  assert.equal(cooldownDelay(GEOMETRIC, Infinity), 1_000);
});

Deno.test("cooldownDelay() does not grow with 0 steps, from 0, or when max is below initial", () => {
  assert.equal(cooldownDelay({ ...GEOMETRIC, steps: 0 }, 5), 1_000);
  assert.equal(cooldownDelay({ ...GEOMETRIC, initialMs: 0 }, 5), 0);
  assert.equal(
    cooldownDelay({ ...GEOMETRIC, initialMs: 5_000, maxMs: 2_000 }, 1),
    2_000,
  );
  assert.equal(
    cooldownDelay({ ...GEOMETRIC, initialMs: 5_000, maxMs: 2_000 }, 4),
    2_000,
  );
});

// --- thresholdReached and pruneErrorTimes ------------------------------------

Deno.test("thresholdReached() is true once count errors fall within the window", () => {
  const policy = { count: 3, windowMs: 60_000 };
  assert.equal(thresholdReached(policy, [], 0), false);
  assert.equal(thresholdReached(policy, [1_000, 2_000], 3_000), false);
  assert.equal(thresholdReached(policy, [1_000, 2_000, 3_000], 3_000), true);
  assert.equal(
    thresholdReached(policy, [1_000, 2_000, 3_000, 4_000], 4_000),
    true,
  );
});

Deno.test("thresholdReached() lets an error slide out exactly windowMs later", () => {
  const policy = { count: 2, windowMs: 10_000 };
  assert.equal(thresholdReached(policy, [0, 5_000], 9_999), true);
  assert.equal(thresholdReached(policy, [0, 5_000], 10_000), false);
});

Deno.test("thresholdReached() counts every error of the episode without a window", () => {
  const policy = { count: 5 };
  const times = [0, 1e6, 2e6, 3e6];
  assert.equal(thresholdReached(policy, times, 1e12), false);
  assert.equal(thresholdReached(policy, [...times, 4e6], 1e12), true);
});

Deno.test("thresholdReached() takes error times in any order and a count below 1 as 1", () => {
  const policy = { count: 2, windowMs: 100 };
  assert.equal(thresholdReached(policy, [950, 10, 990], 1_000), true);
  assert.equal(thresholdReached({ count: 0, windowMs: 100 }, [], 1_000), false);
  assert.equal(
    thresholdReached({ count: 0, windowMs: 100 }, [999], 1_000),
    true,
  );
});

Deno.test("pruneErrorTimes() keeps the times still in the window, in their order", () => {
  const policy = { count: 5, windowMs: 60_000 };
  assert.deepEqual(
    pruneErrorTimes(policy, [90_000, 0, 40_001, 40_000], 100_000),
    [90_000, 40_001],
  );
});

Deno.test("pruneErrorTimes() keeps everything, as a copy, without a window", () => {
  const times = [1, 2, 3];
  const kept = pruneErrorTimes({ count: 5 }, times, 1e12);
  assert.deepEqual(kept, times);
  assert.notEqual(kept, times);
});

Deno.test("pruneErrorTimes() then thresholdReached() agree with thresholdReached() alone", () => {
  const policy = { count: 3, windowMs: 1_000 };
  const times = [0, 400, 800, 1_200, 1_300];
  for (const now of [900, 1_300, 1_900, 2_300]) {
    assert.equal(
      thresholdReached(policy, pruneErrorTimes(policy, times, now), now),
      thresholdReached(policy, times, now),
    );
  }
});

// --- shouldResetCooldown -----------------------------------------------------

Deno.test("shouldResetCooldown() is true after resetAfterMs of health and never while unhealthy", () => {
  assert.equal(shouldResetCooldown(GEOMETRIC, 1_000, 300_999), false);
  assert.equal(shouldResetCooldown(GEOMETRIC, 1_000, 301_000), true);
  assert.equal(shouldResetCooldown(GEOMETRIC, undefined, 1e12), false);
  assert.equal(
    shouldResetCooldown({ ...GEOMETRIC, resetAfterMs: 0 }, 5, 5),
    true,
  );
});

// --- worstCaseBudget ---------------------------------------------------------

Deno.test("worstCaseBudget() prints tasks, recoveries, time and the threshold in one line", () => {
  const budget = worstCaseBudget(config(`limits:
  errorThreshold: { count: 5, window: 60s }
  taskRetryDelay: 1s
agents: { writer: {} }
tasks:
  - { id: a, sh: x, timeout: 1m }
  - { id: b, sh: x, timeout: 1m }
  - { id: c, sh: x, timeout: 1m }
`));
  // Per task: 3 runs × 1m + retry delays 1s + 2s; one agent: 3 × 60s cooldown.
  assert.equal(budget.maxTimeMs, 3 * (180_000 + 3_000) + 180_000);
  assert.deepEqual(budget, {
    tasks: 3,
    runsPerTask: 3,
    runs: 9,
    recoveries: 3,
    maxTimeMs: 729_000,
    line:
      "worst case: 3 tasks × 3 attempts = 9 runs; 3 recoveries per agent with a 1m cooldown; " +
      "up to 12m9s in total; episode aborts after 5 errors in 1m",
  });
});

Deno.test("worstCaseBudget() shows a range of attempts and the cooldowns actually reached", () => {
  const budget = worstCaseBudget(config(`limits:
  recoveryCooldown: { initial: 1s, max: 60s, steps: 6 }
  onThreshold: escalate
  errorThreshold: 1
agents: { a: {}, b: {} }
tasks:
  - { id: a, sh: x, retry: 1, timeout: 1s }
  - { id: b, sh: x, retry: 5, timeout: 1s }
`));
  assert.equal(budget.runsPerTask, 5);
  assert.equal(budget.runs, 6);
  assert.equal(
    budget.line,
    "worst case: 2 tasks with 1-5 attempts = 6 runs; 3 recoveries per agent with cooldown from 1s up to 3.9s; " +
      "up to 3m50s in total; episode escalates after 1 error",
  );
  // Tasks: 1s + (5 × 1s + delays 30s, 60s, 60s, 60s); agents: 2 × (1s + 1.979s + 3.915s).
  assert.equal(budget.maxTimeMs, 1_000 + 215_000 + 2 * (1_000 + 1_979 + 3_915));
});

Deno.test("worstCaseBudget() caps retry delays at maxDelay", () => {
  const budget = worstCaseBudget(config(`tasks:
  - { id: a, sh: x, timeout: 1s, retry: { attempts: 4, delay: 10s, maxDelay: 15s } }
`));
  assert.equal(budget.maxTimeMs, 4 * 1_000 + 10_000 + 15_000 + 15_000);
  assert.equal(
    budget.line,
    "worst case: 1 task × 4 attempts = 4 runs; up to 44s in total; episode aborts after 5 errors",
  );
});

Deno.test("worstCaseBudget() says there is no time limit when a task has no timeout", () => {
  const budget = worstCaseBudget(config(`tasks:
  - { id: a, sh: x, timeout: 1s }
  - { id: slow, sh: x }
`));
  assert.equal(budget.maxTimeMs, Infinity);
  assert.match(budget.line, /; no time limit \(task "slow" has no timeout\);/);
});

Deno.test("worstCaseBudget() handles no tasks, no agents and agents that are never recovered", () => {
  assert.equal(
    worstCaseBudget(config("")).line,
    "worst case: no tasks; episode aborts after 5 errors",
  );
  const never = worstCaseBudget(
    config("limits: { maxRecoveryAttempts: 0 }\nagents: { a: {} }\n"),
  );
  assert.equal(never.recoveries, 0);
  assert.equal(
    never.line,
    "worst case: no tasks; agents are never recovered; episode aborts after 5 errors",
  );
  assert.equal(never.runsPerTask, 0);
});
