// `sturdy read FILE`: the file's bytes on stdout, retried on transient
// errors (EBUSY, EAGAIN, EIO, EMFILE…) and bounded by a timeout, so a
// script reading from flaky or network storage fails clearly instead of
// hanging.

import { ErrorReporter, readBytes } from "../fs/mod.ts";
import { retryPresets } from "../retry/mod.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
} from "./_context.ts";
import { CliError } from "./_cli_error.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader, single } from "./_flags.ts";

/** `sturdy read --help`. */
export const READ_HELP =
  `Print FILE to stdout, retrying transient errors and giving up after a timeout.

Usage:
  sturdy read FILE [options]

Options:
  --retries N    Retries after the first attempt, for transient errors only (default: 3)
  --timeout D    Give up after D in all (default: none)

${GLOBAL_HELP}

With --json, stdout holds {"path", "bytes", "text"} (the file must be UTF-8).
Failures are recorded under <home>/reports/io (see "sturdy reports").

Examples:
  sturdy read /mnt/share/config.json | jq .
  sturdy read --retries 5 --timeout 30s data/export.csv > export.csv`;

/** The flags of `sturdy read`. */
export const READ_OPTIONS = {
  retries: { type: "string" },
  timeout: { type: "string" },
} as const;

/** Runs `sturdy read`; returns the exit code. */
export async function readCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs("read", own, READ_OPTIONS);
  const flags = new FlagReader("read");
  const file = single(positionals, "read", "FILE");
  const retries = flags.integer(values.retries, "--retries", 3, 0);
  const timeout = flags.optionalDuration(values.timeout, "--timeout");
  await using reporter = new ErrorReporter({ dir: ctx.home });
  const bytes = await readBytes(file, {
    retry: { ...retryPresets.fileIo, maxAttempts: retries + 1 },
    ...(timeout === undefined ? {} : { timeout }),
    reporter,
    context: { command: "sturdy read" },
  });
  if (ctx.json) {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new CliError(
        `"${file}" is not UTF-8 text, so it cannot be shown as JSON`,
        ExitCode.failed,
        "Read it without --json to get its bytes",
      );
    }
    ctx.result({ path: file, bytes: bytes.byteLength, text });
  } else if (ctx.io.stdoutBytes) {
    ctx.io.stdoutBytes(bytes);
  } else {
    ctx.io.stdout(new TextDecoder().decode(bytes));
  }
  return ExitCode.ok;
}
