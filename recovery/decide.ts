import {
  classifyError,
  type ErrorCategory,
  type ErrorClassification,
} from "../retry/mod.ts";
import { computeDelay, type ResolvedBackoff } from "../retry/backoff.ts";
import { matchRule, type RecoveryRule } from "./rules.ts";
import type { RecoveryAction, Strategy, TaskState } from "./types.ts";

/** What {@linkcode decideRecovery} needs to know. */
export interface DecideInput {
  /** The error the attempt failed with. */
  error: unknown;
  /** The task's strategy. */
  strategy: Strategy;
  /** The rule table, for `"auto"`. */
  rules: readonly RecoveryRule[];
  /** The chain position reached so far (0 at the start). */
  step: number;
  /** The rule that chose the chain last time (`"auto"` only). */
  rule?: string | undefined;
  /** Runs finished in this execution, including the one that failed. */
  attemptsMade: number;
  /** The retry policy: attempts and backoff. */
  policy: ResolvedBackoff;
  /** The previous retry delay in ms (for decorrelated jitter). */
  previousDelay?: number;
  /** The task's state, for predicate rules. */
  state?: TaskState;
  /** The error's classification, if known (else computed). */
  classification?: ErrorClassification;
}

/** What to do about a failed attempt. */
export interface Decision {
  /**
   * The action, or `"stop"` when the strategy has nothing left: the task
   * ends `failed` (or `rolled_back` right after a rollback).
   */
  action: RecoveryAction | "stop";
  /** The chain position of this action; resume the next decision here. */
  step: number;
  /** The rule or chain step that chose it, e.g. `"transient"` or `"chain[0]"`. */
  rule: string;
  /** Why, in words. */
  reason: string;
  /** The error's category. */
  category: ErrorCategory;
  /** For `retry`: milliseconds to wait first. */
  delayMs?: number;
}

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** The actions of a strategy, and the rule that chose them. */
export function chainOf(
  strategy: Strategy,
  rules: readonly RecoveryRule[],
  error: unknown,
  state: TaskState | undefined,
  classification: ErrorClassification,
): { steps: readonly RecoveryAction[]; rule?: RecoveryRule } {
  if (strategy === "auto") {
    const rule = matchRule(rules, error, state, classification);
    if (!rule) return { steps: ["fail"] };
    return {
      steps: rule.then ? [rule.action, rule.then] : [rule.action],
      rule,
    };
  }
  return { steps: typeof strategy === "string" ? [strategy] : strategy };
}

/**
 * Decides what to do after a failed attempt, without side effects: walks
 * the strategy's chain from `step`, passing over a `retry` whose attempts
 * are spent or whose error cannot be helped by retrying. Errors may carry
 * overrides, which win over rules: `retryable: false` passes over every
 * `retry`, and `retryAfterMs` sets the delay. For `"auto"`, the first
 * matching rule gives the chain `[action, then]`; a different rule than
 * last time starts its chain from the beginning.
 *
 * @param input The error, the strategy, the position and the budget.
 * @returns The decision.
 *
 * @example Retry, then escalate once attempts are spent
 * ```ts
 * import { decideRecovery } from "@sturdy/sturdy/recovery";
 * import { resolveRetryPolicy } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const policy = resolveRetryPolicy({ maxAttempts: 2, minDelay: 100, jitter: "none" });
 * const input = {
 *   error: new Error("flaky"),
 *   strategy: ["retry", "escalate"] as const,
 *   rules: [],
 *   step: 0,
 *   policy,
 * };
 * assert.deepEqual(
 *   [decideRecovery({ ...input, attemptsMade: 1 }).action,
 *    decideRecovery({ ...input, attemptsMade: 1 }).delayMs],
 *   ["retry", 100],
 * );
 * assert.equal(decideRecovery({ ...input, attemptsMade: 2 }).action, "escalate");
 * ```
 */
export function decideRecovery(input: DecideInput): Decision {
  const classification = input.classification ?? classifyError(input.error);
  const category = classification.category;
  const { steps, rule } = chainOf(
    input.strategy,
    input.rules,
    input.error,
    input.state,
    classification,
  );
  // A different rule than last time starts its own chain afresh.
  let step = input.strategy === "auto" && rule?.name !== input.rule
    ? 0
    : input.step;
  const label = (i: number) =>
    rule ? rule.name : input.strategy === "auto" ? "none" : `chain[${i}]`;
  const override = field(input.error, "retryable");
  const hint = field(input.error, "retryAfterMs");
  for (; step < steps.length; step++) {
    const action = steps[step]!;
    if (action !== "retry") {
      return {
        action,
        step,
        rule: label(step),
        reason: rule?.reason ?? `strategy step ${step + 1}: ${action}`,
        category,
      };
    }
    if (category === "cancelled" || override === false) continue;
    // An explicit rule chose retry for this error; a plain chain retries
    // only what retrying can help.
    if (!rule && !classification.retryable) continue;
    const maxAttempts = rule?.attempts ?? input.policy.maxAttempts;
    if (input.attemptsMade >= maxAttempts) continue;
    const policy = rule?.delay !== undefined
      ? {
        ...input.policy,
        minDelay: rule.delay,
        maxDelay: Math.max(rule.delay, input.policy.maxDelay),
      }
      : input.policy;
    const delayMs = typeof hint === "number" && Number.isFinite(hint) &&
        hint >= 0
      ? hint
      : classification.delayHintMs ??
        computeDelay(
          policy,
          Math.max(0, input.attemptsMade - 1),
          input.previousDelay ?? policy.minDelay,
        );
    return {
      action: "retry",
      step,
      rule: label(step),
      reason: rule?.reason ??
        `${category} error (${classification.reason}): retry ${
          input.attemptsMade + 1
        }/${maxAttempts}`,
      category,
      delayMs: Math.round(delayMs),
    };
  }
  const why = override === false
    ? "the error says it is not retryable"
    : !classification.retryable && steps.includes("retry") && !rule
    ? `${category} error (${classification.reason}): retrying cannot help`
    : steps.includes("retry")
    ? "attempts spent"
    : "strategy spent";
  return {
    action: "stop",
    step,
    rule: label(step),
    reason: why,
    category,
  };
}
