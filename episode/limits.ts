// The episode's limit math: pure functions of a policy, a count or a list of
// timestamps, and the time passed in. No I/O and no clock reads, so every
// edge is testable without waiting.

import { formatDuration } from "../retry/mod.ts";
import type {
  CooldownPolicy,
  EpisodeConfig,
  TaskConfig,
  ThresholdPolicy,
} from "./config.ts";

/**
 * The cooldown before the `n`-th recovery of an agent: geometric growth
 * from `initialMs` to `maxMs` in `steps` steps,
 * `min(max, initial × r^(n−1))` with `r = (max / initial)^(1 / steps)`,
 * rounded to whole milliseconds. From recovery `steps + 1` on it is `maxMs`.
 *
 * Edge cases: `n` below 1 (or not a number) counts as 1; with `steps` 0,
 * `initialMs` 0 or `maxMs ≤ initialMs` there is no growth and every delay
 * is `min(initialMs, maxMs)`.
 *
 * @param policy The cooldown policy.
 * @param n Which recovery this is, counting from 1.
 * @returns The delay in milliseconds.
 *
 * @example The default geometric cooldown, 1s to 60s in 6 steps
 * ```ts
 * import { cooldownDelay } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const policy = { initialMs: 1_000, maxMs: 60_000, steps: 6, resetAfterMs: 300_000 };
 * const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => cooldownDelay(policy, n));
 * assert.deepEqual(delays, [1000, 1979, 3915, 7746, 15326, 30324, 60000, 60000]);
 * ```
 */
export function cooldownDelay(policy: CooldownPolicy, n: number): number {
  const { initialMs, maxMs, steps } = policy;
  const k = Number.isFinite(n) && n > 1 ? Math.floor(n) - 1 : 0; // growths so far
  if (k === 0 || steps <= 0 || initialMs <= 0 || maxMs <= initialMs) {
    return Math.max(0, Math.min(initialMs, maxMs));
  }
  if (k >= steps) return maxMs;
  // initial × r^k with r = (max/initial)^(1/steps), as one power so that the
  // last step lands on max exactly instead of drifting past it.
  return Math.min(
    maxMs,
    Math.round(initialMs * (maxMs / initialMs) ** (k / steps)),
  );
}

/**
 * Whether the error threshold is reached: at least `count` of `errorTimes`
 * fall within the window ending at `now` (an error at `t` counts while
 * `now − t < windowMs`). Without a window every error of the episode counts.
 * A `count` below 1 counts as 1.
 *
 * @param policy The threshold policy.
 * @param errorTimes When errors happened, in milliseconds (any order).
 * @param now The current time, on the same clock.
 * @returns `true` when the episode should stop or escalate.
 *
 * @example Five errors within a minute
 * ```ts
 * import { thresholdReached } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const policy = { count: 5, windowMs: 60_000 };
 * const times = [0, 10_000, 20_000, 30_000, 40_000];
 * assert.equal(thresholdReached(policy, times, 50_000), true);
 * assert.equal(thresholdReached(policy, times, 60_000), false); // the first slid out
 * ```
 */
export function thresholdReached(
  policy: ThresholdPolicy,
  errorTimes: readonly number[],
  now: number,
): boolean {
  return pruneErrorTimes(policy, errorTimes, now).length >=
    Math.max(1, policy.count);
}

/**
 * The error times that still count toward the threshold at `now`, in their
 * original order: those within the window. Without a window nothing expires
 * and a copy of the list is returned.
 *
 * @param policy The threshold policy.
 * @param errorTimes When errors happened, in milliseconds.
 * @param now The current time, on the same clock.
 * @returns The times to keep.
 *
 * @example Drop errors older than the window
 * ```ts
 * import { pruneErrorTimes } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const policy = { count: 5, windowMs: 60_000 };
 * assert.deepEqual(pruneErrorTimes(policy, [0, 30_000, 90_000], 100_000), [90_000]);
 * assert.deepEqual(pruneErrorTimes({ count: 5 }, [0, 30_000], 100_000), [0, 30_000]);
 * ```
 */
export function pruneErrorTimes(
  policy: ThresholdPolicy,
  errorTimes: readonly number[],
  now: number,
): number[] {
  const { windowMs } = policy;
  return windowMs === undefined
    ? [...errorTimes]
    : errorTimes.filter((time) => now - time < windowMs);
}

/**
 * Whether an agent has been healthy long enough (`resetAfterMs`) for its
 * cooldown and recovery count to start over.
 *
 * @param policy The cooldown policy.
 * @param healthySinceMs When the agent last became healthy, or `undefined`
 * if it is not healthy now.
 * @param now The current time, on the same clock.
 * @returns `true` when the cooldown should reset.
 *
 * @example Reset after five healthy minutes
 * ```ts
 * import { shouldResetCooldown } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const policy = { initialMs: 1_000, maxMs: 60_000, steps: 6, resetAfterMs: 300_000 };
 * assert.equal(shouldResetCooldown(policy, 0, 299_999), false);
 * assert.equal(shouldResetCooldown(policy, 0, 300_000), true);
 * assert.equal(shouldResetCooldown(policy, undefined, 300_000), false);
 * ```
 */
export function shouldResetCooldown(
  policy: CooldownPolicy,
  healthySinceMs: number | undefined,
  now: number,
): boolean {
  return healthySinceMs !== undefined &&
    now - healthySinceMs >= policy.resetAfterMs;
}

/** The worst case an episode's limits allow, from {@linkcode worstCaseBudget}. */
export interface EpisodeBudget {
  /** How many tasks the episode declares. */
  readonly tasks: number;
  /** The most runs any one task may take (its retry attempts); 0 without tasks. */
  readonly runsPerTask: number;
  /** The most runs of all tasks together. */
  readonly runs: number;
  /** The most recoveries of each agent (`maxRecoveryAttempts`). */
  readonly recoveries: number;
  /**
   * An upper bound on the episode's duration, in milliseconds: every run of
   * every task one after another, each taking its full timeout, the retry
   * delays between them (doubling, capped at `maxDelay`), plus each agent's
   * recovery cooldowns. Concurrency only shortens it. `Infinity` when a
   * task has no timeout.
   */
  readonly maxTimeMs: number;
  /**
   * The budget as one line to print at start, e.g. `worst case: 3 tasks ×
   * 3 attempts = 9 runs; 3 recoveries per agent with a 1m cooldown; up to
   * 12m in total; episode aborts after 5 errors in 1m`.
   */
  readonly line: string;
}

/**
 * The worst case the configuration allows, so a person can see before the
 * start what "3 attempts" and "3 recoveries" add up to (the warning OTP's
 * restart intensity lacks).
 *
 * @param config A validated configuration.
 * @returns The numbers and a printable line.
 *
 * @example Print the budget line
 * ```ts
 * import { parseEpisode, worstCaseBudget } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const config = parseEpisode(
 *   `version: 1
 * episode: demo
 * limits: { errorThreshold: { count: 5, window: 60s }, taskRetryDelay: 1s }
 * agents: { writer: {} }
 * tasks:
 *   - { id: a, sh: ./a, timeout: 10s }
 *   - { id: b, sh: ./b, timeout: 10s }
 * `,
 *   { baseDir: "/srv/demo" },
 * );
 * const budget = worstCaseBudget(config);
 * assert.equal(budget.runs, 6);
 * assert.equal(
 *   budget.line,
 *   "worst case: 2 tasks × 3 attempts = 6 runs; 3 recoveries per agent with a 1m cooldown; " +
 *     "up to 4m6s in total; episode aborts after 5 errors in 1m",
 * );
 * ```
 */
export function worstCaseBudget(config: EpisodeConfig): EpisodeBudget {
  const { tasks, agents, limits } = config;
  const attempts = tasks.map((task) => task.retry.attempts);
  const runs = attempts.reduce((sum, n) => sum + n, 0);
  const runsPerTask = Math.max(0, ...attempts);
  const recoveries = limits.maxRecoveryAttempts;
  let cooldowns = 0;
  for (let n = 1; n <= recoveries; n++) {
    cooldowns += cooldownDelay(limits.recoveryCooldown, n);
  }
  const maxTimeMs = tasks.reduce((sum, task) => sum + taskTime(task), 0) +
    agents.length * cooldowns;

  const parts: string[] = [];
  if (tasks.length === 0) parts.push("no tasks");
  else {
    const fewest = Math.min(...attempts);
    const each = fewest === runsPerTask
      ? `× ${plural(runsPerTask, "attempt")}`
      : `with ${fewest}-${runsPerTask} attempts`;
    parts.push(
      `${plural(tasks.length, "task")} ${each} = ${plural(runs, "run")}`,
    );
  }
  if (agents.length > 0) {
    const cooldown = limits.recoveryCooldown;
    const first = cooldownDelay(cooldown, 1);
    const last = cooldownDelay(cooldown, recoveries);
    parts.push(
      recoveries === 0
        ? "agents are never recovered"
        : `${plural(recoveries, "recovery", "recoveries")} per agent with ${
          first === last
            ? `a ${formatDuration(first)} cooldown`
            : `cooldown from ${formatDuration(first)} up to ${
              formatDuration(last)
            }`
        }`,
    );
  }
  if (tasks.length > 0) {
    const unbounded = tasks.find((task) => task.timeoutMs === undefined);
    parts.push(
      unbounded === undefined
        ? `up to ${formatDuration(maxTimeMs)} in total`
        : `no time limit (task "${unbounded.id}" has no timeout)`,
    );
  }
  const { count, windowMs } = limits.errorThreshold;
  parts.push(
    `episode ${limits.onThreshold === "abort" ? "aborts" : "escalates"} after ${
      plural(count, "error")
    }${windowMs === undefined ? "" : ` in ${formatDuration(windowMs)}`}`,
  );
  return {
    tasks: tasks.length,
    runsPerTask,
    runs,
    recoveries,
    maxTimeMs,
    line: `worst case: ${parts.join("; ")}`,
  };
}

/** Every run at its full timeout plus the doubling retry delays between. */
function taskTime(task: TaskConfig): number {
  if (task.timeoutMs === undefined) return Infinity;
  const { attempts, delayMs, maxDelayMs } = task.retry;
  let total = attempts * task.timeoutMs;
  for (let i = 0; i < attempts - 1; i++) {
    total += Math.min(maxDelayMs, delayMs * 2 ** i);
  }
  return total;
}

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}
