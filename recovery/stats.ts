import { type RecoveryLogRecord, TERMINAL_EVENTS } from "./log.ts";

/** Outcome counts of a group of finished executions. */
export interface OutcomeCounts {
  /** Finished executions. */
  total: number;
  /** Ended `succeeded`. */
  succeeded: number;
  /** Succeeded after at least one failure. */
  recovered: number;
  /** Ended `failed`. */
  failed: number;
  /** Ended `escalated`. */
  escalated: number;
  /** Ended `skipped`. */
  skipped: number;
  /** Ended `rolled_back`. */
  rolledBack: number;
}

/** Time from a task's first failure to its success. */
export interface TimeToRecover {
  /** Recovered executions measured. */
  count: number;
  /** Mean, in ms (0 when none). */
  meanMs: number;
  /** Median, in ms (0 when none). */
  p50Ms: number;
  /** 95th percentile, in ms (0 when none). */
  p95Ms: number;
  /** Longest, in ms (0 when none). */
  maxMs: number;
}

/** What {@linkcode computeStats} (and `RecoveryManager.stats()`) returns. */
export interface RecoveryStats extends OutcomeCounts {
  /** The cut-off used (epoch ms), if any. */
  since?: number;
  /** Distinct tasks seen. */
  tasks: number;
  /** Runs cut short by a crash or an abort. */
  interrupted: number;
  /** `succeeded / total`; `null` when nothing finished. */
  successRate: number | null;
  /**
   * `recovered / executions that failed at least once`; `null` when none
   * failed.
   */
  recoveryRate: number | null;
  /** Failed runs (attempts), across all executions. */
  failedAttempts: number;
  /** Outcomes by the task's strategy. */
  byStrategy: Record<string, OutcomeCounts>;
  /** Failed runs by error category. */
  byCategory: Record<string, number>;
  /** Decisions by rule (or chain step). */
  byRule: Record<string, number>;
  /** Outcomes by task, when asked for with `by: ["task"]`. */
  byTask?: Record<string, OutcomeCounts>;
  /** Finished executions by the number of runs they took. */
  attemptsHistogram: Record<string, number>;
  /** From first failure to success. */
  timeToRecover: TimeToRecover;
}

/** Options of {@linkcode computeStats}. */
export interface StatsOptions {
  /**
   * Only records at or after this time (epoch ms).
   *
   * @default {undefined} (everything)
   */
  since?: number;
  /**
   * Extra groupings: `"task"` adds `byTask`.
   *
   * @default {[]}
   */
  by?: readonly "task"[];
}

function emptyCounts(): OutcomeCounts {
  return {
    total: 0,
    succeeded: 0,
    recovered: 0,
    failed: 0,
    escalated: 0,
    skipped: 0,
    rolledBack: 0,
  };
}

function count(counts: OutcomeCounts, record: RecoveryLogRecord): void {
  counts.total++;
  switch (record.event) {
    case "succeeded":
      counts.succeeded++;
      if (record.recovered) counts.recovered++;
      break;
    case "failed":
      counts.failed++;
      break;
    case "escalated":
      counts.escalated++;
      break;
    case "skipped":
      counts.skipped++;
      break;
    case "rolled_back":
      counts.rolledBack++;
      break;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(
    sorted.length - 1,
    Math.max(0, Math.ceil(p * sorted.length) - 1),
  );
  return sorted[index]!;
}

/**
 * Folds recovery log records into statistics. Pure: the manager's
 * `stats()` reads every task's log and calls this, so the figures survive
 * restarts and can be recomputed at any time.
 *
 * @param records Log records, in any order.
 * @param options A cut-off time and extra groupings.
 * @returns The statistics.
 *
 * @example One task recovered, one escalated
 * ```ts
 * import { computeStats, type RecoveryLogRecord } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const at = 0, ts = "", v = 1 as const, execution = 1;
 * const records: RecoveryLogRecord[] = [
 *   { v, at, ts, execution, task: "a", event: "attempt_failed", category: "network" },
 *   { v, at, ts, execution, task: "a", event: "succeeded", status: "succeeded",
 *     attempts: 2, recovered: true, strategy: "auto", timeToRecoverMs: 1500 },
 *   { v, at, ts, execution, task: "b", event: "attempt_failed", category: "permanent" },
 *   { v, at, ts, execution, task: "b", event: "escalated", status: "escalated",
 *     attempts: 1, strategy: "escalate" },
 * ];
 * const stats = computeStats(records);
 * assert.equal(stats.total, 2);
 * assert.equal(stats.successRate, 0.5);
 * assert.equal(stats.recoveryRate, 0.5);
 * assert.deepEqual(stats.byCategory, { network: 1, permanent: 1 });
 * assert.equal(stats.timeToRecover.p50Ms, 1500);
 * ```
 */
export function computeStats(
  records: Iterable<RecoveryLogRecord>,
  options: StatsOptions = {},
): RecoveryStats {
  const totals = emptyCounts();
  const byStrategy: Record<string, OutcomeCounts> = {};
  const byTask: Record<string, OutcomeCounts> = {};
  const byCategory: Record<string, number> = {};
  const byRule: Record<string, number> = {};
  const attemptsHistogram: Record<string, number> = {};
  const recoverTimes: number[] = [];
  const tasks = new Set<string>();
  // Executions (task + execution number) that saw a failure, and how
  // each ended, to compute the recovery rate.
  const failedExecutions = new Set<string>();
  let interrupted = 0;
  let failedAttempts = 0;
  const since = options.since;
  for (const record of records) {
    if (since !== undefined && record.at < since) continue;
    tasks.add(record.task);
    const key = `${record.task}\u0000${record.execution}`;
    if (record.event === "attempt_failed") {
      failedAttempts++;
      failedExecutions.add(key);
      const category = record.category ?? "unknown";
      byCategory[category] = (byCategory[category] ?? 0) + 1;
      continue;
    }
    if (record.event === "interrupted") {
      interrupted++;
      continue;
    }
    if (record.rule !== undefined && record.action !== undefined) {
      byRule[record.rule] = (byRule[record.rule] ?? 0) + 1;
    }
    if (!TERMINAL_EVENTS.has(record.event)) continue;
    // Every ending but a first-time success follows a failure, even when
    // the failure itself is older than \`since\`.
    if (record.event !== "succeeded" || record.recovered) {
      failedExecutions.add(key);
    }
    count(totals, record);
    const strategy = record.strategy ?? "unknown";
    count(byStrategy[strategy] ??= emptyCounts(), record);
    if (options.by?.includes("task")) {
      count(byTask[record.task] ??= emptyCounts(), record);
    }
    const runs = String(record.attempts ?? 0);
    attemptsHistogram[runs] = (attemptsHistogram[runs] ?? 0) + 1;
    if (record.event === "succeeded" && record.timeToRecoverMs !== undefined) {
      recoverTimes.push(record.timeToRecoverMs);
    }
  }
  recoverTimes.sort((a, b) => a - b);
  const withFailure = failedExecutions.size;
  return {
    ...(since !== undefined ? { since } : {}),
    tasks: tasks.size,
    ...totals,
    interrupted,
    successRate: totals.total === 0 ? null : totals.succeeded / totals.total,
    recoveryRate: withFailure === 0 ? null : totals.recovered / withFailure,
    failedAttempts,
    byStrategy,
    byCategory,
    byRule,
    ...(options.by?.includes("task") ? { byTask } : {}),
    attemptsHistogram,
    timeToRecover: {
      count: recoverTimes.length,
      meanMs: recoverTimes.length === 0 ? 0 : Math.round(
        recoverTimes.reduce((a, b) => a + b, 0) / recoverTimes.length,
      ),
      p50Ms: percentile(recoverTimes, 0.5),
      p95Ms: percentile(recoverTimes, 0.95),
      maxMs: recoverTimes.at(-1) ?? 0,
    },
  };
}
