import type { Clock, Jitter } from "../retry/mod.ts";
import { resolveBackoff, type ResolvedBackoff } from "../retry/backoff.ts";
import type { CheckpointRef, OperationOutcome } from "../checkpoint/mod.ts";
import type { RecoveryRule } from "./rules.ts";
import type { Escalation } from "./escalation.ts";
import type { RecoveryLogRecord } from "./log.ts";
import type { Strategy } from "./types.ts";

/** The retry policy of the `retry` action. */
export interface RecoveryRetryOptions {
  /**
   * Total runs of a task (the first one included).
   *
   * @default {3}
   */
  maxAttempts?: number;
  /**
   * The first delay, in ms.
   *
   * @default {2000}
   */
  minDelay?: number;
  /**
   * The largest delay, in ms.
   *
   * @default {60000}
   */
  maxDelay?: number;
  /**
   * The growth factor between delays.
   *
   * @default {2}
   */
  multiplier?: number;
  /**
   * Jitter, as in retry/.
   *
   * @default {"full"}
   */
  jitter?: Jitter;
}

/**
 * Resolves a retry policy with the recovery defaults (3 attempts, 2 s
 * first delay, ×2, 60 s cap, full jitter).
 *
 * @param options The policy's knobs.
 * @param random The random source for jitter.
 * @returns The resolved policy.
 * @throws {RangeError} For a bad value, naming it.
 *
 * @example The defaults
 * ```ts
 * import { resolveRetryPolicy } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const policy = resolveRetryPolicy();
 * assert.equal(policy.maxAttempts, 3);
 * assert.equal(policy.minDelay, 2000);
 * ```
 */
export function resolveRetryPolicy(
  options: RecoveryRetryOptions = {},
  random: () => number = Math.random,
): ResolvedBackoff {
  return resolveBackoff({
    maxAttempts: options.maxAttempts ?? 3,
    minDelay: options.minDelay ?? 2_000,
    maxDelay: Math.max(options.maxDelay ?? 60_000, options.minDelay ?? 0),
    multiplier: options.multiplier ?? 2,
    jitter: options.jitter ?? "full",
    random,
  });
}

/** The part of a checkpoint manager a task's rollback needs. */
export interface TaskCheckpoints {
  /**
   * Saves a `pre_operation` checkpoint and opens an operation pinning it.
   *
   * @param name The operation's name (the task id).
   * @returns The open operation.
   */
  beginOperation(
    name: string,
  ): Promise<{ readonly id: string; readonly ref: CheckpointRef }>;
  /**
   * Restores a checkpoint (calling the manager's `apply`).
   *
   * @param ref The checkpoint or its id.
   * @returns Resolves once restored.
   */
  restore(ref: CheckpointRef | string): Promise<unknown>;
  /**
   * Completes an operation.
   *
   * @param id The operation's id.
   * @param outcome How it ended.
   * @returns Resolves once recorded.
   */
  completeOperation(id: string, outcome?: OperationOutcome): Promise<void>;
}

/** What `escalate` hooks and `fallback` functions are told. */
export interface TaskEnd {
  /** The task's id. */
  taskId: string;
  /** Where it ended. */
  status: string;
  /** The last error, as thrown. */
  error: unknown;
}

/** Options of {@linkcode RecoveryManager}. */
export interface RecoveryManagerOptions {
  /**
   * The Sturdy root; everything lives in `<root>/recovery/`.
   *
   * @default {".sturdy"}
   */
  root?: string;
  /**
   * The rule table of strategy `"auto"` (validated at construction).
   *
   * @default {DEFAULT_RULES}
   */
  rules?: readonly RecoveryRule[];
  /**
   * The retry policy of the `retry` action.
   *
   * @default {{ maxAttempts: 3, minDelay: 2000, maxDelay: 60000, multiplier: 2, jitter: "full" }}
   */
  retry?: RecoveryRetryOptions;
  /**
   * Called after an escalation file is written (a notification hook). Its
   * errors are logged (`escalate_hook_failed`), never thrown.
   *
   * @default {undefined}
   */
  escalate?: (escalation: Escalation) => void | Promise<void>;
  /**
   * Called with every log record as it is written (after redaction); the
   * CLI prints them with `STURDY_DEBUG=1`. It must not throw.
   *
   * @default {undefined}
   */
  onEvent?: (record: RecoveryLogRecord) => void;
  /**
   * Rewrites text before it is stored (error messages, notes).
   *
   * @default {redactSecrets}
   */
  redact?: (text: string) => string;
  /**
   * How long a `manual` action waits for a person before its `then`
   * (default: escalate), in ms.
   *
   * @default {86_400_000} (24 h)
   */
  manualTimeout?: number;
  /**
   * Time source: timestamps and waits.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Random source for jitter.
   *
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * After a run's signal aborts (its timeout, the caller's signal), how
   * long to wait for the run to stop before giving up on it, in ms. A run
   * that honours `ctx.signal` (as `commandTask` does) stops well within it;
   * waiting keeps two runs of one task from overlapping.
   *
   * @default {5000}
   */
  abortGrace?: number;
  /**
   * Take a lock per task while it runs, so two processes never run the
   * same task at once (a second one fails with code `task_busy`).
   *
   * @default {true}
   */
  lock?: boolean;
}

/** The context a task's function gets. */
export interface TaskContext {
  /** The task's id. */
  readonly taskId: string;
  /** This run's number in the execution (1 = first). */
  readonly attempt: number;
  /** Runs begun before this one, including interrupted ones. */
  readonly attemptsStarted: number;
  /** The progress the last run reported, to resume from. */
  readonly previousProgress: unknown;
  /** Aborted when the run must stop (caller's signal). */
  readonly signal: AbortSignal;
  /**
   * Records progress (JSON), persisted atomically, so a later run (after a
   * failure or a crash) can resume from it.
   *
   * @param details What to remember.
   * @returns Resolves once persisted.
   */
  progress(details: unknown): Promise<void>;
}

/** Options of {@linkcode RecoveryManager.execute}. */
export interface ExecuteOptions<T> {
  /**
   * How failures are handled.
   *
   * @default {"auto"}
   */
  strategy?: Strategy;
  /**
   * Files to snapshot before the first run and restore exactly on
   * `rollback` (a file that did not exist is deleted again). Paths are
   * resolved against the current directory.
   *
   * @default {[]}
   */
  files?: readonly string[];
  /**
   * A checkpoint manager: a `pre_operation` checkpoint is taken before the
   * first run and restored on `rollback`.
   *
   * @default {undefined}
   */
  checkpoint?: TaskCheckpoints;
  /**
   * Supplies a value when the task ends without one (skipped, failed,
   * rolled back, escalated); the result is then `ok` with
   * `fromFallback: true` and keeps its status.
   *
   * @default {undefined}
   */
  fallback?: (end: TaskEnd) => T | Promise<T>;
  /**
   * Overrides the manager's retry policy for this task.
   *
   * @default {the manager's}
   */
  retry?: RecoveryRetryOptions;
  /**
   * Overrides the manager's rule table for this task.
   *
   * @default {the manager's}
   */
  rules?: readonly RecoveryRule[];
  /**
   * For `manual`: what to ask the person.
   *
   * @default {a prompt naming the task and its error}
   */
  prompt?: string;
  /**
   * Milliseconds one run may take; it is then aborted through
   * `ctx.signal` and counted as a `timeout` failure.
   *
   * @default {undefined} (no limit)
   */
  timeout?: number;
  /**
   * Stops the task: the run's `ctx.signal` aborts, waits end, the task is
   * left `interrupted` (the cut-short run is not charged) and the call
   * rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /**
   * Run a task that already ended `failed`, `rolled_back` or `interrupted`
   * again (the default); `false` returns its recorded result instead.
   *
   * @default {true}
   */
  rerun?: boolean;
}
