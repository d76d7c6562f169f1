import { join, resolve } from "node:path";
import { type Clock, formatDuration, systemClock } from "../retry/mod.ts";
import { writeJson } from "../fs/mod.ts";
import { acquireLock } from "../lock/mod.ts";
import { type CheckpointManager, openCheckpoints } from "../checkpoint/mod.ts";
import {
  commandTask,
  RecoveryManager,
  type TaskResult,
  type TaskStatus,
} from "../recovery/mod.ts";
import { type EpisodeConfig, type TaskConfig, taskOrder } from "./config.ts";
import {
  Episode,
  type EpisodeEndStatus,
  type EpisodeEvent,
} from "./episode.ts";
import { EpisodeError } from "./errors.ts";

/** Where a task of an episode run ended. */
export type RunTaskStatus = TaskStatus | "blocked" | "not_run";

/** One task's line in an {@linkcode EpisodeSummary}. */
export interface TaskSummary {
  /** The task's id (as in the YAML). */
  id: string;
  /** Where it ended; `blocked` when a task it needs did not succeed,
   * `not_run` when the episode stopped first. */
  status: RunTaskStatus;
  /** Runs made in its last execution. */
  attempts: number;
  /** How long it took this time, in ms (0 when replayed). */
  durationMs: number;
  /** Its strategy, as text. */
  strategy: string;
  /** Whether it was done in an earlier run and not redone. */
  replayed: boolean;
  /** Whether it may fail without failing the episode. */
  optional: boolean;
  /** What happened, in words. */
  outcome: string;
  /** Its open escalation, if any. */
  escalationId?: string;
}

/** What {@linkcode runEpisode} resolves with. */
export interface EpisodeSummary {
  /** The episode's id. */
  id: string;
  /** This run's id. */
  runId: string;
  /** How the episode ended. */
  status: EpisodeEndStatus;
  /** Why, in words. */
  reason?: string;
  /** The exit code the CLI uses: 0 completed, 1 failed or aborted,
   * 3 escalated, 130/143 interrupted by SIGINT/SIGTERM. */
  exitCode: number;
  /** Whether finished work from an earlier run was kept. */
  resumed: boolean;
  /** The worst-case budget line printed at start. */
  budget: string;
  /** Milliseconds this run took. */
  durationMs: number;
  /** Every task, in dependency order. */
  tasks: TaskSummary[];
  /** How many tasks ended in each status. */
  totals: Partial<Record<RunTaskStatus, number>>;
  /** Open escalations, with the command that answers each. */
  escalations: { taskId: string; id: string; resolve: string }[];
  /** Where the episode's state and events are. */
  stateDir: string;
}

/** A task starting or finishing, for progress output. */
export interface TaskProgress {
  /** `started` or `finished`. */
  event: "started" | "finished";
  /** The task's summary so far. */
  task: TaskSummary;
}

/** Options of {@linkcode runEpisode}. */
export interface RunEpisodeOptions {
  /**
   * Keep what an earlier run did: tasks that succeeded are not run again,
   * one cut short continues with its attempt count. Without it, every task
   * starts afresh (open escalations of the episode's tasks are resolved as
   * superseded).
   *
   * @default {false}
   */
  resume?: boolean;
  /**
   * Time source (timestamps, cooldowns, health intervals, retry waits).
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Called with every episode event.
   *
   * @default {undefined}
   */
  onEvent?: (event: EpisodeEvent) => void;
  /**
   * Called when a task starts and finishes.
   *
   * @default {undefined}
   */
  onTask?: (progress: TaskProgress) => void;
  /**
   * Stops the run as a signal would: no new tasks, running ones aborted,
   * status `interrupted`.
   */
  signal?: AbortSignal;
  /**
   * Handle SIGINT and SIGTERM: the first stops new work, aborts running
   * tasks, flushes state within `shutdown.gracePeriod` and ends
   * `interrupted`; a second signal (or the grace period running out)
   * calls `forceExit` at once.
   *
   * @default {false}
   */
  handleSignals?: boolean;
  /**
   * How a second signal exits.
   *
   * @default {(code) => Deno.exit(code)}
   */
  forceExit?: (code: number) => void;
  /**
   * Where tasks' stdout goes (`"stderr"` keeps ours clean for JSON).
   *
   * @default {"inherit"}
   */
  stdout?: "inherit" | "stderr" | "null";
  /**
   * Create a routine checkpoint of the run's progress after each task
   * (per agent, or under the episode's id).
   *
   * @default {true}
   */
  checkpoints?: boolean;
}

const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** The recovery task id of an episode's task. */
export function episodeTaskId(config: EpisodeConfig, taskId: string): string {
  return `${config.id}.${taskId}`;
}

/**
 * Runs an episode's tasks in dependency order (up to
 * `limits.concurrency` at once), each as a command through recovery/ with
 * its strategy, retry, files, lock and timeout, recording progress so a
 * crash or a kill is resumed with `resume: true` without redoing finished
 * tasks. Resolves with a summary; it rejects only when the episode cannot
 * start (already running, crash loop, unreadable state).
 *
 * @param config The validated config (`loadEpisode`).
 * @param options Resume, signals, clock, progress hooks.
 * @returns The summary: status, exit code, every task, escalations.
 *
 * @example Two tasks, one after the other
 * ```ts
 * import { defineEpisode, runEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const config = defineEpisode({
 *   version: 1, episode: "build", root,
 *   tasks: [
 *     { id: "compile", run: ["true"] },
 *     { id: "package", run: ["true"], needs: ["compile"] },
 *   ],
 * }, { baseDir: root });
 * const summary = await runEpisode(config, { checkpoints: false });
 * assert.equal(summary.status, "completed");
 * assert.deepEqual(summary.tasks.map((t) => t.status), ["succeeded", "succeeded"]);
 * // Run again with resume: nothing is redone.
 * const again = await runEpisode(config, { resume: true, checkpoints: false });
 * assert.ok(again.tasks.every((t) => t.replayed));
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runEpisode(
  config: EpisodeConfig,
  options: RunEpisodeOptions = {},
): Promise<EpisodeSummary> {
  const clock = options.clock ?? systemClock;
  const recovery = new RecoveryManager({ root: config.root, clock });
  const episode = new Episode(config, {
    clock,
    recovery,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  const order = taskOrder(config);
  for (const id of order) {
    const key = episodeTaskId(config, id);
    if (key.length > 128) {
      throw new RangeError(
        `Episode "${config.id}" task "${id}": "${key}" is longer than 128 characters; shorten the episode or task id`,
      );
    }
  }
  // An unhealthy agent is recovered by stopping its running tasks; the
  // runner then runs them again (resumed, attempt counts intact).
  const agentRuns = new Map<string, Set<AbortController>>();
  for (const agent of config.agents) {
    episode.registerAgent(agent.id, {
      recover: () => {
        for (const run of agentRuns.get(agent.id) ?? []) {
          run.abort(
            new EpisodeError(`Agent "${agent.id}" is unhealthy`, {
              code: "agent_unhealthy",
            }),
          );
        }
      },
    });
  }
  const started = clock.now();
  const { previous, budget } = await episode.start();
  const resumed = options.resume === true && previous !== undefined;
  let interruptedBy: "SIGINT" | "SIGTERM" | undefined;
  const forceExit = options.forceExit ?? ((code: number) => Deno.exit(code));
  const listeners: [Deno.Signal, () => void][] = [];
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onExternalAbort = () => {
    episode.stop("stopped by the caller").catch(() => {});
  };
  options.signal?.addEventListener("abort", onExternalAbort, { once: true });
  if (options.signal?.aborted) onExternalAbort();
  if (options.handleSignals && Deno.build.os !== "windows") {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const handler = () => {
        if (interruptedBy) {
          forceExit(SIGNAL_CODES[interruptedBy]);
          return;
        }
        interruptedBy = sig;
        episode.stop(sig).catch(() => {});
        graceTimer = setTimeout(
          () => forceExit(SIGNAL_CODES[sig]),
          config.shutdown.gracePeriodMs,
        );
      };
      Deno.addSignalListener(sig, handler);
      listeners.push([sig, handler]);
    }
  }
  const checkpointers = new Map<string, CheckpointManager>();
  const summaries = new Map<string, TaskSummary>();
  try {
    if (!resumed) await freshStart(config, recovery, order);
    await episode.record("tasks_planned", {
      detail: `${order.length} tasks in order ${order.join(", ")}${
        resumed ? " (resuming)" : ""
      }`,
    });
    const byId = new Map(config.tasks.map((t) => [t.id, t]));
    const done = new Map<string, TaskSummary>();
    const running = new Map<string, Promise<void>>();
    const pending = [...order];
    const runOne = async (task: TaskConfig): Promise<void> => {
      const summary = await runTask(
        config,
        task,
        recovery,
        episode,
        options,
        agentRuns,
      );
      summaries.set(task.id, summary);
      done.set(task.id, summary);
      options.onTask?.({ event: "finished", task: summary });
      if (!summary.replayed && options.checkpoints !== false) {
        await checkpoint(config, task, summaries, checkpointers).catch(
          (err) =>
            episode.record("checkpoint_failed", {
              task: task.id,
              detail: (err as Error).message,
            }),
        );
      }
    };
    while (pending.length > 0 || running.size > 0) {
      // Start every task whose needs are met, up to the concurrency limit.
      for (let i = 0; i < pending.length;) {
        if (episode.signal.aborted) break;
        if (running.size >= config.limits.concurrency) break;
        const task = byId.get(pending[i]!)!;
        const needs = task.needs.map((n) => ({
          need: byId.get(n)!,
          summary: done.get(n),
        }));
        if (needs.some((n) => n.summary === undefined)) {
          i++;
          continue;
        }
        pending.splice(i, 1);
        const unmet = needs.find((n) =>
          n.summary!.status !== "succeeded" && !n.need.optional
        );
        if (unmet) {
          const blocked: TaskSummary = {
            ...baseSummary(task),
            status: "blocked",
            outcome: `not run: needs "${unmet.need.id}", which ${
              unmet.summary!.status === "blocked"
                ? "was blocked"
                : `ended ${unmet.summary!.status}`
            }`,
          };
          summaries.set(task.id, blocked);
          done.set(task.id, blocked);
          options.onTask?.({ event: "finished", task: blocked });
          await episode.record("task_blocked", {
            task: task.id,
            detail: blocked.outcome,
          });
          continue;
        }
        options.onTask?.({
          event: "started",
          task: { ...baseSummary(task), status: "running" },
        });
        const p = runOne(task).finally(() => running.delete(task.id));
        running.set(task.id, p);
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
    for (const id of order) {
      if (!summaries.has(id)) {
        summaries.set(id, {
          ...baseSummary(byId.get(id)!),
          status: "not_run",
          outcome: "not run: the episode stopped first",
        });
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", onExternalAbort);
    for (const [sig, handler] of listeners) {
      Deno.removeSignalListener(sig, handler);
    }
    for (const cp of checkpointers.values()) await cp.close().catch(() => {});
  }
  const tasks = taskOrder(config).map((id) => summaries.get(id)!);
  let status: EpisodeEndStatus;
  let reason: string | undefined;
  const current = episode.status;
  if (
    current === "aborted" || current === "escalated" || current === "failed"
  ) {
    status = current; // the error threshold ended it
  } else if (current === "stopping") {
    status = "interrupted";
    reason = interruptedBy ?? "stopped by the caller";
  } else {
    const required = tasks.filter((t) => !t.optional);
    if (
      required.some((t) =>
        t.status === "escalated" || t.status === "awaiting_manual"
      )
    ) {
      status = "escalated";
      reason = "a task needs a person";
    } else if (required.some((t) => t.status !== "succeeded")) {
      status = "failed";
      reason = `${
        required.filter((t) => t.status !== "succeeded").map((t) => t.id)
          .join(", ")
      } did not succeed`;
    } else status = "completed";
  }
  // Ended already (the error threshold)? Then end() returns that state.
  const final = await episode.end(status, reason);
  clearTimeout(graceTimer);
  const totals: Partial<Record<RunTaskStatus, number>> = {};
  for (const t of tasks) totals[t.status] = (totals[t.status] ?? 0) + 1;
  const escalations = (await recovery.escalations({ status: "open" }))
    .filter((e) => e.taskId.startsWith(`${config.id}.`))
    .map((e) => ({
      taskId: e.taskId,
      id: e.id,
      resolve:
        `sturdy recover resolve ${e.taskId} --action retry|skip|rollback|fail`,
    }));
  const summary: EpisodeSummary = {
    id: config.id,
    runId: final.runId,
    status,
    ...(final.reason !== undefined ? { reason: final.reason } : {}),
    exitCode: status === "completed"
      ? 0
      : status === "escalated"
      ? 3
      : status === "interrupted"
      ? SIGNAL_CODES[interruptedBy ?? "SIGINT"]
      : 1,
    resumed,
    budget,
    durationMs: clock.now() - started,
    tasks,
    totals,
    escalations,
    stateDir: episode.dir,
  };
  await writeJson(join(episode.dir, "summary.json"), summary);
  return summary;
}

function strategyText(task: TaskConfig): string {
  return typeof task.strategy === "string"
    ? task.strategy
    : task.strategy.join(",");
}

function baseSummary(task: TaskConfig): TaskSummary {
  return {
    id: task.id,
    status: "pending",
    attempts: 0,
    durationMs: 0,
    strategy: strategyText(task),
    replayed: false,
    optional: task.optional,
    outcome: "",
  };
}

// A fresh run forgets earlier results of the episode's tasks; an open
// escalation is closed as superseded (its record stays in the log).
async function freshStart(
  config: EpisodeConfig,
  recovery: RecoveryManager,
  order: readonly string[],
): Promise<void> {
  for (const id of order) {
    const key = episodeTaskId(config, id);
    const open = (await recovery.escalations({ status: "open" })).find((e) =>
      e.taskId === key
    );
    if (open) {
      await recovery.resolve(key, {
        action: "fail",
        by: "episode",
        note: "superseded by a fresh run of the episode",
      });
    }
    await recovery.forget(key);
  }
}

async function runTask(
  config: EpisodeConfig,
  task: TaskConfig,
  recovery: RecoveryManager,
  episode: Episode,
  options: RunEpisodeOptions,
  agentRuns: Map<string, Set<AbortController>>,
): Promise<TaskSummary> {
  for (;;) {
    const run = new AbortController();
    const runs = task.agent
      ? agentRuns.get(task.agent) ??
        agentRuns.set(task.agent, new Set()).get(task.agent)!
      : undefined;
    runs?.add(run);
    try {
      const summary = await runTaskOnce(
        config,
        task,
        recovery,
        episode,
        options,
        AbortSignal.any([episode.signal, run.signal]),
      );
      // Stopped because its agent was unhealthy: run it again.
      if (
        summary.status === "interrupted" && run.signal.aborted &&
        !episode.signal.aborted
      ) {
        await episode.record("task_restarted", {
          task: task.id,
          ...(task.agent ? { agent: task.agent } : {}),
          detail: `agent "${task.agent}" was recovered; running the task again`,
        });
        continue;
      }
      return summary;
    } finally {
      runs?.delete(run);
    }
  }
}

async function runTaskOnce(
  config: EpisodeConfig,
  task: TaskConfig,
  recovery: RecoveryManager,
  episode: Episode,
  options: RunEpisodeOptions,
  signal: AbortSignal,
): Promise<TaskSummary> {
  const base = baseSummary(task);
  if (task.agent) episode.heartbeat(task.agent);
  const argv = task.run[0] === "deno"
    ? [Deno.execPath(), ...task.run.slice(1)]
    : [...task.run];
  let lock;
  let result: TaskResult<void>;
  try {
    if (task.lock) {
      lock = await acquireLock(task.lock, {
        root: config.root,
        timeout: Infinity,
        signal,
        purpose: `episode ${config.id} task ${task.id}`,
      });
    }
    result = await recovery.execute(
      episodeTaskId(config, task.id),
      commandTask(argv, {
        cwd: task.cwd,
        env: { ...task.env, STURDY_EPISODE: config.id },
        stdout: options.stdout ?? "inherit",
        label: task.shell ? task.run.slice(2).join(" ") : task.run.join(" "),
      }),
      {
        strategy: task.strategy,
        files: task.files.map((f) => resolve(task.cwd, f)),
        retry: {
          maxAttempts: task.retry.attempts,
          minDelay: task.retry.delayMs,
          maxDelay: task.retry.maxDelayMs,
        },
        ...(task.timeoutMs !== undefined ? { timeout: task.timeoutMs } : {}),
        signal,
      },
    );
  } catch (err) {
    if (signal.aborted) {
      await episode.record("task_interrupted", { task: task.id }).catch(
        () => {},
      );
      return {
        ...base,
        status: "interrupted",
        outcome: episode.signal.aborted
          ? "interrupted: the episode is stopping; --resume continues it"
          : "interrupted: its agent was unhealthy",
      };
    }
    const message = (err as Error).message;
    await episode.record("task_error", { task: task.id, detail: message });
    if (!task.optional) await episode.recordFailedTask(task.id, err);
    return { ...base, status: "failed", outcome: `could not run: ${message}` };
  } finally {
    await lock?.release().catch(() => {});
  }
  if (task.agent) episode.heartbeat(task.agent);
  const summary: TaskSummary = {
    ...base,
    status: result.status,
    attempts: result.attempts,
    durationMs: result.replayed ? 0 : result.durationMs,
    replayed: result.replayed,
    outcome: outcomeOf(result),
    ...(result.escalationId && result.status === "escalated"
      ? { escalationId: result.escalationId }
      : {}),
  };
  if (!result.replayed) {
    await episode.record("task_finished", {
      task: task.id,
      detail: summary.outcome,
    });
    if (result.status === "succeeded" && result.recovered) {
      await episode.recordRecoveredTask(task.id);
    } else if (
      result.status !== "succeeded" && result.status !== "skipped" &&
      !task.optional
    ) {
      await episode.recordFailedTask(
        task.id,
        new Error(
          `task ${task.id} ended ${result.status}: ${
            result.error?.message ?? ""
          }`,
        ),
      );
    }
  }
  return summary;
}

function outcomeOf(result: TaskResult<void>): string {
  const runs = `${result.attempts} run${result.attempts === 1 ? "" : "s"}`;
  const why = result.error ? `: ${result.error.message}` : "";
  if (result.replayed) {
    return `${result.status} in an earlier run; not redone`;
  }
  switch (result.status) {
    case "succeeded":
      return result.recovered
        ? `succeeded after ${runs} (recovered)`
        : `succeeded in ${formatDuration(result.durationMs)}`;
    case "rolled_back":
      return `failed after ${runs}, files rolled back${why}`;
    case "skipped":
      return `skipped after ${runs}${why}`;
    case "escalated":
      return `escalated after ${runs}${why}`;
    default:
      return `${result.status} after ${runs}${why}`;
  }
}

async function checkpoint(
  config: EpisodeConfig,
  task: TaskConfig,
  summaries: Map<string, TaskSummary>,
  checkpointers: Map<string, CheckpointManager>,
): Promise<void> {
  const agentId = task.agent ?? config.id;
  let cp = checkpointers.get(agentId);
  if (!cp) {
    cp = await openCheckpoints({ agentId, root: config.root });
    checkpointers.set(agentId, cp);
  }
  await cp.create("routine", {
    label: `after ${task.id}`,
    state: {
      episode: config.id,
      lastTask: task.id,
      tasks: Object.fromEntries(
        [...summaries.values()].map((s) => [s.id, s.status]),
      ),
    },
  });
}
