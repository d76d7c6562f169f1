import type { ErrorCategory } from "../retry/mod.ts";
import type { RecoveryAction, TaskStatus } from "./types.ts";

/** The events a recovery log records. */
export type RecoveryEventName =
  | "task_started"
  | "task_resumed"
  | "task_replayed"
  | "attempt_started"
  | "attempt_failed"
  | "decision"
  | "retry_scheduled"
  | "rollback_started"
  | "rollback_done"
  | "rollback_failed"
  | "manual_requested"
  | "manual_resolved"
  | "escalate_hook_failed"
  | "progress"
  | "succeeded"
  | "failed"
  | "skipped"
  | "rolled_back"
  | "escalated"
  | "interrupted";

/**
 * The events that end an execution; each carries `status`, `attempts`,
 * `recovered` and `durationMs`, and is synced to disk before the call
 * returns.
 */
export const TERMINAL_EVENTS: ReadonlySet<RecoveryEventName> = new Set([
  "succeeded",
  "failed",
  "skipped",
  "rolled_back",
  "escalated",
]);

/**
 * One line of `<root>/recovery/logs/<task>.jsonl`. Unknown fields from
 * later versions are kept by readers.
 */
export interface RecoveryLogRecord {
  /** Format version. */
  v: 1;
  /** When (epoch ms). */
  at: number;
  /** When, as an ISO string, for people. */
  ts: string;
  /** The task's id. */
  task: string;
  /** Which execution of the task (1, 2, …). */
  execution: number;
  /** What happened. */
  event: RecoveryEventName;
  /** The run it concerns. */
  attempt?: number;
  /** The task's strategy, as text (`"auto"`, `"retry,escalate"`). */
  strategy?: string;
  /** The error's category. */
  category?: ErrorCategory;
  /** The error, as `name: message` (redacted). */
  error?: string;
  /** The rule or chain step behind a decision. */
  rule?: string;
  /** The action decided. */
  action?: RecoveryAction;
  /** The reason for a decision. */
  reason?: string;
  /** A retry's delay. */
  delayMs?: number;
  /** For terminal events: the final status. */
  status?: TaskStatus;
  /** For terminal events: runs made. */
  attempts?: number;
  /** For terminal events: succeeded after at least one failure. */
  recovered?: boolean;
  /** For terminal events and attempts: how long it took. */
  durationMs?: number;
  /** For `succeeded` after failures: first failure to success, in ms. */
  timeToRecoverMs?: number;
  /** The escalation written. */
  escalationId?: string;
  /** A person's note, or other detail. */
  note?: string;
}
