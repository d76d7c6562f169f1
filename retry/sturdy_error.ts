/** Fields every {@linkcode SturdyError} may carry besides its message. */
export interface SturdyErrorOptions {
  /** Stable snake_case code, e.g. `"invalid_name"` or `"retry_exhausted"`. */
  code: string;
  /** The underlying error, if any. */
  cause?: unknown;
  /** The file system path the failed operation touched. */
  path?: string;
  /** The name of the failed operation, e.g. `"write"` or `"retry"`. */
  operation?: string;
  /** How many attempts were made before giving up. */
  attempts?: number;
}

/**
 * The base class of every error Sturdy throws. Errors carry a stable `code`
 * so callers can branch on it without parsing messages.
 *
 * @example Branch on the code
 * ```ts
 * import { SturdyError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const err = new SturdyError("Lock name \"../x\" is not allowed", {
 *   code: "invalid_name",
 * });
 * assert.ok(err instanceof Error);
 * assert.equal(err.code, "invalid_name");
 * assert.equal(err.name, "SturdyError");
 * ```
 */
export class SturdyError extends Error {
  /** Stable snake_case code naming what went wrong. */
  readonly code: string;
  /** The file system path involved, when there is one. */
  readonly path: string | undefined;
  /** The operation that failed, when known. */
  readonly operation: string | undefined;
  /** How many attempts were made, when the operation was retried. */
  readonly attempts: number | undefined;

  /**
   * Creates an error.
   *
   * @param message What failed, where, why, and what to do about it.
   * @param options The code and optional context.
   */
  constructor(message: string, options: SturdyErrorOptions) {
    super(
      message,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.name = new.target.name;
    this.code = options.code;
    this.path = options.path;
    this.operation = options.operation;
    this.attempts = options.attempts;
  }
}
