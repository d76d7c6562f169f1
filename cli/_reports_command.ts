// `sturdy reports`: the I/O failures Sturdy recorded under
// <home>/reports/io, newest first.

import { ErrorReporter } from "../fs/mod.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader } from "./_flags.ts";

/** `sturdy reports --help`. */
export const REPORTS_HELP = `Show recorded I/O failures, newest first.

Usage:
  sturdy reports [options]

Options:
  --operation OP   Only failures of this call, e.g. writeJson, readText, scanDir
  --path P         Only failures on P or on paths inside the directory P
  --since D        Only failures in the last D, e.g. 1h or 7d
  --limit N        At most N reports (default: 20)

${GLOBAL_HELP}

Reports are written by Sturdy's file calls (and by "sturdy read", "write" and "scan")
to <home>/reports/io/*.jsonl, rotated by size and count so they stay small.

Examples:
  sturdy reports
  sturdy reports --operation writeJson --since 1h
  sturdy reports --json --limit 100 | jq 'group_by(.code) | map({code: .[0].code, n: length})'`;

/** The flags of `sturdy reports`. */
export const REPORTS_OPTIONS = {
  operation: { type: "string" },
  path: { type: "string" },
  since: { type: "string" },
  limit: { type: "string" },
} as const;

/** Runs `sturdy reports`; returns the exit code. */
export async function reportsCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "reports",
    own,
    REPORTS_OPTIONS,
  );
  const flags = new FlagReader("reports");
  if (positionals.length > 0) {
    throw flags.invalid(
      "argument",
      positionals[0]!,
      "reports takes no arguments, only options",
    );
  }
  const limit = flags.integer(values.limit, "--limit", 20, 1);
  const sinceMs = flags.optionalDuration(values.since, "--since");
  const reporter = new ErrorReporter({ dir: ctx.home });
  const reports = await reporter.list({
    limit,
    ...(values.operation === undefined ? {} : { operation: values.operation }),
    ...(values.path === undefined ? {} : { path: values.path }),
    ...(sinceMs === undefined ? {} : { since: Date.now() - sinceMs }),
  });
  if (ctx.json) {
    ctx.result(reports);
    return ExitCode.ok;
  }
  if (reports.length === 0) {
    ctx.warn(`no I/O failures recorded under ${reporter.directory}`);
    return ExitCode.ok;
  }
  for (const r of reports) {
    const tries = r.attempts === 1 ? "1 attempt" : `${r.attempts} attempts`;
    ctx.io.stdout(
      `${r.timestamp}  ${r.operation}  ${r.path}\n  ${r.errorType} (${r.code}, ${tries}): ${r.message}\n`,
    );
  }
  return ExitCode.ok;
}
