import { SturdyError } from "../retry/mod.ts";
import type { TaskResult, TaskStatus } from "./types.ts";

/** Fields a {@linkcode RecoveryError} carries besides its message. */
export interface RecoveryErrorOptions {
  /**
   * Stable code: `invalid_rule`, `invalid_option`, `task_busy`,
   * `corrupt_task_state`, `escalation_not_found`, `escalation_open`,
   * `snapshot_failed`,
   * `rollback_failed`, `manual_timeout`.
   */
  code: string;
  /** The task involved. */
  taskId?: string;
  /** The rule involved, for `invalid_rule`. */
  rule?: string;
  /** The file involved. */
  path?: string;
  /** The failed operation, e.g. `"execute"`. */
  operation?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A failure of the recovery manager itself (a bad rule, a corrupt task
 * state file, a failed rollback), with a stable `code`. A task's own error
 * is never wrapped in this: it is recorded in the {@linkcode TaskResult}.
 *
 * @example A rule with an unknown action is refused by name
 * ```ts
 * import { RecoveryError, validateRules } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const err = (() => {
 *   try {
 *     validateRules([{ name: "oops", match: "*", action: "reboot" as "retry" }]);
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * assert.ok(err instanceof RecoveryError);
 * assert.equal(err.code, "invalid_rule");
 * assert.equal(err.rule, "oops");
 * ```
 */
export class RecoveryError extends SturdyError {
  /** The task involved, when there is one. */
  readonly taskId: string | undefined;
  /** The rule involved, for `invalid_rule`. */
  readonly rule: string | undefined;

  /**
   * Creates an error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code and context.
   */
  constructor(message: string, options: RecoveryErrorOptions) {
    // Its extra fields (agent, task, rule) are kept below, not by the base.
    super(message, options);
    this.taskId = options.taskId;
    this.rule = options.rule;
  }
}

/**
 * Thrown by {@linkcode RecoveryManager.wrap} (and the
 * {@linkcode recoverable} decorator) when a task ends without a value:
 * failed, rolled back, escalated or interrupted. Code `task_<status>`,
 * e.g. `task_escalated`; `cause` is the task's last error; `result` is the
 * whole {@linkcode TaskResult}.
 *
 * @example Tell an escalated task from a failed one
 * ```ts
 * import { RecoveryManager, TaskFailedError } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const recovery = new RecoveryManager({ root });
 * const send = recovery.wrap("send-report", () => {
 *   throw new Deno.errors.PermissionDenied("no write access to ./out");
 * }, { strategy: "escalate" });
 * const err = await send().catch((e) => e);
 * assert.ok(err instanceof TaskFailedError);
 * assert.equal(err.code, "task_escalated");
 * assert.equal(err.status, "escalated");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class TaskFailedError extends SturdyError {
  /** The task's id. */
  readonly taskId: string;
  /** Where it ended. */
  readonly status: TaskStatus;
  /** The whole result. */
  readonly result: TaskResult<unknown>;

  /**
   * Creates an error from a task's result.
   *
   * @param result The task's result.
   * @param cause The task's last error, as thrown.
   */
  constructor(result: TaskResult<unknown>, cause?: unknown) {
    const error = result.error
      ? `: ${result.error.name}: ${result.error.message}`
      : "";
    const hint = result.status === "escalated" ||
        result.status === "awaiting_manual"
      ? `; see "sturdy recover escalations" and resolve with "sturdy recover resolve ${result.taskId} --action retry|skip|rollback|fail"`
      : "";
    super(
      `Task "${result.taskId}" ended ${result.status} after ${result.attempts} attempt${
        result.attempts === 1 ? "" : "s"
      }${error}${hint}`,
      {
        code: `task_${result.status}`,
        attempts: result.attempts,
        operation: "execute",
        ...(cause !== undefined ? { cause } : {}),
      },
    );
    this.taskId = result.taskId;
    this.status = result.status;
    this.result = result;
  }
}
