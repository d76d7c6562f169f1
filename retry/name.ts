import { SturdyError } from "./sturdy_error.ts";

const NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Checks a user-supplied name that will become part of a path (a lock name,
 * agent id, task id, breaker name) and returns it unchanged when it is safe:
 * 1–128 characters of `[A-Za-z0-9._-]`, and not `.` or `..`.
 *
 * @param value The name to check.
 * @param kind What the name is for, used in the error message.
 * @returns `value`, typed as a string.
 * @throws {SturdyError} With code `invalid_name` when the name is unsafe.
 *
 * @example Accept a good name, refuse traversal
 * ```ts
 * import { validateName } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateName("deploy-1", "lock name"), "deploy-1");
 * assert.throws(() => validateName("../etc", "lock name"), {
 *   code: "invalid_name",
 * });
 * ```
 */
export function validateName(value: unknown, kind = "name"): string {
  if (
    typeof value === "string" && NAME_PATTERN.test(value) && value !== "." &&
    value !== ".."
  ) {
    return value;
  }
  const shown = typeof value === "string"
    ? JSON.stringify(value.length > 140 ? value.slice(0, 140) + "…" : value)
    : String(value);
  throw new SturdyError(
    `Invalid ${kind} ${shown}: use 1-128 characters from A-Z a-z 0-9 . _ - (not "." or "..")`,
    { code: "invalid_name" },
  );
}
