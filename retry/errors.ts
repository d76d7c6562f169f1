import { SturdyError } from "./sturdy_error.ts";

/** Why {@linkcode retry} stopped without a result. */
export type RetryStopReason =
  | "exhausted"
  | "deadline"
  | "retry_after_exceeds_deadline"
  | "budget";

/** Extra context for a {@linkcode RetryError} beyond std's two arguments. */
export interface RetryErrorOptions {
  /** Every error the attempts threw, oldest first (bounded, see `retry`). */
  errors?: unknown[];
  /** Why retrying stopped. @default {"exhausted"} */
  reason?: RetryStopReason;
  /** Milliseconds from the first attempt to giving up. @default {0} */
  elapsedMs?: number;
  /** Overrides the message (std's form is kept for `"exhausted"`). */
  message?: string;
  /** Overrides the code. @default {"retry_exhausted"} */
  code?: string;
}

/**
 * Thrown by {@linkcode retry} once it gives up. A drop-in for Deno std's
 * `RetryError`: same name, same constructor arguments, same message form
 * (`Retrying exceeded the maxAttempts (N).`) and `cause` (the last error).
 * Beyond std it carries `attempts`, every error, the stop `reason` and the
 * elapsed time. Its subclasses say why retrying stopped early.
 *
 * @example Inspect a give-up
 * ```ts
 * import { retry, RetryError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = await retry(() => {
 *   throw new Error("down");
 * }, { maxAttempts: 2, minTimeout: 0 }).catch((e) => e);
 * assert.ok(err instanceof RetryError);
 * assert.equal(err.message, "Retrying exceeded the maxAttempts (2).");
 * assert.equal(err.attempts, 2);
 * assert.equal(err.errors.length, 2);
 * ```
 */
export class RetryError extends SturdyError {
  /** Every error the attempts threw, oldest first. */
  readonly errors: unknown[];
  /** Why retrying stopped. */
  readonly reason: RetryStopReason;
  /** Milliseconds from the first attempt to giving up. */
  readonly elapsedMs: number;
  /** How many attempts were made. */
  declare readonly attempts: number;

  /**
   * Creates the error, with std's argument order.
   *
   * @param cause The last error.
   * @param attempts How many attempts were made.
   * @param options Extra context.
   */
  constructor(cause: unknown, attempts: number, options?: RetryErrorOptions) {
    super(
      options?.message ?? `Retrying exceeded the maxAttempts (${attempts}).`,
      {
        code: options?.code ?? "retry_exhausted",
        cause,
        attempts,
        operation: "retry",
      },
    );
    this.errors = options?.errors ?? [cause];
    this.reason = options?.reason ?? "exhausted";
    this.elapsedMs = options?.elapsedMs ?? 0;
  }
}

/**
 * Thrown by {@linkcode retry} when the total `deadline` leaves no room for
 * another attempt, or when a server's `Retry-After` asks for a wait longer
 * than the time that is left. `cause` is the last error.
 *
 * @example Catch a deadline give-up
 * ```ts
 * import { DeadlineExceededError, RetryError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = new DeadlineExceededError(new Error("slow"), 3, {
 *   deadline: 1000,
 *   elapsedMs: 990,
 * });
 * assert.ok(err instanceof RetryError);
 * assert.equal(err.code, "deadline_exceeded");
 * ```
 */
export class DeadlineExceededError extends RetryError {
  /** The total time allowed, in milliseconds. */
  readonly deadline: number;

  /**
   * Creates the error.
   *
   * @param cause The last error.
   * @param attempts How many attempts were made.
   * @param options The deadline, elapsed time, reason and errors.
   */
  constructor(
    cause: unknown,
    attempts: number,
    options: RetryErrorOptions & { deadline: number },
  ) {
    const reason = options.reason ?? "deadline";
    const why = reason === "retry_after_exceeds_deadline"
      ? "the server asked to wait longer than the time left"
      : "no time was left for another attempt";
    super(cause, attempts, {
      ...options,
      reason,
      code: "deadline_exceeded",
      message: options.message ??
        `Retrying stopped after ${attempts} attempt${
          attempts === 1 ? "" : "s"
        } at the ${options.deadline}ms deadline: ${why}; raise 'deadline' or make each attempt faster`,
    });
    this.deadline = options.deadline;
  }
}

/**
 * Thrown by {@linkcode retry} when its shared {@linkcode RetryBudget} has no
 * tokens left for a retry. First attempts are never refused by a budget;
 * only retries are. `cause` is the last error.
 *
 * @example Recognise a budget give-up
 * ```ts
 * import { RetryBudgetExceededError, RetryError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = new RetryBudgetExceededError(new Error("503"), 1);
 * assert.ok(err instanceof RetryError);
 * assert.equal(err.code, "retry_budget_exceeded");
 * ```
 */
export class RetryBudgetExceededError extends RetryError {
  /**
   * Creates the error.
   *
   * @param cause The last error.
   * @param attempts How many attempts were made.
   * @param options Extra context.
   */
  constructor(cause: unknown, attempts: number, options?: RetryErrorOptions) {
    super(cause, attempts, {
      ...options,
      reason: "budget",
      code: "retry_budget_exceeded",
      message: options?.message ??
        `Retrying stopped after ${attempts} attempt${
          attempts === 1 ? "" : "s"
        }: the shared retry budget is spent (too many calls are failing); retries resume as calls succeed`,
    });
  }
}

/**
 * The error an attempt fails with when it runs past the per-attempt
 * `timeout` of {@linkcode retry}. It is classified as `timeout` and retried.
 * The attempt's `signal` is aborted with this error, so work that listens to
 * the signal stops.
 *
 * @example Recognise a timed-out attempt
 * ```ts
 * import { AttemptTimeoutError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = new AttemptTimeoutError(500, 2);
 * assert.equal(err.code, "attempt_timeout");
 * assert.match(err.message, /500ms/);
 * ```
 */
export class AttemptTimeoutError extends SturdyError {
  /** The per-attempt limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param timeoutMs The per-attempt limit, in milliseconds.
   * @param attempt The 1-based number of the attempt that timed out.
   */
  constructor(timeoutMs: number, attempt: number) {
    super(
      `Attempt ${attempt} timed out after ${timeoutMs}ms; raise 'timeout' if the work needs longer`,
      { code: "attempt_timeout", attempts: attempt, operation: "retry" },
    );
    this.timeoutMs = timeoutMs;
  }
}
