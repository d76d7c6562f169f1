import type { ErrorCategory } from "../retry/mod.ts";

/**
 * Where a task stands. `pending`, `running`, `waiting_retry` and
 * `awaiting_manual` are open; the rest are final until someone acts:
 * `succeeded` and `skipped` are never run again by
 * {@linkcode RecoveryManager.execute}; `escalated` waits for a
 * resolution; `failed`, `rolled_back` and `interrupted` run again on the
 * next `execute`.
 */
export type TaskStatus =
  | "pending"
  | "running"
  | "waiting_retry"
  | "awaiting_manual"
  | "succeeded"
  | "skipped"
  | "rolled_back"
  | "escalated"
  | "failed"
  | "interrupted";

/** Every {@linkcode TaskStatus}, for validation and help texts. */
export const TASK_STATUSES: readonly TaskStatus[] = Object.freeze([
  "pending",
  "running",
  "waiting_retry",
  "awaiting_manual",
  "succeeded",
  "skipped",
  "rolled_back",
  "escalated",
  "failed",
  "interrupted",
]);

/**
 * One recovery action:
 * - `retry`: run again after a backoff delay while attempts remain;
 * - `rollback`: restore the task's file snapshot and checkpoint;
 * - `skip`: give up on the task without failing the run;
 * - `manual`: ask a person and wait for their resolution;
 * - `escalate`: hand the task to a person and stop;
 * - `fail`: stop with status `failed`.
 */
export type RecoveryAction =
  | "retry"
  | "rollback"
  | "skip"
  | "manual"
  | "escalate"
  | "fail";

/** Every {@linkcode RecoveryAction}. */
export const RECOVERY_ACTIONS: readonly RecoveryAction[] = Object.freeze([
  "retry",
  "rollback",
  "skip",
  "manual",
  "escalate",
  "fail",
]);

/**
 * How a failing task is handled: one action, a chain of actions tried in
 * order (`["retry", "rollback", "escalate"]`: retry while attempts remain,
 * then roll back, then escalate), or `"auto"`: the manager's rule table
 * picks the action for each error.
 */
export type Strategy = RecoveryAction | "auto" | readonly RecoveryAction[];

/** An error as stored on disk: plain data, secrets redacted. */
export interface ErrorRecord {
  /** `error.name`, e.g. `"TypeError"`. */
  name: string;
  /** The message, redacted. */
  message: string;
  /** `error.code` when it has one. */
  code?: string;
  /** `error.status` (HTTP) when it has one. */
  status?: number;
  /** `error.exitCode` (a command's, as `CommandFailedError` has). */
  exitCode?: number;
  /** The category retry/'s classification gave it. */
  category: ErrorCategory;
  /** The causes, outermost first (`name: message`, redacted). */
  causeChain: string[];
}

/** One recorded decision, kept in the task state and the escalation. */
export interface DecisionRecord {
  /** When it was made (epoch ms). */
  at: number;
  /** The attempt that failed. */
  attempt: number;
  /** The action taken. */
  action: RecoveryAction;
  /** The rule (for `"auto"`) or chain step that chose it. */
  rule: string;
  /** Why, in words. */
  reason: string;
  /** The error's category. */
  category: ErrorCategory;
  /** The error's message (redacted). */
  error: string;
  /** The delay before the next attempt, for `retry`. */
  delayMs?: number;
}

/**
 * A task's persisted state, `<root>/recovery/tasks/<task>.json`, rewritten
 * atomically on every transition so a killed process resumes with the
 * right attempt count and without redoing finished work.
 */
export interface TaskState {
  /** Format marker. */
  format: "sturdy.task/1";
  /** The task's id. */
  taskId: string;
  /** Where it stands. */
  status: TaskStatus;
  /** The strategy it runs under, as given. */
  strategy: Strategy;
  /** Runs begun, including ones a crash or abort cut short. */
  attemptsStarted: number;
  /**
   * Runs that finished (succeeded or threw). An interrupted run is not
   * charged, so the retry budget counts only these.
   */
  attemptsMade: number;
  /** How many times the task was executed from the start (1, 2, …). */
  executions: number;
  /** The chain position (index into the strategy's actions). */
  step: number;
  /** When the current execution began (epoch ms). */
  startedAt: number;
  /** When the state last changed (epoch ms). */
  updatedAt: number;
  /** When it finished, for final statuses (epoch ms). */
  finishedAt?: number;
  /** When the next attempt may start, while `waiting_retry` (epoch ms). */
  nextAttemptAt?: number;
  /** The last error. */
  lastError?: ErrorRecord;
  /** When the first failure of this execution happened (epoch ms). */
  firstFailureAt?: number;
  /** The last progress reported through `ctx.progress()`. */
  progress?: unknown;
  /** The task's result, when it succeeded and the value is JSON. */
  result?: unknown;
  /** Whether a file snapshot was taken for rollback. */
  snapshot?: boolean;
  /** The open checkpoint operation taken before the task, if any. */
  operationId?: string;
  /** That operation's `pre_operation` checkpoint. */
  checkpointId?: string;
  /** For strategy `"auto"`: the rule that chose the current chain. */
  rule?: string;
  /** The decisions made in this execution, oldest first (last 50). */
  decisions: DecisionRecord[];
  /** The escalation's id, when one was written. */
  escalationId?: string;
  /** A note left by whoever resolved it. */
  note?: string;
}

/** What {@linkcode RecoveryManager.execute} resolves with. */
export interface TaskResult<T> {
  /** The task's id. */
  taskId: string;
  /** Where it ended. */
  status: TaskStatus;
  /**
   * True when the task succeeded (possibly after recovering), or when it
   * was skipped or failed and a `fallback` supplied the value.
   */
  ok: boolean;
  /** The value: the task's own, or the fallback's. */
  value?: T;
  /** Whether `value` came from the fallback. */
  fromFallback: boolean;
  /** Runs made in this execution (an interrupted run is not counted). */
  attempts: number;
  /** Whether it succeeded after at least one failure. */
  recovered: boolean;
  /**
   * Whether the result was read from a previous run's state rather than
   * computed now (a finished task is never redone).
   */
  replayed: boolean;
  /** The last error, when it did not succeed. */
  error?: ErrorRecord;
  /** The decisions made, oldest first. */
  decisions: DecisionRecord[];
  /** The escalation's id, for `escalated` and `awaiting_manual`. */
  escalationId?: string;
  /** Milliseconds from the start of this execution to its end. */
  durationMs: number;
}
