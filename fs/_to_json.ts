// JSON serialisation that refuses what JSON.stringify would silently drop
// or mangle, and says where in the value the problem is.

import { findJsonProblem, jsonPointer } from "./json_problem.ts";
import { writeFailure } from "./_write_error.ts";

/**
 * `JSON.stringify(value, null, space)`, but a function, symbol, bigint,
 * non-finite number, cycle, or an undefined top-level value is a
 * FileWriteError with code `invalid_data` naming where it is.
 */
export function toJson(
  value: unknown,
  space: number | string | undefined,
  operation: string,
  path: string,
): string {
  const problem = findJsonProblem(value);
  if (problem) {
    const where = problem.path.length === 0
      ? "the value"
      : jsonPointer(problem.path);
    throw writeFailure(
      "invalid_data",
      operation,
      path,
      `${where} ${problem.reason}, which JSON cannot hold; convert it first`,
    );
  }
  return JSON.stringify(value, null, space);
}
