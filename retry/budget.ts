/** Options for {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /**
   * The bucket's size; it starts full.
   * @default {10}
   */
  maxTokens?: number;
  /**
   * Tokens a successful call puts back (a failed attempt takes one).
   * @default {0.1}
   */
  tokenRatio?: number;
}

/** A plain view of a budget's state. */
export interface RetryBudgetSnapshot {
  /** Tokens left. */
  tokens: number;
  /** The bucket's size. */
  maxTokens: number;
  /** Tokens a success puts back. */
  tokenRatio: number;
  /** Whether a retry would be allowed now. */
  canRetry: boolean;
}

/**
 * A retry budget shared by many calls, with gRPC's retry-throttling rules:
 * every failed attempt takes one token, every success puts back
 * `tokenRatio`, and retries are allowed only while more than half of
 * `maxTokens` is left. When a dependency is down, retries stop (so they
 * cannot multiply the load) while first attempts still go through; as calls
 * succeed again, the bucket refills and retries resume.
 *
 * Pass the same instance to every `retry` call that should share it.
 *
 * @example Share a budget between calls
 * ```ts
 * import { retry, RetryBudget, RetryBudgetExceededError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const budget = new RetryBudget({ maxTokens: 4, tokenRatio: 1 });
 * const down = () => {
 *   throw new Error("503");
 * };
 * // 4 tokens: a retry needs more than 2 left, so each call gets one retry
 * // at most, then retries stop.
 * const err = await retry(down, { budget, minTimeout: 0, maxAttempts: 10 })
 *   .catch((e) => e);
 * assert.ok(err instanceof RetryBudgetExceededError);
 * assert.equal(budget.canRetry(), false);
 * ```
 */
export class RetryBudget {
  #tokens: number;
  #max: number;
  #ratio: number;

  /**
   * Creates a full bucket.
   *
   * @param options Its size and refill ratio.
   * @throws {RangeError} When `maxTokens` is not a positive finite number or
   * `tokenRatio` is negative.
   */
  constructor(options: RetryBudgetOptions = {}) {
    const { maxTokens = 10, tokenRatio = 0.1 } = options;
    if (!Number.isFinite(maxTokens) || maxTokens <= 0) {
      throw new RangeError(
        `Cannot create a retry budget as 'maxTokens' must be a positive number: current value is ${maxTokens}`,
      );
    }
    if (!Number.isFinite(tokenRatio) || tokenRatio < 0) {
      throw new RangeError(
        `Cannot create a retry budget as 'tokenRatio' must be >= 0: current value is ${tokenRatio}`,
      );
    }
    this.#max = maxTokens;
    this.#ratio = tokenRatio;
    this.#tokens = maxTokens;
  }

  /**
   * Whether a retry is allowed now: more than half the bucket is left.
   *
   * @returns `true` when retrying is allowed.
   */
  canRetry(): boolean {
    return this.#tokens > this.#max / 2;
  }

  /** Takes one token for a failed attempt. */
  recordFailure(): void {
    this.#tokens = Math.max(0, this.#tokens - 1);
  }

  /** Puts back `tokenRatio` tokens for a success. */
  recordSuccess(): void {
    this.#tokens = Math.min(this.#max, this.#tokens + this.#ratio);
  }

  /**
   * The tokens left.
   *
   * @returns The current token count.
   */
  get tokens(): number {
    return this.#tokens;
  }

  /**
   * A plain snapshot, for logs and status output.
   *
   * @returns The budget's state.
   */
  toJSON(): RetryBudgetSnapshot {
    return {
      tokens: this.#tokens,
      maxTokens: this.#max,
      tokenRatio: this.#ratio,
      canRetry: this.canRetry(),
    };
  }
}
