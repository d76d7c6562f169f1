import {
  classifyError,
  type ErrorCategory,
  type ErrorClassification,
  httpStatus,
} from "../retry/mod.ts";
import { RecoveryError } from "./errors.ts";
import { RECOVERY_ACTIONS, type RecoveryAction } from "./types.ts";
import type { TaskState } from "./types.ts";

/** The categories retry/'s classification gives, for rule validation. */
const CATEGORIES: readonly ErrorCategory[] = [
  "network",
  "rate_limit",
  "resource",
  "transient",
  "timeout",
  "permanent",
  "cancelled",
];

/**
 * What a rule matches, as data. Every key given must match (and); a list
 * matches any of its items (or).
 */
export interface RuleMatch {
  /** retry/'s category of the error (`classifyError`). */
  category?: ErrorCategory | readonly ErrorCategory[];
  /** `error.name`, e.g. `"PermissionDenied"`. */
  name?: string | readonly string[];
  /** `error.code`, e.g. `"ENOSPC"` or `"corrupt_checkpoint"`. */
  code?: string | readonly string[];
  /** The HTTP status (`status`, `statusCode` or `response.status`). */
  status?: number | readonly number[];
  /** A substring of, or a pattern for, the message. */
  message?: string | RegExp;
}

/** A rule's test as code: the error and the task's state. */
export type RulePredicate = (error: unknown, state: TaskState) => boolean;

/**
 * One row of the rule table used by strategy `"auto"`: the first rule
 * whose `match` matches the error decides the action.
 */
export interface RecoveryRule {
  /** A name for logs, stats and errors. */
  name: string;
  /** What it matches; `"*"` matches everything (the last row). */
  match: RuleMatch | RulePredicate | "*";
  /** What to do. */
  action: RecoveryAction;
  /**
   * What to do when the action is spent: after `retry` runs out of
   * attempts, after `rollback`, after `manual` times out.
   *
   * @default {undefined} (stop: status `failed`, or `rolled_back` right
   * after a rollback)
   */
  then?: RecoveryAction;
  /**
   * Why, in words; logged with every decision.
   *
   * @default {the rule's name}
   */
  reason?: string;
  /**
   * For `retry`: total runs allowed (overrides the manager's).
   *
   * @default {the manager's retry.maxAttempts}
   */
  attempts?: number;
  /**
   * For `retry`: the first delay in ms (overrides the manager's).
   *
   * @default {the manager's retry.minDelay}
   */
  delay?: number;
}

/**
 * The rules strategy `"auto"` uses unless given others:
 * 1. `corruption` — codes `corrupt_checkpoint`, `invalid_json`,
 *    `EBADMSG`, a `SyntaxError`, or an error with `corrupt: true`: roll back.
 * 2. `permission` — `PermissionDenied`, `NotCapable`, `EACCES`, `EPERM`,
 *    HTTP 401 and 403: escalate to a person.
 * 3. `rate-limit` — HTTP 429: retry (5 attempts, honouring `Retry-After`).
 * 4. `transient` — network, transient, timeout and resource errors: retry
 *    (3 attempts, 2 s first delay).
 * 5. `default` — anything else (permanent errors, cancellations): fail.
 *
 * @example Inspect the defaults
 * ```ts
 * import { DEFAULT_RULES } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(DEFAULT_RULES.map((r) => `${r.name}:${r.action}`), [
 *   "corruption:rollback",
 *   "permission:escalate",
 *   "rate-limit:retry",
 *   "transient:retry",
 *   "default:fail",
 * ]);
 * ```
 */
export const DEFAULT_RULES: readonly RecoveryRule[] = Object.freeze(
  [
    {
      name: "corruption",
      match: (error: unknown) =>
        matches(error, {
          code: ["corrupt_checkpoint", "invalid_json", "EBADMSG"],
        }) || matches(error, { name: "SyntaxError" }) ||
        fieldOf(error, "corrupt") === true,
      action: "rollback",
      reason: "data looks corrupt: restore the state from before the task",
    },
    {
      name: "permission",
      match: (error: unknown) =>
        matches(error, { name: ["PermissionDenied", "NotCapable"] }) ||
        matches(error, { code: ["EACCES", "EPERM"] }) ||
        matches(error, { status: [401, 403] }),
      action: "escalate",
      reason: "a permission is missing: a person must grant it",
    },
    {
      name: "rate-limit",
      match: { category: "rate_limit" },
      action: "retry",
      attempts: 5,
      reason: "rate limited: wait as asked and retry",
    },
    {
      name: "transient",
      match: { category: ["network", "transient", "timeout", "resource"] },
      action: "retry",
      attempts: 3,
      delay: 2_000,
      reason: "transient failure: retry with backoff",
    },
    {
      name: "default",
      match: "*",
      action: "fail",
      reason: "permanent failure: retrying cannot help",
    },
  ] satisfies RecoveryRule[],
);

function fieldOf(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function oneOf<T>(want: T | readonly T[] | undefined, got: T): boolean {
  if (want === undefined) return true;
  return Array.isArray(want) ? want.includes(got) : want === got;
}

function matches(
  error: unknown,
  match: RuleMatch,
  classification?: ErrorClassification,
): boolean {
  if (match.category !== undefined) {
    const c = classification ?? classifyError(error);
    if (!oneOf(match.category, c.category)) return false;
  }
  if (match.name !== undefined && !oneOf(match.name, fieldOf(error, "name"))) {
    return false;
  }
  if (match.code !== undefined && !oneOf(match.code, fieldOf(error, "code"))) {
    return false;
  }
  if (match.status !== undefined) {
    const status = httpStatus(error);
    if (status === undefined || !oneOf(match.status, status)) return false;
  }
  if (match.message !== undefined) {
    const message = String(fieldOf(error, "message") ?? error);
    if (
      typeof match.message === "string"
        ? !message.includes(match.message)
        : !match.message.test(message)
    ) return false;
  }
  return true;
}

/**
 * Finds the first rule that matches an error.
 *
 * @param rules The rule table.
 * @param error The task's error.
 * @param state The task's state (for predicate rules).
 * @param classification The error's classification, if already known.
 * @returns The matching rule, or `undefined` when none does.
 *
 * @example Match a disk-full error
 * ```ts
 * import { DEFAULT_RULES, matchRule } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const full = Object.assign(new Error("no space"), { code: "ENOSPC" });
 * assert.equal(matchRule(DEFAULT_RULES, full)?.name, "transient");
 * ```
 */
export function matchRule(
  rules: readonly RecoveryRule[],
  error: unknown,
  state?: TaskState,
  classification?: ErrorClassification,
): RecoveryRule | undefined {
  for (const rule of rules) {
    if (rule.match === "*") return rule;
    if (typeof rule.match === "function") {
      if (rule.match(error, state ?? ({} as TaskState))) return rule;
      continue;
    }
    if (matches(error, rule.match, classification)) return rule;
  }
  return undefined;
}

const MATCH_KEYS = new Set(["category", "name", "code", "status", "message"]);
const RULE_KEYS = new Set([
  "name",
  "match",
  "action",
  "then",
  "reason",
  "attempts",
  "delay",
]);

function ruleError(name: string, index: number, problem: string): never {
  throw new RecoveryError(
    `Invalid recovery rule #${index + 1} "${name}": ${problem}`,
    { code: "invalid_rule", rule: name, operation: "validateRules" },
  );
}

function checkList<T>(
  value: unknown,
  ok: (item: unknown) => item is T,
): boolean {
  return Array.isArray(value) ? value.length > 0 && value.every(ok) : ok(value);
}

/**
 * Checks a rule table and returns it frozen: every rule named (uniquely),
 * a known action and `then`, known categories, sane numbers, and no rule
 * after a `"*"` rule (it could never match).
 *
 * @param rules The rules to check.
 * @returns The same rules, frozen.
 * @throws {RecoveryError} Code `invalid_rule`, naming the rule and what is
 *   wrong with it.
 *
 * @example An unreachable rule is refused
 * ```ts
 * import { validateRules } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => validateRules([
 *   { name: "all", match: "*", action: "fail" },
 *   { name: "late", match: { category: "network" }, action: "retry" },
 * ]), /rule #2 "late": unreachable, rule "all" before it matches everything/);
 * ```
 */
export function validateRules(
  rules: readonly RecoveryRule[],
): readonly RecoveryRule[] {
  if (!Array.isArray(rules) || rules.length === 0) {
    throw new RecoveryError(
      'Invalid recovery rules: give a non-empty array of rules, e.g. [{ name: "all", match: "*", action: "retry" }]',
      { code: "invalid_rule", operation: "validateRules" },
    );
  }
  const names = new Set<string>();
  let catchAll: string | undefined;
  rules.forEach((rule, i) => {
    const name = typeof rule?.name === "string" && rule.name !== ""
      ? rule.name
      : `#${i + 1}`;
    if (typeof rule !== "object" || rule === null) {
      ruleError(name, i, "not an object");
    }
    if (typeof rule.name !== "string" || rule.name === "") {
      ruleError(name, i, "give it a non-empty `name`");
    }
    for (const key of Object.keys(rule)) {
      if (!RULE_KEYS.has(key)) {
        ruleError(
          name,
          i,
          `unknown key "${key}" (known: ${[...RULE_KEYS].join(", ")})`,
        );
      }
    }
    if (names.has(rule.name)) ruleError(name, i, "the name is used twice");
    names.add(rule.name);
    if (catchAll !== undefined) {
      ruleError(
        name,
        i,
        `unreachable, rule "${catchAll}" before it matches everything`,
      );
    }
    if (!RECOVERY_ACTIONS.includes(rule.action)) {
      ruleError(
        name,
        i,
        `unknown action ${JSON.stringify(rule.action)} (use ${
          RECOVERY_ACTIONS.join(", ")
        })`,
      );
    }
    if (rule.then !== undefined && !RECOVERY_ACTIONS.includes(rule.then)) {
      ruleError(
        name,
        i,
        `unknown then ${JSON.stringify(rule.then)} (use ${
          RECOVERY_ACTIONS.join(", ")
        })`,
      );
    }
    if (
      rule.attempts !== undefined &&
      (!Number.isInteger(rule.attempts) || rule.attempts < 1)
    ) {
      ruleError(
        name,
        i,
        `attempts must be an integer >= 1, not ${rule.attempts}`,
      );
    }
    if (
      rule.delay !== undefined &&
      (!Number.isFinite(rule.delay) || rule.delay < 0)
    ) {
      ruleError(
        name,
        i,
        `delay must be a number of ms >= 0, not ${rule.delay}`,
      );
    }
    const match = rule.match;
    if (match === "*") {
      catchAll = rule.name;
    } else if (typeof match === "function") {
      // A predicate; nothing to check until it runs.
    } else if (typeof match === "object" && match !== null) {
      const keys = Object.keys(match);
      if (keys.length === 0) {
        ruleError(name, i, 'an empty match; use "*" to match everything');
      }
      for (const key of keys) {
        if (!MATCH_KEYS.has(key)) {
          ruleError(
            name,
            i,
            `unknown match key "${key}" (known: ${[...MATCH_KEYS].join(", ")})`,
          );
        }
      }
      if (
        match.category !== undefined &&
        !checkList(
          match.category,
          (c): c is ErrorCategory => CATEGORIES.includes(c as ErrorCategory),
        )
      ) {
        ruleError(
          name,
          i,
          `unknown category ${JSON.stringify(match.category)} (use ${
            CATEGORIES.join(", ")
          })`,
        );
      }
      const isString = (v: unknown): v is string =>
        typeof v === "string" && v !== "";
      if (match.name !== undefined && !checkList(match.name, isString)) {
        ruleError(name, i, "match.name must be a string or a list of strings");
      }
      if (match.code !== undefined && !checkList(match.code, isString)) {
        ruleError(name, i, "match.code must be a string or a list of strings");
      }
      if (
        match.status !== undefined &&
        !checkList(
          match.status,
          (v): v is number =>
            typeof v === "number" && Number.isInteger(v) && v >= 100 &&
            v <= 599,
        )
      ) {
        ruleError(
          name,
          i,
          "match.status must be an HTTP status (100-599) or a list of them",
        );
      }
      if (
        match.message !== undefined && typeof match.message !== "string" &&
        !(match.message instanceof RegExp)
      ) {
        ruleError(name, i, "match.message must be a string or a RegExp");
      }
    } else {
      ruleError(name, i, 'match must be an object, a function or "*"');
    }
  });
  return Object.freeze([...rules]);
}

/**
 * Reads a rule table from JSON text (the CLI's `--rules FILE`). The JSON
 * form is an array of rules whose `match` is `"*"` or an object; a
 * `message` given as `"/pattern/flags"` becomes a RegExp.
 *
 * @param text The JSON text.
 * @param source Where it came from, for error messages.
 * @returns The validated rules.
 * @throws {RecoveryError} Code `invalid_rule`.
 *
 * @example Rules from JSON
 * ```ts
 * import { parseRules } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const rules = parseRules(JSON.stringify([
 *   { name: "flaky-api", match: { status: [502, 503] }, action: "retry", attempts: 5 },
 *   { name: "timeouts", match: { message: "/timed? ?out/i" }, action: "retry" },
 *   { name: "rest", match: "*", action: "escalate" },
 * ]));
 * assert.equal(rules.length, 3);
 * assert.ok((rules[1]!.match as { message: RegExp }).message instanceof RegExp);
 * ```
 */
export function parseRules(
  text: string,
  source = "rules",
): readonly RecoveryRule[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RecoveryError(
      `Invalid recovery rules in ${source}: not JSON (${
        (err as Error).message
      }); give an array of rules`,
      { code: "invalid_rule", operation: "parseRules", cause: err },
    );
  }
  if (!Array.isArray(data)) {
    throw new RecoveryError(
      `Invalid recovery rules in ${source}: expected a JSON array of rules`,
      { code: "invalid_rule", operation: "parseRules" },
    );
  }
  const rules = data.map((rule: unknown) => {
    const match = fieldOf(rule, "match");
    const message = fieldOf(match, "message");
    if (typeof message !== "string") return rule;
    const re = /^\/(.*)\/([a-z]*)$/s.exec(message);
    if (!re) return rule;
    try {
      return {
        ...(rule as object),
        match: { ...(match as object), message: new RegExp(re[1]!, re[2]) },
      };
    } catch (err) {
      throw new RecoveryError(
        `Invalid recovery rule "${
          fieldOf(rule, "name")
        }" in ${source}: match.message ${
          JSON.stringify(message)
        } is not a valid pattern (${(err as Error).message})`,
        {
          code: "invalid_rule",
          rule: String(fieldOf(rule, "name")),
          operation: "parseRules",
        },
      );
    }
  });
  return validateRules(rules as RecoveryRule[]);
}
