// Turns scanDir's include/exclude lists into three cheap questions asked
// per entry: is it excluded (and so, for a directory, pruned unread)? is
// it included? could anything below this directory be included?

import { DirectoryOperationError } from "./errors.ts";
import { compileGlobs, type GlobMatcher, GlobSyntaxError } from "./_glob.ts";

/** The compiled filter of one walk. */
export interface ScanFilter {
  /** Matches what `exclude` and `!`-patterns of `include` remove. */
  excluded: GlobMatcher | undefined;
  /** Matches what the positive `include` patterns keep (all if unset). */
  included: GlobMatcher | undefined;
  /** Whether descending into every directory could find an include. */
  anyDirMayMatch: boolean;
}

/** Compiles the patterns; bad ones become `invalid_glob` errors. */
export function compileScanFilter(
  root: string,
  include: readonly string[] | undefined,
  exclude: readonly string[] | undefined,
): ScanFilter {
  const positive: string[] = [];
  const negative: string[] = [];
  for (
    const [list, name] of [[include, "include"], [exclude, "exclude"]] as const
  ) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      throw invalid(root, `"${name}" must be an array of glob patterns`);
    }
    for (const pattern of list) {
      if (typeof pattern !== "string") {
        throw invalid(
          root,
          `the ${name} pattern ${String(pattern)} is not a string`,
        );
      }
      // A leading `!` in include means "except": the same as exclude.
      if (name === "include" && pattern.startsWith("!")) {
        negative.push(pattern.slice(1));
      } else if (name === "include") {
        positive.push(pattern.startsWith("\\!") ? pattern.slice(1) : pattern);
      } else negative.push(pattern);
    }
  }
  try {
    return {
      excluded: negative.length ? compileGlobs(negative) : undefined,
      included: positive.length ? compileGlobs(positive) : undefined,
      // A pattern starting with `**` can match below any directory.
      anyDirMayMatch: positive.length === 0 ||
        positive.some((p) => /^(?:\.\/)*\*\*(?:\/|$)/.test(p)),
    };
  } catch (err) {
    if (!(err instanceof GlobSyntaxError)) throw err;
    throw invalid(
      root,
      `the glob pattern "${err.pattern}" is invalid: ${err.message}`,
      err,
    );
  }
}

function invalid(
  root: string,
  why: string,
  cause?: unknown,
): DirectoryOperationError {
  return new DirectoryOperationError(
    `Cannot scan "${root}": ${why}; fix the pattern`,
    {
      code: "invalid_glob",
      path: root,
      operation: "scanDir",
      ...(cause === undefined ? {} : { cause }),
    },
  );
}
