import { EpisodeConfigError, type EpisodeConfigProblem } from "./errors.ts";

/**
 * Builds the error for `problems`: one problem on one line after the file
 * name, several as a count then one indented line each, sorted by line.
 */
export function configError(
  file: string | undefined,
  problems: readonly EpisodeConfigProblem[],
  code = "invalid_config",
  cause?: unknown,
): EpisodeConfigError {
  const sorted = problems
    .map((problem, i) => ({ problem, i }))
    .sort((a, b) =>
      (a.problem.line ?? Infinity) - (b.problem.line ?? Infinity) || a.i - b.i
    )
    .map(({ problem }) => problem);
  const label = file ?? "episode text";
  const message = sorted.length === 1
    ? `${label}: ${describe(sorted[0]!)}`
    : `${label}: ${sorted.length} problems\n${
      sorted.map((problem) => `  ${describe(problem)}`).join("\n")
    }`;
  return new EpisodeConfigError(message, {
    code,
    problems: sorted,
    ...(file !== undefined ? { file } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });
}

function describe(problem: EpisodeConfigProblem): string {
  const path = problem.yamlPath === "" ? "the file " : `${problem.yamlPath}: `;
  const line = problem.line === undefined ? "" : ` (line ${problem.line})`;
  return `${path}${problem.message}${line}`;
}

/** A problem, with `line` left out when it is unknown. */
export function problem(
  yamlPath: string,
  message: string,
  line: number | undefined,
): EpisodeConfigProblem {
  return line === undefined
    ? { yamlPath, message }
    : { yamlPath, line, message };
}
