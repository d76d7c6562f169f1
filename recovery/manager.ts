import {
  classifyError,
  type Clock,
  formatDuration,
  systemClock,
  validateName,
} from "../retry/mod.ts";
import type { ResolvedBackoff } from "../retry/backoff.ts";
import {
  appendJsonl,
  ensureDir,
  isNotFound,
  listDir,
  readJson,
  readJsonl,
  remove,
  writeJson,
} from "../fs/mod.ts";
import { inspectLock, type Lock, tryAcquireLock } from "../lock/mod.ts";
import type { RetentionPlan } from "../checkpoint/mod.ts";
import { decideRecovery, type Decision } from "./decide.ts";
import { RecoveryError, TaskFailedError } from "./errors.ts";
import {
  type Escalation,
  type Resolution,
  RESOLUTION_ACTIONS,
  type ResolutionAction,
} from "./escalation.ts";
import { type RecoveryLogRecord, TERMINAL_EVENTS } from "./log.ts";
import {
  type ExecuteOptions,
  type RecoveryManagerOptions,
  type RecoveryRetryOptions,
  resolveRetryPolicy,
  type TaskContext,
} from "./options.ts";
import { redactSecrets } from "./redact.ts";
import { DEFAULT_RULES, type RecoveryRule, validateRules } from "./rules.ts";
import {
  computeStats,
  type RecoveryStats,
  type StatsOptions,
} from "./stats.ts";
import {
  type DecisionRecord,
  type ErrorRecord,
  RECOVERY_ACTIONS,
  type Strategy,
  TASK_STATUSES,
  type TaskResult,
  type TaskState,
  type TaskStatus,
} from "./types.ts";
import { hasSnapshot, restoreSnapshot, takeSnapshot } from "./_snapshot.ts";
import { type RecoveryPaths, recoveryPaths } from "./_paths.ts";

const TASK_FORMAT = "sturdy.task/1";
const ESCALATION_FORMAT = "sturdy.escalation/1";
const MAX_DECISIONS = 50;
const FINAL: ReadonlySet<TaskStatus> = new Set([
  "succeeded",
  "skipped",
  "failed",
  "rolled_back",
  "escalated",
]);

/** Options of {@linkcode RecoveryManager.resolve}. */
export interface ResolveOptions {
  /** What to do with the task. */
  action: ResolutionAction;
  /**
   * A note for the record (redacted).
   *
   * @default {undefined}
   */
  note?: string;
  /**
   * Who resolved it.
   *
   * @default {"api"}
   */
  by?: string;
}

/** One item of a {@linkcode CleanupPlan}. */
export interface CleanupItem {
  /** The file or folder. */
  path: string;
  /** The task it belongs to. */
  taskId: string;
  /** Why it goes or stays. */
  reason: string;
}

/** What {@linkcode RecoveryManager.cleanup} removed (or would remove). */
export interface CleanupPlan {
  /** Whether anything was actually removed. */
  dryRun: boolean;
  /** Removed (or to be removed, in a dry run). */
  remove: CleanupItem[];
  /** Kept, with the reason. */
  keep: CleanupItem[];
  /** The retention plans of the checkpoint managers given. */
  checkpoints: RetentionPlan[];
}

/** Options of {@linkcode RecoveryManager.cleanup}. */
export interface CleanupOptions {
  /** Remove finished tasks whose last change is older than this (ms). */
  olderThan: number;
  /**
   * Only report what would be removed.
   *
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Checkpoint managers whose retention runs too (tasks' `pre_operation`
   * checkpoints are trashed once their operations completed; see
   * checkpoint/'s retention). Their plans are in `checkpoints`.
   *
   * @default {[]}
   */
  checkpoints?: readonly {
    prune(options: { dryRun?: boolean }): Promise<RetentionPlan>;
  }[];
}

interface Run<T> {
  taskId: string;
  fn: (ctx: TaskContext) => T | Promise<T>;
  options: ExecuteOptions<T>;
  strategy: Strategy;
  strategyText: string;
  rules: readonly RecoveryRule[];
  policy: ResolvedBackoff;
  state: TaskState;
  lastThrown?: unknown;
  previousDelay?: number;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function nameOf(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

function strategyText(strategy: Strategy): string {
  return typeof strategy === "string" ? strategy : strategy.join(",");
}

function jsonOrUndefined(value: unknown): unknown {
  if (value === undefined) return undefined;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Runs tasks under recovery strategies. Each task has a persisted state
 * (`<root>/recovery/tasks/<task>.json`, rewritten atomically on every
 * transition), a JSONL log (`logs/<task>.jsonl`) and, when a person is
 * needed, an escalation (`escalations/<task>.json`). A process killed
 * mid-task resumes at the next {@linkcode RecoveryManager.execute} with
 * its attempt count intact, and a task that already succeeded is never
 * run again.
 *
 * @example Retry a flaky task, then read the statistics
 * ```ts
 * import { RecoveryManager } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const recovery = new RecoveryManager({ root, retry: { minDelay: 1 } });
 * let calls = 0;
 * const result = await recovery.execute("fetch-prices", () => {
 *   if (++calls < 3) throw new TypeError("fetch failed");
 *   return 42;
 * }, { strategy: ["retry", "escalate"] });
 * assert.equal(result.status, "succeeded");
 * assert.equal(result.value, 42);
 * assert.equal(result.attempts, 3);
 * assert.equal((await recovery.stats()).recovered, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class RecoveryManager {
  readonly #root: string;
  readonly #paths: RecoveryPaths;
  readonly #rules: readonly RecoveryRule[];
  readonly #retry: RecoveryRetryOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #escalateHook: RecoveryManagerOptions["escalate"];
  readonly #onEvent: RecoveryManagerOptions["onEvent"];
  readonly #redact: (text: string) => string;
  readonly #manualTimeout: number;
  readonly #lock: boolean;
  readonly #abortGrace: number;
  #dirs: Promise<void> | undefined;

  /**
   * Creates a manager. Nothing is read or written until a method runs.
   *
   * @param options Root, rules, retry policy, hooks, clock.
   * @throws {RecoveryError} Code `invalid_rule` for a bad rule table, and
   *   `invalid_option` for a bad retry policy or timeout.
   */
  constructor(options: RecoveryManagerOptions = {}) {
    this.#root = options.root ?? ".sturdy";
    this.#paths = recoveryPaths(this.#root);
    this.#rules = validateRules(options.rules ?? DEFAULT_RULES);
    this.#retry = options.retry ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#escalateHook = options.escalate;
    this.#onEvent = options.onEvent;
    this.#redact = options.redact ?? redactSecrets;
    this.#manualTimeout = options.manualTimeout ?? 86_400_000;
    this.#lock = options.lock ?? true;
    this.#abortGrace = options.abortGrace ?? 5_000;
    if (!(this.#manualTimeout > 0)) {
      throw new RecoveryError(
        `Invalid manualTimeout ${this.#manualTimeout}: give a number of ms > 0`,
        { code: "invalid_option", operation: "RecoveryManager" },
      );
    }
    this.#policy({}); // validates the retry policy now
  }

  // Creates the folders once per manager; a failure is retried next time.
  #ensureDirs(): Promise<void> {
    this.#dirs ??= (async () => {
      const p = this.#paths;
      for (const dir of [p.tasks, p.logs, p.escalations, p.snapshots]) {
        await ensureDir(dir);
      }
    })().catch((err) => {
      this.#dirs = undefined;
      throw err;
    });
    return this.#dirs;
  }

  /** The Sturdy root this manager works in. */
  get root(): string {
    return this.#root;
  }

  #policy(override: RecoveryRetryOptions): ResolvedBackoff {
    try {
      return resolveRetryPolicy({ ...this.#retry, ...override }, this.#random);
    } catch (err) {
      throw new RecoveryError(
        `Invalid retry policy: ${messageOf(err)}`,
        { code: "invalid_option", operation: "RecoveryManager", cause: err },
      );
    }
  }

  // ------------------------------------------------------------ execute

  /**
   * Runs `fn` as task `taskId` under a strategy. A failed run is handled
   * as the strategy says (retry with backoff, roll back the `files` and
   * the `checkpoint`, skip, ask a person, escalate), and every decision is
   * logged. Resolves with the {@linkcode TaskResult} however the task
   * ends; it rejects only when `signal` aborts (with `signal.reason`, the
   * task left `interrupted`), for bad arguments, or when the manager
   * cannot record state.
   *
   * A task found `succeeded` or `skipped` is not run again: its recorded
   * result is returned (`replayed: true`). One found mid-way (a crash or
   * an abort) continues with its attempt count intact.
   *
   * @param taskId The task's id (`[A-Za-z0-9._-]`, 1-128 characters).
   * @param fn The work; it gets a {@linkcode TaskContext}.
   * @param options Strategy, files, checkpoint, fallback, signal.
   * @returns How the task ended.
   * @throws {RecoveryError} Code `task_busy` when another process runs the
   *   task, `invalid_option` for a bad strategy.
   *
   * @example Roll files back when a migration fails
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const file = `${root}/config.json`;
   * await Deno.writeTextFile(file, '{"v":1}');
   * const recovery = new RecoveryManager({ root });
   * const result = await recovery.execute("migrate", async () => {
   *   await Deno.writeTextFile(file, '{"v":2,');
   *   throw new Error("migration step 2 failed");
   * }, { strategy: "rollback", files: [file] });
   * assert.equal(result.status, "rolled_back");
   * assert.equal(await Deno.readTextFile(file), '{"v":1}');
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async execute<T>(
    taskId: string,
    fn: (ctx: TaskContext) => T | Promise<T>,
    options: ExecuteOptions<T> = {},
  ): Promise<TaskResult<T>> {
    validateName(taskId, "task id");
    const strategy = this.#checkStrategy(options.strategy ?? "auto", options);
    const rules = options.rules ? validateRules(options.rules) : this.#rules;
    const policy = this.#policy(options.retry ?? {});
    if (
      options.timeout !== undefined &&
      !(options.timeout > 0 && Number.isFinite(options.timeout))
    ) {
      throw new RecoveryError(
        `Invalid timeout ${options.timeout} for task "${taskId}": give a number of ms > 0`,
        { code: "invalid_option", taskId, operation: "execute" },
      );
    }
    options.signal?.throwIfAborted();
    await this.#ensureDirs();
    const lock = await this.#acquire(taskId, "execute");
    try {
      return await this.#execute({
        taskId,
        fn,
        options,
        strategy,
        strategyText: strategyText(strategy),
        rules,
        policy,
        state: undefined as unknown as TaskState,
      });
    } finally {
      await lock?.release();
    }
  }

  #checkStrategy<T>(strategy: Strategy, options: ExecuteOptions<T>): Strategy {
    const steps = strategy === "auto"
      ? []
      : typeof strategy === "string"
      ? [strategy]
      : Array.isArray(strategy)
      ? strategy
      : [undefined];
    if (
      (strategy !== "auto" && steps.length === 0) ||
      steps.some((s) => !RECOVERY_ACTIONS.includes(s as never))
    ) {
      throw new RecoveryError(
        `Invalid strategy ${JSON.stringify(strategy)}: use "auto", one of ${
          RECOVERY_ACTIONS.join(", ")
        }, or a list of them such as ["retry", "rollback", "escalate"]`,
        { code: "invalid_option", operation: "execute" },
      );
    }
    if (
      steps.includes("rollback") && !options.files?.length &&
      !options.checkpoint
    ) {
      throw new RecoveryError(
        `Strategy ${
          JSON.stringify(strategy)
        } rolls back, but nothing is given to roll back: pass \`files\` or a \`checkpoint\` manager`,
        { code: "invalid_option", operation: "execute" },
      );
    }
    return typeof strategy === "string"
      ? strategy
      : Object.freeze([...strategy]);
  }

  async #acquire(taskId: string, operation: string): Promise<Lock | null> {
    if (!this.#lock) return null;
    const options = {
      root: this.#paths.dir,
      purpose: `recovery task ${taskId}`,
    };
    let lock = await tryAcquireLock(taskId, options);
    if (lock) return lock;
    // A lock a killed process left half-made (no owner record yet) turns
    // stale after lock/'s short grace: wait that out; a live holder, no.
    const info = await inspectLock(taskId, { root: this.#paths.dir });
    if (info?.holder !== "alive") {
      lock = await tryAcquireLock(taskId, { ...options, timeout: 5_000 });
      if (lock) return lock;
    }
    throw new RecoveryError(
      `Cannot ${operation} task "${taskId}": another process is running it (lock ${this.#paths.dir}/locks/${taskId}.lock); wait for it, or check it with "sturdy lock status"`,
      { code: "task_busy", taskId, operation },
    );
  }

  async #execute<T>(run: Run<T>): Promise<TaskResult<T>> {
    const { taskId, options } = run;
    const found = await this.loadTaskState(taskId);
    const now = this.#clock.now();
    let resumeManual: Escalation | undefined;
    if (found) {
      run.state = found;
      if (FINAL.has(found.status)) await this.#ensureLogged(run);
      if (found.status === "succeeded" || found.status === "skipped") {
        await this.#dropSnapshot(run); // a crash may have kept it
        return this.#replay(run);
      }
      if (found.status === "escalated" || found.status === "awaiting_manual") {
        const esc = await this.#readEscalation(taskId);
        if (esc?.status === "resolved" && esc.resolution) {
          const applied = await this.#applyResolution(run, esc);
          if (applied !== "run") return this.#result(run, false);
          // A retry resolution: a manual wait continues its execution; an
          // escalated task starts a fresh one.
          if (found.status === "escalated") this.#fresh(run, now);
        } else if (found.status === "escalated") {
          return this.#replay(run);
        } else {
          resumeManual = esc;
        }
      } else if (
        found.status === "failed" || found.status === "rolled_back"
      ) {
        if (options.rerun === false) return this.#replay(run);
        this.#fresh(run, now);
      } else if (found.status === "interrupted" && options.rerun === false) {
        return this.#replay(run);
      }
    } else {
      this.#fresh(run, now);
    }
    const state = run.state;
    if (state.attemptsStarted === 0 && state.status === "pending") {
      await this.#log(run, {
        event: "task_started",
        strategy: run.strategyText,
      });
    } else if (state.status !== "pending") {
      // Found mid-way. A `running` state means the process running it died:
      // that run was cut short and is not charged.
      const crashed = state.status === "running";
      await this.#log(run, {
        event: "task_resumed",
        strategy: run.strategyText,
        note: `found ${state.status}${
          crashed ? ` (run ${state.attemptsStarted} was cut short)` : ""
        }; ${state.attemptsMade} run${
          state.attemptsMade === 1 ? "" : "s"
        } made so far`,
      });
      if (crashed) {
        await this.#log(run, {
          event: "interrupted",
          attempt: state.attemptsStarted,
          note: "the process running it stopped",
        });
      }
    }
    await this.#prepare(run);
    try {
      return await this.#loop(run, resumeManual);
    } catch (err) {
      if (options.signal?.aborted && err === options.signal.reason) {
        await this.#interrupt(run);
      }
      throw err;
    }
  }

  // The state is saved before the terminal log line; a process killed in
  // between leaves the line out. The next execute writes it, so statistics
  // still count that ending exactly once.
  async #ensureLogged<T>(run: Run<T>): Promise<void> {
    const { state } = run;
    const log = await this.readLog(run.taskId);
    if (
      log.some((r) =>
        r.execution === state.executions && r.event === state.status
      )
    ) return;
    await this.#log(run, {
      event: state.status as
        | "succeeded"
        | "failed"
        | "skipped"
        | "rolled_back"
        | "escalated",
      status: state.status,
      attempts: state.attemptsMade,
      strategy: strategyText(state.strategy),
      recovered: state.status === "succeeded" &&
        state.firstFailureAt !== undefined,
      durationMs: (state.finishedAt ?? state.updatedAt) - state.startedAt,
      note: "recorded late: the process stopped before logging it",
    });
  }

  #fresh<T>(run: Run<T>, now: number): void {
    const executions = (run.state?.executions ?? 0) + 1;
    run.state = {
      format: TASK_FORMAT,
      taskId: run.taskId,
      status: "pending",
      strategy: run.strategy,
      attemptsStarted: 0,
      attemptsMade: 0,
      executions,
      step: 0,
      startedAt: now,
      updatedAt: now,
      decisions: [],
    };
  }

  // Snapshot and checkpoint before the first run. The state records each
  // as done only once it is durable, so a crash in between redoes it from
  // files no run has touched yet.
  async #prepare<T>(run: Run<T>): Promise<void> {
    const { state, options, taskId } = run;
    const files = options.files ?? [];
    if (files.length > 0 && !state.snapshot) {
      await takeSnapshot(
        this.#paths.snapshot(taskId),
        taskId,
        files,
        this.#clock.now(),
      );
      state.snapshot = true;
      await this.#save(run);
    } else if (files.length > 0 && state.snapshot) {
      // Kept from an earlier process; it must still be complete.
      if (!await hasSnapshot(this.#paths.snapshot(taskId))) {
        throw new RecoveryError(
          `Task "${taskId}" was snapshotted for rollback, but ${
            this.#paths.snapshot(taskId)
          } has no manifest any more; restore the files by hand or remove ${
            this.#paths.task(taskId)
          } to start over`,
          {
            code: "rollback_failed",
            taskId,
            path: this.#paths.snapshot(taskId),
          },
        );
      }
    }
    if (options.checkpoint && state.operationId === undefined) {
      const op = await options.checkpoint.beginOperation(taskId);
      state.operationId = op.id;
      state.checkpointId = op.ref.id;
      await this.#save(run);
    }
  }

  async #loop<T>(
    run: Run<T>,
    resumeManual: Escalation | undefined,
  ): Promise<TaskResult<T>> {
    const { state, options } = run;
    const signal = options.signal;
    if (resumeManual) {
      const err = errorFrom(state.lastError);
      run.lastThrown = err;
      const next = await this.#manualStep(run, resumeManual, err);
      if (next === "continue") {
        const decided = await this.#decide(run, err, false);
        if (decided !== "run") return decided;
      } else if (next !== "run") return next;
    } else if (state.status === "waiting_retry" && state.nextAttemptAt) {
      const wait = state.nextAttemptAt - this.#clock.now();
      if (wait > 0) await this.#clock.sleep(wait, signal);
    }
    for (;;) {
      const attempt = state.attemptsMade + 1;
      state.attemptsStarted++;
      state.status = "running";
      delete state.nextAttemptAt;
      await this.#save(run);
      await this.#log(run, { event: "attempt_started", attempt });
      const started = this.#clock.now();
      let value: T;
      try {
        value = await this.#runOnce(run, attempt);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const durationMs = this.#clock.now() - started;
        const outcome = await this.#failed(run, err, attempt, durationMs);
        if (outcome === "run") continue;
        return outcome;
      }
      return await this.#succeeded(run, value, this.#clock.now() - started);
    }
  }

  async #runOnce<T>(run: Run<T>, attempt: number): Promise<T> {
    const { state, options, taskId } = run;
    const controller = new AbortController();
    const signals = [controller.signal];
    if (options.signal) signals.push(options.signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = options.timeout;
    const timedOut = timeout === undefined ? undefined : new Promise<never>(
      (_, reject) => {
        timer = setTimeout(() => {
          const err = new DOMException(
            `Task "${taskId}" run ${attempt} timed out after ${
              formatDuration(timeout)
            }`,
            "TimeoutError",
          );
          controller.abort(err);
          reject(err);
        }, timeout);
      },
    );
    const ctx: TaskContext = {
      taskId,
      attempt,
      attemptsStarted: state.attemptsStarted,
      previousProgress: state.progress,
      signal: signals.length === 1
        ? controller.signal
        : AbortSignal.any(signals),
      progress: async (details: unknown) => {
        state.progress = jsonOrUndefined(details);
        await this.#save(run);
      },
    };
    const aborted = options.signal
      ? new Promise<never>((_, reject) => {
        const onAbort = () => reject(options.signal!.reason);
        if (options.signal!.aborted) onAbort();
        else options.signal!.addEventListener("abort", onAbort, { once: true });
        controller.signal.addEventListener(
          "abort",
          () => options.signal!.removeEventListener("abort", onAbort),
          { once: true },
        );
      })
      : undefined;
    const work = Promise.resolve().then(() => run.fn(ctx));
    try {
      const racers: Promise<T>[] = [work];
      if (timedOut) racers.push(timedOut);
      if (aborted) racers.push(aborted);
      if (racers.length > 1) {
        // The losers are settled later; keep them from being unhandled.
        for (const p of racers) p.catch(() => {});
      }
      return await (racers.length === 1 ? work : Promise.race(racers));
    } catch (err) {
      // Told to stop (a timeout, an abort): give the run time to stop, so
      // no two runs of a task overlap and no command outlives the call.
      await settleWithin(work, this.#abortGrace);
      throw err;
    } finally {
      clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort("run ended");
    }
  }

  async #succeeded<T>(
    run: Run<T>,
    value: T,
    durationMs: number,
  ): Promise<TaskResult<T>> {
    const { state } = run;
    state.attemptsMade++;
    state.result = jsonOrUndefined(value);
    const recovered = state.firstFailureAt !== undefined;
    const now = this.#clock.now();
    await this.#finish(run, "succeeded", {
      durationMs,
      recovered,
      ...(recovered ? { timeToRecoverMs: now - state.firstFailureAt! } : {}),
    });
    const result = this.#result(run, false);
    result.value = value;
    return result;
  }

  async #failed<T>(
    run: Run<T>,
    err: unknown,
    attempt: number,
    durationMs: number,
  ): Promise<TaskResult<T> | "run"> {
    const { state } = run;
    run.lastThrown = err;
    state.attemptsMade++;
    const record = this.#errorRecord(err);
    state.lastError = record;
    state.firstFailureAt ??= this.#clock.now();
    await this.#log(run, {
      event: "attempt_failed",
      attempt,
      category: record.category,
      error: `${record.name}: ${record.message}`,
      durationMs,
    });
    return await this.#decide(run, err, false);
  }

  // Walks the strategy for one failure until it says run again or ends
  // the task. A rollback happens in place and the walk goes on.
  async #decide<T>(
    run: Run<T>,
    err: unknown,
    afterRollback: boolean,
  ): Promise<TaskResult<T> | "run"> {
    const { state, options } = run;
    const hasRollbackSource = (options.files?.length ?? 0) > 0 ||
      options.checkpoint !== undefined;
    for (;;) {
      const d = decideNext(run, err);
      state.step = d.step;
      if (run.strategy === "auto") state.rule = d.rule;
      if (d.action === "stop") {
        await this.#record(run, d.action, d.rule, d.reason, d.category);
        return await this.#end(run, afterRollback ? "rolled_back" : "failed");
      }
      await this.#record(
        run,
        d.action,
        d.rule,
        d.reason,
        d.category,
        d.delayMs,
      );
      switch (d.action) {
        case "retry": {
          const delay = d.delayMs ?? 0;
          run.previousDelay = delay;
          state.status = "waiting_retry";
          state.nextAttemptAt = this.#clock.now() + delay;
          await this.#save(run);
          await this.#log(run, {
            event: "retry_scheduled",
            attempt: state.attemptsMade + 1,
            delayMs: delay,
          });
          await this.#clock.sleep(delay, options.signal);
          return "run";
        }
        case "rollback": {
          state.step = d.step + 1;
          if (!hasRollbackSource) {
            // "auto" picked rollback but the task named nothing to restore.
            await this.#log(run, {
              event: "rollback_done",
              note:
                "nothing to roll back: the task names no files and no checkpoint",
            });
            continue;
          }
          const rolledBack = await this.#rollback(run, err);
          if (rolledBack !== true) return rolledBack;
          afterRollback = true;
          continue;
        }
        case "skip":
          return await this.#end(run, "skipped");
        case "fail":
          return await this.#end(run, "failed");
        case "escalate": {
          await this.#writeEscalation(run, "escalation");
          return await this.#end(run, "escalated");
        }
        case "manual": {
          const esc = await this.#writeEscalation(run, "manual");
          const next = await this.#manualStep(run, esc, err);
          if (next !== "continue") return next;
          continue;
        }
      }
    }
  }

  async #record<T>(
    run: Run<T>,
    action: DecisionRecord["action"] | "stop",
    rule: string,
    reason: string,
    category: DecisionRecord["category"],
    delayMs?: number,
  ): Promise<void> {
    const { state } = run;
    if (action !== "stop") {
      state.decisions.push({
        at: this.#clock.now(),
        attempt: state.attemptsMade,
        action,
        rule,
        reason,
        category,
        error: state.lastError?.message ?? "",
        ...(delayMs !== undefined ? { delayMs } : {}),
      });
      if (state.decisions.length > MAX_DECISIONS) {
        state.decisions.splice(0, state.decisions.length - MAX_DECISIONS);
      }
    }
    await this.#log(run, {
      event: "decision",
      ...(action !== "stop" ? { action } : {}),
      rule,
      reason,
      category,
      attempt: state.attemptsMade,
      ...(delayMs !== undefined ? { delayMs } : {}),
    });
  }

  // Returns true once rolled back; a failed rollback escalates.
  async #rollback<T>(
    run: Run<T>,
    err: unknown,
  ): Promise<true | TaskResult<T>> {
    const { state, options, taskId } = run;
    await this.#log(run, { event: "rollback_started" });
    try {
      const restored: string[] = [];
      if ((options.files?.length ?? 0) > 0 || state.snapshot) {
        restored.push(
          ...await restoreSnapshot(this.#paths.snapshot(taskId), taskId),
        );
      }
      if (options.checkpoint && state.checkpointId) {
        await options.checkpoint.restore(state.checkpointId);
        restored.push(`checkpoint ${state.checkpointId}`);
      }
      await this.#log(run, {
        event: "rollback_done",
        note: `restored ${restored.length} item${
          restored.length === 1 ? "" : "s"
        }: ${restored.join(", ")}`,
      });
      return true;
    } catch (rollbackError) {
      const both = new AggregateError(
        [err, rollbackError],
        "the task and its rollback failed",
      );
      run.lastThrown = both;
      await this.#log(run, {
        event: "rollback_failed",
        error: `${nameOf(rollbackError)}: ${
          this.#redact(messageOf(rollbackError))
        }`,
      });
      state.lastError = {
        ...this.#errorRecord(err),
        causeChain: [
          ...this.#errorRecord(err).causeChain,
          `rollback failed: ${this.#redact(messageOf(rollbackError))}`,
        ],
      };
      await this.#writeEscalation(run, "escalation", undefined, rollbackError);
      return await this.#end(run, "escalated");
    }
  }

  // A manual step: wait for the answer; on a timeout, go on with the
  // chain, and escalate when nothing follows.
  async #manualStep<T>(
    run: Run<T>,
    esc: Escalation | undefined,
    err: unknown,
  ): Promise<TaskResult<T> | "run" | "continue"> {
    const { state } = run;
    const next = await this.#manual(run, esc);
    if (next !== "timeout") return next;
    state.step++;
    const more = decideNext(run, err);
    if (more.action !== "stop") return "continue";
    await this.#writeEscalation(run, "escalation");
    return await this.#end(run, "escalated");
  }

  // Waits for a person's answer to a manual escalation, then applies it.
  async #manual<T>(
    run: Run<T>,
    esc: Escalation | undefined,
  ): Promise<TaskResult<T> | "run" | "timeout"> {
    const { state, options, taskId } = run;
    state.status = "awaiting_manual";
    await this.#save(run);
    const deadline = (esc?.createdAt ?? this.#clock.now()) +
      this.#manualTimeout;
    let delay = 250;
    for (;;) {
      const current = await this.#readEscalation(taskId);
      if (current?.status === "resolved" && current.resolution) {
        const applied = await this.#applyResolution(run, current);
        return applied === "run" ? "run" : this.#result(run, false);
      }
      const left = deadline - this.#clock.now();
      if (left <= 0) {
        await this.#log(run, {
          event: "manual_resolved",
          note: `no answer within ${formatDuration(this.#manualTimeout)}`,
        });
        if (current) {
          current.status = "resolved";
          current.updatedAt = this.#clock.now();
          current.resolution = {
            action: "fail",
            by: "timeout",
            at: this.#clock.now(),
            note: "no answer in time",
          };
          await writeJson(this.#paths.escalation(taskId), current);
        }
        return "timeout";
      }
      await this.#clock.sleep(Math.min(delay, left), options.signal);
      delay = Math.min(delay * 2, 5_000);
    }
  }

  // Applies a resolved escalation to a task that is not running. Returns
  // "run" to run it again, "replay" when it was already applied, or the
  // final status it now has.
  async #applyResolution<T>(
    run: Run<T>,
    esc: Escalation,
  ): Promise<"run" | TaskStatus> {
    const { state } = run;
    const resolution = esc.resolution!;
    state.note = resolution.note ?? "";
    await this.#log(run, {
      event: "manual_resolved",
      note: `${resolution.action} by ${resolution.by}${
        resolution.note ? `: ${resolution.note}` : ""
      }`,
    });
    switch (resolution.action) {
      case "retry":
        return "run";
      case "skip":
        await this.#finish(run, "skipped", {});
        return "skipped";
      case "fail":
        await this.#finish(run, "failed", {});
        return "failed";
      case "rollback": {
        const rolledBack = await this.#rollback(run, run.lastThrown);
        if (rolledBack !== true) return rolledBack.status;
        await this.#finish(run, "rolled_back", {});
        return "rolled_back";
      }
    }
  }

  async #end<T>(run: Run<T>, status: TaskStatus): Promise<TaskResult<T>> {
    await this.#finish(run, status, {});
    const result = this.#result(run, false);
    const fallback = run.options.fallback;
    if (fallback) {
      result.value = await fallback({
        taskId: run.taskId,
        status,
        error: run.lastThrown,
      });
      result.ok = true;
      result.fromFallback = true;
    }
    return result;
  }

  async #finish<T>(
    run: Run<T>,
    status: TaskStatus,
    fields: Partial<RecoveryLogRecord>,
  ): Promise<void> {
    const { state, options } = run;
    const now = this.#clock.now();
    state.status = status;
    state.finishedAt = now;
    delete state.nextAttemptAt;
    if (options.checkpoint && state.operationId !== undefined) {
      await options.checkpoint.completeOperation(
        state.operationId,
        status === "succeeded" ? "succeeded" : "failed",
      ).catch(() => {}); // already completed by an earlier run
    }
    await this.#save(run);
    await this.#log(run, {
      event: status as
        | "succeeded"
        | "failed"
        | "skipped"
        | "rolled_back"
        | "escalated",
      status,
      attempts: state.attemptsMade,
      strategy: run.strategyText,
      recovered: false,
      durationMs: now - state.startedAt,
      ...(state.lastError && status !== "succeeded"
        ? {
          category: state.lastError.category,
          error: `${state.lastError.name}: ${state.lastError.message}`,
        }
        : {}),
      ...(state.escalationId && status === "escalated"
        ? { escalationId: state.escalationId }
        : {}),
      ...fields,
    });
    // The snapshot is only needed while someone may still roll back.
    if (
      status === "succeeded" || status === "skipped" || status === "rolled_back"
    ) {
      await this.#dropSnapshot(run);
    }
  }

  // Removes a finished task's snapshot; the flag goes only once the files
  // are gone, so a crash in between is finished by the next call.
  async #dropSnapshot<T>(run: Run<T>): Promise<void> {
    if (!run.state.snapshot) return;
    await remove(this.#paths.snapshot(run.taskId), {
      recursive: true,
      missingOk: true,
    });
    delete run.state.snapshot;
    await this.#save(run);
  }

  async #interrupt<T>(run: Run<T>): Promise<void> {
    const { state } = run;
    if (state.status === "running") {
      // The cut-short run is not charged: attemptsMade stays.
      await this.#log(run, {
        event: "interrupted",
        attempt: state.attemptsStarted,
        note: "aborted through its signal",
      }, "durable");
    }
    if (!FINAL.has(state.status) && state.status !== "awaiting_manual") {
      state.status = "interrupted";
      await this.#save(run);
    }
  }

  #replay<T>(run: Run<T>): TaskResult<T> {
    return this.#result(run, true);
  }

  #result<T>(run: Run<T>, replayed: boolean): TaskResult<T> {
    const { state } = run;
    const ok = state.status === "succeeded";
    const result: TaskResult<T> = {
      taskId: run.taskId,
      status: state.status,
      ok,
      fromFallback: false,
      attempts: state.attemptsMade,
      recovered: ok && state.firstFailureAt !== undefined,
      replayed,
      decisions: [...state.decisions],
      durationMs: (state.finishedAt ?? this.#clock.now()) - state.startedAt,
    };
    if (ok && state.result !== undefined) result.value = state.result as T;
    if (!ok && state.lastError) result.error = state.lastError;
    if (state.escalationId) result.escalationId = state.escalationId;
    return result;
  }

  // ------------------------------------------------------------ records

  #errorRecord(err: unknown): ErrorRecord {
    const c = classifyError(err);
    const chain: string[] = [];
    let cause = err instanceof Error ? err.cause : undefined;
    for (let depth = 0; cause !== undefined && depth < 8; depth++) {
      chain.push(this.#redact(`${nameOf(cause)}: ${messageOf(cause)}`));
      cause = cause instanceof Error ? cause.cause : undefined;
    }
    if (err instanceof AggregateError) {
      for (const inner of err.errors.slice(0, 8)) {
        chain.push(this.#redact(`${nameOf(inner)}: ${messageOf(inner)}`));
      }
    }
    const code = (err as { code?: unknown } | null)?.code;
    const status = (err as { status?: unknown } | null)?.status;
    const exitCode = (err as { exitCode?: unknown } | null)?.exitCode;
    return {
      name: nameOf(err),
      message: this.#redact(messageOf(err)),
      ...(typeof code === "string" ? { code } : {}),
      ...(typeof status === "number" ? { status } : {}),
      ...(typeof exitCode === "number" ? { exitCode } : {}),
      category: c.category,
      causeChain: chain,
    };
  }

  async #log<T>(
    run: Run<T>,
    fields: Partial<RecoveryLogRecord> & Pick<RecoveryLogRecord, "event">,
    durability?: "durable",
  ): Promise<void> {
    const now = this.#clock.now();
    const record: RecoveryLogRecord = {
      v: 1,
      at: now,
      ts: new Date(now).toISOString(),
      task: run.taskId,
      execution: run.state.executions,
      ...fields,
    };
    if (record.note !== undefined) record.note = this.#redact(record.note);
    // Terminal events are synced; the rest reach the disk with them (a
    // killed process loses nothing the page cache holds).
    const durable = durability === "durable" ||
      TERMINAL_EVENTS.has(record.event);
    await appendJsonl(this.#paths.log(run.taskId), record, {
      durability: durable ? "durable" : "none",
    });
    try {
      this.#onEvent?.(record);
    } catch {
      // A hook may not break the task it observes.
    }
  }

  async #save<T>(run: Run<T>): Promise<void> {
    run.state.updatedAt = this.#clock.now();
    await writeJson(this.#paths.task(run.taskId), run.state);
  }

  async #readEscalation(taskId: string): Promise<Escalation | undefined> {
    try {
      return await readJson<Escalation>(this.#paths.escalation(taskId));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async #writeEscalation<T>(
    run: Run<T>,
    type: Escalation["type"],
    prompt?: string,
    extraError?: unknown,
  ): Promise<Escalation> {
    const { state, taskId, options } = run;
    const now = this.#clock.now();
    const error = state.lastError;
    const elapsed = formatDuration(now - state.startedAt);
    const why = error ? ` (${error.category}: ${error.message})` : "";
    const summary = `Task "${taskId}" failed ${state.attemptsMade} run${
      state.attemptsMade === 1 ? "" : "s"
    } over ${elapsed}${why}${
      extraError ? `, and its rollback failed: ${messageOf(extraError)}` : ""
    }`;
    const resolveCmd = (action: string) =>
      `sturdy recover resolve ${taskId} --action ${action} --note "…"`;
    const suggested = [
      `sturdy recover status ${taskId}`,
      resolveCmd("retry"),
      resolveCmd("skip"),
      ...(state.snapshot || options.checkpoint ? [resolveCmd("rollback")] : []),
      resolveCmd("fail"),
    ];
    const esc: Escalation = {
      format: ESCALATION_FORMAT,
      id: `esc-${taskId}-${state.executions}`,
      type,
      status: "open",
      taskId,
      createdAt: now,
      updatedAt: now,
      summary: this.#redact(summary),
      attempts: state.attemptsMade,
      timeline: [...state.decisions],
      suggested,
    };
    if (type === "manual") {
      esc.prompt = this.#redact(
        prompt ?? options.prompt ??
          `Task "${taskId}" needs a decision${why}: retry it, skip it, roll it back or fail it`,
      );
    }
    if (error) esc.error = error;
    await writeJson(this.#paths.escalation(taskId), esc);
    state.escalationId = esc.id;
    await this.#save(run);
    if (type === "manual") {
      await this.#log(run, {
        event: "manual_requested",
        escalationId: esc.id,
        note: esc.prompt!,
      });
    }
    if (this.#escalateHook) {
      try {
        await this.#escalateHook(esc);
      } catch (hookError) {
        await this.#log(run, {
          event: "escalate_hook_failed",
          error: `${nameOf(hookError)}: ${messageOf(hookError)}`,
        });
      }
    }
    return esc;
  }

  // ------------------------------------------------------------ wrap

  /**
   * Wraps a function so every call runs as a task (the seeds'
   * `with_recovery`). The wrapper returns the value, or the fallback's;
   * a skipped task returns `undefined`; any other ending throws a
   * {@linkcode TaskFailedError}.
   *
   * @param taskId The task id, or a function of the call's arguments that
   *   makes one (so each input is its own task).
   * @param fn The function.
   * @param options As for {@linkcode RecoveryManager.execute}.
   * @returns The wrapped function.
   *
   * @example One task per input
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * const double = recovery.wrap((n: number) => `double-${n}`, (n: number) => n * 2);
   * assert.equal(await double(21), 42);
   * // Done once, never redone: the recorded result comes back.
   * assert.equal(await double(21), 42);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  wrap<A extends unknown[], T>(
    taskId: string | ((...args: A) => string),
    fn: (...args: A) => T | Promise<T>,
    options: ExecuteOptions<T> = {},
  ): (...args: A) => Promise<T> {
    return async (...args: A): Promise<T> => {
      const id = typeof taskId === "function" ? taskId(...args) : taskId;
      const result = await this.execute(id, () => fn(...args), options);
      if (result.ok) return result.value as T;
      if (result.status === "skipped") return undefined as T;
      throw new TaskFailedError(result as TaskResult<unknown>);
    };
  }

  // ------------------------------------------------------------ state

  /**
   * Reads a task's persisted state.
   *
   * @param taskId The task's id.
   * @returns Its state, or `undefined` if it never ran (or was cleaned up).
   * @throws {RecoveryError} Code `corrupt_task_state` for an unreadable file.
   *
   * @example A task that never ran
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * assert.equal(await recovery.loadTaskState("nightly"), undefined);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async loadTaskState(taskId: string): Promise<TaskState | undefined> {
    validateName(taskId, "task id");
    const path = this.#paths.task(taskId);
    let state: TaskState;
    try {
      state = await readJson<TaskState>(path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new RecoveryError(
        `Cannot read the state of task "${taskId}" from ${path}: ${
          messageOf(err)
        }; fix or remove the file (removing it forgets the task's progress)`,
        { code: "corrupt_task_state", taskId, path, cause: err },
      );
    }
    if (
      state?.format !== TASK_FORMAT || state.taskId !== taskId ||
      !TASK_STATUSES.includes(state.status)
    ) {
      throw new RecoveryError(
        `Cannot read the state of task "${taskId}" from ${path}: not a ${TASK_FORMAT} record for this task; fix or remove the file`,
        { code: "corrupt_task_state", taskId, path },
      );
    }
    return state;
  }

  /**
   * Writes a task's state atomically (for tools that move tasks between
   * statuses by hand; `execute` does this on every transition).
   *
   * @param state The state.
   * @returns Resolves once durable.
   * @throws {RecoveryError} Code `invalid_option` for a state that is not
   *   a task state.
   *
   * @example Reset a task so it runs again
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("t", () => 1);
   * const state = (await recovery.loadTaskState("t"))!;
   * await recovery.saveTaskState({ ...state, status: "pending", attemptsMade: 0 });
   * assert.equal((await recovery.execute("t", () => 2)).value, 2);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async saveTaskState(state: TaskState): Promise<void> {
    validateName(state?.taskId, "task id");
    if (state.format !== TASK_FORMAT || !TASK_STATUSES.includes(state.status)) {
      throw new RecoveryError(
        `Cannot save the state of task "${state.taskId}": give a ${TASK_FORMAT} record with a status among ${
          TASK_STATUSES.join(", ")
        }`,
        {
          code: "invalid_option",
          taskId: state.taskId,
          operation: "saveTaskState",
        },
      );
    }
    await this.#ensureDirs();
    await writeJson(this.#paths.task(state.taskId), {
      ...state,
      updatedAt: this.#clock.now(),
    });
  }

  /**
   * Lists every task's state, by id.
   *
   * @param options Only tasks with one of these statuses.
   * @returns The states.
   *
   * @example List failed tasks
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("bad", () => { throw new RangeError("no"); });
   * const failed = await recovery.listTasks({ status: ["failed"] });
   * assert.deepEqual(failed.map((t) => t.taskId), ["bad"]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async listTasks(
    options: { status?: readonly TaskStatus[] } = {},
  ): Promise<TaskState[]> {
    const states: TaskState[] = [];
    for (const id of await this.#ids(this.#paths.tasks, ".json")) {
      const state = await this.loadTaskState(id);
      if (state && (!options.status || options.status.includes(state.status))) {
        states.push(state);
      }
    }
    return states;
  }

  async #ids(dir: string, suffix: string): Promise<string[]> {
    let entries;
    try {
      entries = await listDir(dir);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    return entries
      .filter((e) => e.isFile && e.name.endsWith(suffix))
      .map((e) => e.name.slice(0, -suffix.length))
      .filter((id) =>
        /^[A-Za-z0-9._-]{1,128}$/.test(id) && id !== "." && id !== ".."
      );
  }

  /**
   * Reads a task's log (a torn last line, from a crash mid-append, is
   * left out).
   *
   * @param taskId The task's id.
   * @returns Its records, oldest first.
   *
   * @example The log of a successful task
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("t", () => "ok");
   * const events = (await recovery.readLog("t")).map((r) => r.event);
   * assert.deepEqual(events, ["task_started", "attempt_started", "succeeded"]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async readLog(taskId: string): Promise<RecoveryLogRecord[]> {
    validateName(taskId, "task id");
    try {
      return (await readJsonl<RecoveryLogRecord>(this.#paths.log(taskId), {
        onCorrupt: "skip",
      })).records;
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  // ------------------------------------------------------------ escalations

  /**
   * Lists escalations, oldest first.
   *
   * @param options Only `open` or `resolved` ones.
   * @returns The escalations.
   *
   * @example No escalations yet
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * assert.deepEqual(await recovery.escalations({ status: "open" }), []);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async escalations(
    options: { status?: Escalation["status"] } = {},
  ): Promise<Escalation[]> {
    const found: Escalation[] = [];
    for (const id of await this.#ids(this.#paths.escalations, ".json")) {
      const esc = await this.#readEscalation(id);
      if (esc && (!options.status || esc.status === options.status)) {
        found.push(esc);
      }
    }
    return found.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Answers an open escalation. A task waiting in `manual` (in this or
   * another process) picks the answer up and acts on it. For a task that
   * is not running, `skip`, `fail` and `rollback` are applied at once
   * (rollback restores its snapshot and checkpoint); `retry` makes the
   * next `execute` run it again.
   *
   * @param taskId The task's id.
   * @param options The action, a note, who.
   * @returns The resolved escalation.
   * @throws {RecoveryError} Code `escalation_not_found` when the task has
   *   no open escalation, `invalid_option` for an unknown action.
   *
   * @example Answer a manual task from the outside
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * const running = recovery.execute("deploy", () => {
   *   throw new Error("needs approval");
   * }, { strategy: "manual" });
   * while ((await recovery.escalations({ status: "open" })).length === 0) {
   *   await new Promise((r) => setTimeout(r, 10));
   * }
   * await recovery.resolve("deploy", { action: "skip", note: "not today" });
   * assert.equal((await running).status, "skipped");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async resolve(taskId: string, options: ResolveOptions): Promise<Escalation> {
    validateName(taskId, "task id");
    if (!RESOLUTION_ACTIONS.includes(options?.action)) {
      throw new RecoveryError(
        `Invalid resolution ${
          JSON.stringify(options?.action)
        } for task "${taskId}": use ${RESOLUTION_ACTIONS.join(", ")}`,
        { code: "invalid_option", taskId, operation: "resolve" },
      );
    }
    const esc = await this.#readEscalation(taskId);
    if (!esc || esc.status !== "open") {
      throw new RecoveryError(
        esc
          ? `Task "${taskId}" has no open escalation: ${esc.id} was already resolved (${esc.resolution?.action} by ${esc.resolution?.by})`
          : `Task "${taskId}" has no escalation; list open ones with "sturdy recover escalations"`,
        {
          code: "escalation_not_found",
          taskId,
          path: this.#paths.escalation(taskId),
        },
      );
    }
    const now = this.#clock.now();
    const resolution: Resolution = {
      action: options.action,
      by: options.by ?? "api",
      at: now,
      ...(options.note !== undefined
        ? { note: this.#redact(options.note) }
        : {}),
    };
    esc.status = "resolved";
    esc.updatedAt = now;
    esc.resolution = resolution;
    await writeJson(this.#paths.escalation(taskId), esc);
    // A task nobody runs gets the answer applied now (retry waits for the
    // next execute). A live waiter holds the task's lock and applies it.
    if (options.action !== "retry") {
      const lock = this.#lock
        ? await tryAcquireLock(taskId, { root: this.#paths.dir })
        : null;
      if (lock || !this.#lock) {
        try {
          const state = await this.loadTaskState(taskId);
          if (
            state &&
            (state.status === "escalated" || state.status === "awaiting_manual")
          ) {
            const run: Run<unknown> = {
              taskId,
              fn: () => undefined,
              options: {},
              strategy: state.strategy,
              strategyText: strategyText(state.strategy),
              rules: this.#rules,
              policy: this.#policy({}),
              state,
            };
            await this.#applyResolution(run, esc);
          }
        } finally {
          await lock?.release();
        }
      }
    }
    return esc;
  }

  /**
   * Forgets a task's state (and its snapshot and resolved escalation) so
   * the next `execute` starts it afresh, as if it never ran. Its log stays,
   * so statistics still count what happened.
   *
   * @param taskId The task's id.
   * @returns Whether there was a state to forget.
   * @throws {RecoveryError} Code `task_busy` while it runs, and
   *   `escalation_open` while its escalation is open (resolve it first).
   *
   * @example Run a finished task again
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("build", () => 1);
   * assert.equal(await recovery.forget("build"), true);
   * assert.equal((await recovery.execute("build", () => 2)).value, 2);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async forget(taskId: string): Promise<boolean> {
    validateName(taskId, "task id");
    await this.#ensureDirs();
    const lock = await this.#acquire(taskId, "forget");
    try {
      const esc = await this.#readEscalation(taskId);
      if (esc?.status === "open") {
        throw new RecoveryError(
          `Cannot forget task "${taskId}": its escalation ${esc.id} is open; resolve it first with "sturdy recover resolve ${taskId} --action …"`,
          {
            code: "escalation_open",
            taskId,
            path: this.#paths.escalation(taskId),
          },
        );
      }
      const state = await this.loadTaskState(taskId);
      await remove(this.#paths.snapshot(taskId), {
        recursive: true,
        missingOk: true,
      });
      await remove(this.#paths.escalation(taskId), { missingOk: true });
      await remove(this.#paths.task(taskId), { missingOk: true });
      return state !== undefined;
    } finally {
      await lock?.release();
    }
  }

  // ------------------------------------------------------------ stats, cleanup

  /**
   * Statistics over every task's log: outcomes, success and recovery
   * rates, by strategy, category and rule, attempts histogram, time to
   * recover. Computed from the logs, so they survive restarts.
   *
   * @param options A cut-off (`since`, epoch ms) and extra groupings.
   * @returns The statistics.
   *
   * @example Stats after one success
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("t", () => 1);
   * const stats = await recovery.stats();
   * assert.equal(stats.total, 1);
   * assert.equal(stats.successRate, 1);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async stats(options: StatsOptions = {}): Promise<RecoveryStats> {
    const records: RecoveryLogRecord[] = [];
    for (const id of await this.#ids(this.#paths.logs, ".jsonl")) {
      records.push(...await this.readLog(id));
    }
    return computeStats(records, options);
  }

  /**
   * Removes the state, log and snapshot of finished tasks (succeeded,
   * skipped, failed, rolled back, or escalated and resolved) whose last
   * change is older than `olderThan`, and resolved escalations with them.
   * Open tasks and open escalations are always kept.
   *
   * @param options The age and whether to only plan.
   * @returns What was (or would be) removed and kept, with reasons.
   *
   * @example Plan a cleanup
   * ```ts
   * import { RecoveryManager } from "@sturdy/sturdy/recovery";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const recovery = new RecoveryManager({ root });
   * await recovery.execute("t", () => 1);
   * const plan = await recovery.cleanup({ olderThan: 0, dryRun: true });
   * assert.ok(plan.remove.some((item) => item.taskId === "t"));
   * assert.ok(await recovery.loadTaskState("t")); // a dry run removes nothing
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async cleanup(options: CleanupOptions): Promise<CleanupPlan> {
    if (!(options?.olderThan >= 0)) {
      throw new RecoveryError(
        `Invalid olderThan ${options?.olderThan}: give an age in ms >= 0`,
        { code: "invalid_option", operation: "cleanup" },
      );
    }
    const dryRun = options.dryRun ?? false;
    const cutoff = this.#clock.now() - options.olderThan;
    const plan: CleanupPlan = {
      dryRun,
      remove: [],
      keep: [],
      checkpoints: [],
    };
    for (const state of await this.listTasks()) {
      const taskId = state.taskId;
      const paths = [
        this.#paths.task(taskId),
        this.#paths.log(taskId),
        this.#paths.snapshot(taskId),
        this.#paths.escalation(taskId),
      ];
      const esc = await this.#readEscalation(taskId);
      let keep: string | undefined;
      if (esc?.status === "open") keep = "its escalation is open";
      else if (!FINAL.has(state.status)) keep = `it is ${state.status}`;
      else if (state.updatedAt > cutoff) {
        keep = `it changed within ${formatDuration(options.olderThan)}`;
      }
      if (keep) {
        plan.keep.push({ path: paths[0]!, taskId, reason: keep });
        continue;
      }
      const reason = `${state.status} ${
        formatDuration(this.#clock.now() - state.updatedAt)
      } ago`;
      for (const path of paths) {
        plan.remove.push({ path, taskId, reason });
        // The state file goes last, so an interrupted cleanup leaves the
        // task findable and the next cleanup finishes it.
      }
      if (!dryRun) {
        for (const path of [...paths.slice(1), paths[0]!]) {
          await remove(path, { recursive: true, missingOk: true });
        }
      }
    }
    for (const manager of options.checkpoints ?? []) {
      plan.checkpoints.push(await manager.prune({ dryRun }));
    }
    return plan;
  }
}

// Stands in for an error thrown by an earlier process, from its record.
function errorFrom(record: ErrorRecord | undefined): Error {
  const err = new Error(record?.message ?? "unknown error");
  err.name = record?.name ?? "Error";
  if (record?.code !== undefined) Object.assign(err, { code: record.code });
  if (record?.status !== undefined) {
    Object.assign(err, { status: record.status });
  }
  if (record?.exitCode !== undefined) {
    Object.assign(err, { exitCode: record.exitCode });
  }
  return err;
}

// Waits for `work` to settle, or `ms` at most (a real timer: the run is
// real work, whatever the injected clock says).
async function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    work.then(() => {}, () => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

// The decision for a failure, from where the task's chain stands.
function decideNext<T>(run: Run<T>, err: unknown): Decision {
  const { state } = run;
  return decideRecovery({
    error: err,
    strategy: run.strategy,
    rules: run.rules,
    step: state.step,
    rule: state.rule,
    attemptsMade: state.attemptsMade,
    policy: run.policy,
    state,
    ...(run.previousDelay !== undefined
      ? { previousDelay: run.previousDelay }
      : {}),
  });
}
