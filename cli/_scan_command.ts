// `sturdy scan DIR`: the files under DIR that match globs, one per line
// (or as JSON), walking with bounded concurrency and pruning excluded
// directories without reading them.

import {
  type DirectoryOperationError,
  ErrorReporter,
  scanDir,
} from "../fs/mod.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader, single } from "./_flags.ts";

/** `sturdy scan --help`. */
export const SCAN_HELP = `List the files under DIR that match glob patterns.

Usage:
  sturdy scan DIR [options]

Options:
  --include G        Only paths matching G (repeatable; "!G" excludes), e.g. "**/*.ts"
  --exclude G        Skip paths matching G and never enter such directories (repeatable)
  --max-depth N      Descend at most N levels (1 = DIR's own entries)
  --follow-symlinks  Walk into symlinked directories (loops are detected and skipped)
  --dirs             List directories too
  --timeout D        Give up on a directory that takes longer than D to read

${GLOBAL_HELP}

Paths are printed relative to DIR with "/" separators, each directory's entries sorted
by name. Unreadable or vanished directories are skipped with a notice (and recorded under
<home>/reports/io). With --json, stdout holds an array of {path, type, depth}.

Examples:
  sturdy scan src --include "**/*.ts" --exclude "**/*_test.ts"
  sturdy scan . --exclude node_modules --exclude .git --max-depth 2
  sturdy scan data --include "*.{csv,json}" --json | jq length`;

/** The flags of `sturdy scan`. */
export const SCAN_OPTIONS = {
  include: { type: "string", multiple: true },
  exclude: { type: "string", multiple: true },
  "max-depth": { type: "string" },
  "follow-symlinks": { type: "boolean" },
  dirs: { type: "boolean" },
  timeout: { type: "string" },
} as const;

/** Runs `sturdy scan`; returns the exit code. */
export async function scanCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs("scan", own, SCAN_OPTIONS);
  const flags = new FlagReader("scan");
  const root = single(positionals, "scan", "DIR");
  const maxDepth = flags.integer(
    values["max-depth"],
    "--max-depth",
    Infinity,
    0,
  );
  const timeout = flags.optionalDuration(values.timeout, "--timeout");
  await using reporter = new ErrorReporter({ dir: ctx.home });
  const found: Array<{ path: string; type: string; depth: number }> = [];
  let skipped = 0;
  const entries = scanDir(root, {
    include: values.include ?? [],
    exclude: values.exclude ?? [],
    maxDepth,
    followSymlinks: values["follow-symlinks"] ?? false,
    includeDirs: values.dirs ?? false,
    ...(timeout === undefined ? {} : { timeout }),
    reporter,
    context: { command: "sturdy scan" },
    onSkip: (skip) => {
      skipped++;
      ctx.warn(`skipped ${skip.path}: ${skip.error.message}`);
      reporter.report({
        operation: "scanDir",
        path: skip.path,
        error: skip.error as DirectoryOperationError,
        attempts: skip.error.attempts ?? 1,
        context: { command: "sturdy scan" },
      });
    },
  });
  for await (const entry of entries) {
    const type = entry.isDirectory
      ? "dir"
      : entry.isSymlink
      ? "symlink"
      : "file";
    if (ctx.json) {
      found.push({ path: entry.relativePath, type, depth: entry.depth });
    } else ctx.io.stdout(entry.relativePath + "\n");
  }
  if (ctx.json) ctx.result(found);
  if (skipped > 0) {
    ctx.notice(`${skipped} director${skipped === 1 ? "y" : "ies"} skipped`);
  }
  return ExitCode.ok;
}
