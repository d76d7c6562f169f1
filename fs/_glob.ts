// Compiles glob patterns once into a RegExp over whole relative paths (for
// entries) and a per-segment form (to decide, per directory, whether
// anything below it could match, so a walk can skip it unread).
//
// Syntax: `*` (any run of characters but `/`), `?` (one character but
// `/`), `[abc]`, `[a-z]`, `[!abc]`/`[^abc]`, POSIX classes such as
// `[[:digit:]]`, `{a,b}` alternatives (nested, may contain `/`), `**` as a
// whole segment (zero or more segments, so `src/**` also matches `src`),
// `\` escapes the next character, a leading `./` is ignored and a trailing
// `/` matches directories only. Paths use `/` and are relative to the walk's
// root. Wildcards match names starting with a dot too, as in .gitignore.

/** A pattern that cannot be compiled. */
export class GlobSyntaxError extends Error {
  /** Creates the error. */
  constructor(readonly pattern: string, why: string) {
    super(why);
    this.name = "GlobSyntaxError";
  }
}

/** One brace-free alternative of a pattern, split into segments. */
interface Alternative {
  /** `"**"` or an anchored RegExp matching one path segment. */
  segments: Array<RegExp | "**">;
}

/** A compiled pattern (or several, matched as one). */
export interface GlobMatcher {
  /**
   * Whether `path` (relative, `/`-separated, no leading `./`) matches;
   * `isDir` lets patterns ending in `/` match directories only.
   */
  match(path: string, isDir: boolean): boolean;
  /**
   * Whether some path strictly below the directory `dir` (given as its
   * segments) could match, judging by the directory names alone.
   */
  couldMatchBelow(dir: readonly string[]): boolean;
}

const MAX_ALTERNATIVES = 1_024;

const POSIX_CLASSES: Record<string, string> = {
  alnum: "a-zA-Z0-9",
  alpha: "a-zA-Z",
  ascii: "\\x00-\\x7F",
  blank: " \\t",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "\\x21-\\x7E",
  lower: "a-z",
  print: "\\x20-\\x7E",
  punct: "!-\\/:-@\\[-`{-~",
  space: " \\t\\r\\n\\v\\f",
  upper: "A-Z",
  word: "\\w",
  xdigit: "0-9A-Fa-f",
};

/**
 * Compiles patterns into one matcher that matches a path when any pattern
 * does. An empty list matches nothing.
 *
 * @param patterns Glob patterns (without a leading `!`).
 * @returns The matcher.
 * @throws {GlobSyntaxError} For an empty pattern or an unclosed `[`.
 */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  const files: string[] = [];
  const dirs: string[] = [];
  const alternatives: Alternative[] = [];
  for (const raw of patterns) {
    if (typeof raw !== "string" || raw === "") {
      throw new GlobSyntaxError(String(raw), "the pattern is empty");
    }
    let pattern = raw;
    while (pattern.startsWith("./")) pattern = pattern.slice(2);
    const dirOnly = pattern.length > 1 && pattern.endsWith("/") &&
      !pattern.endsWith("\\/");
    if (dirOnly) pattern = pattern.replace(/\/+$/, "");
    for (const alternative of expandBraces(pattern, raw)) {
      const segments = alternative.split("/").filter((s, i, all) =>
        // `a//b` is `a/b`; `**/**` is `**`.
        s !== "" && !(s === "**" && all[i - 1] === "**")
      );
      const source = segmentsSource(segments, raw);
      dirs.push(source);
      if (!dirOnly) files.push(source);
      alternatives.push({
        segments: segments.map((s) =>
          s === "**" ? "**" : new RegExp(`^${segmentSource(s, raw)}$`, "u")
        ),
      });
    }
  }
  const fileRe = files.length === 0 ? /(?!)/ : new RegExp(
    `^(?:${files.join("|")})$`,
    "u",
  );
  const dirRe = dirs.length === 0 ? /(?!)/ : new RegExp(
    `^(?:${dirs.join("|")})$`,
    "u",
  );
  return {
    match: (path, isDir) => (isDir ? dirRe : fileRe).test(path),
    couldMatchBelow: (dir) =>
      alternatives.some((alt) => couldMatchBelow(alt.segments, dir)),
  };
}

/** Splits `{a,b}` alternatives out of a pattern (nested braces too). */
export function expandBraces(pattern: string, raw = pattern): string[] {
  const open = findUnescaped(pattern, "{", 0);
  if (open < 0) return [pattern];
  // Find the matching close brace and the top-level commas in between.
  let depth = 0;
  const commas: number[] = [];
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c === "{") depth++;
    else if (c === "}" && --depth === 0) {
      close = i;
      break;
    } else if (c === "," && depth === 1) commas.push(i);
  }
  // An unclosed brace or one without a comma is literal text.
  if (close < 0 || commas.length === 0) {
    const rest = close < 0 ? [] : expandBraces(pattern.slice(open + 1), raw);
    if (close < 0) return [pattern];
    return rest.map((r) => pattern.slice(0, open + 1) + r);
  }
  const head = pattern.slice(0, open);
  const tails = expandBraces(pattern.slice(close + 1), raw);
  const bounds = [open, ...commas, close];
  const out: string[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const middle = pattern.slice(bounds[k]! + 1, bounds[k + 1]);
    for (const m of expandBraces(middle, raw)) {
      for (const t of tails) {
        out.push(head + m + t);
        if (out.length > MAX_ALTERNATIVES) {
          throw new GlobSyntaxError(
            raw,
            `its braces expand to more than ${MAX_ALTERNATIVES} alternatives`,
          );
        }
      }
    }
  }
  return out;
}

function findUnescaped(s: string, ch: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === ch) return i;
  }
  return -1;
}

/** The RegExp source of a whole brace-free pattern, split at `/`. */
function segmentsSource(segments: string[], raw: string): string {
  let out = "";
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === "**") {
      // Zero or more whole segments: `a/**/b` matches `a/b` and `a/x/y/b`;
      // a trailing `a/**` matches `a` itself and everything below it.
      if (last) out += i === 0 ? "[^]*" : "(?:/[^]*)?";
      else out += i === 0 ? "(?:[^/]+/)*" : "(?:[^/]+/)*";
      continue;
    }
    out += segmentSource(s, raw);
    const next = segments[i + 1];
    if (!last && !(next === "**" && i + 1 === segments.length - 1)) {
      out += "/";
    }
  }
  return out;
}

/** The RegExp source matching one segment (no `/` inside). */
function segmentSource(segment: string, raw: string): string {
  let out = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "\\") {
      i++;
      out += escape(segment[i] ?? "\\");
    } else if (c === "*") {
      while (segment[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const [source, end] = bracket(segment, i, raw);
      out += source;
      i = end;
    } else out += escape(c);
  }
  return out;
}

/** Translates the bracket expression starting at `start`; returns its end. */
function bracket(s: string, start: number, raw: string): [string, number] {
  let i = start + 1;
  let negate = false;
  if (s[i] === "!" || s[i] === "^") {
    negate = true;
    i++;
  }
  let body = "";
  let first = true;
  for (; i < s.length; i++, first = false) {
    const c = s[i]!;
    if (c === "]" && !first) {
      if (body === "") break;
      // No class matches the separator, even through a range like `[!-~]`.
      return [negate ? `[^/${body}]` : `(?!/)[${body}]`, i];
    }
    if (c === "[" && s[i + 1] === ":") {
      const end = s.indexOf(":]", i + 2);
      const name = end < 0 ? undefined : s.slice(i + 2, end);
      const cls = name === undefined ? undefined : POSIX_CLASSES[name];
      if (cls === undefined) {
        throw new GlobSyntaxError(
          raw,
          `"[:${name ?? ""}:]" is not a known character class`,
        );
      }
      body += cls;
      i = end + 1;
      continue;
    }
    if (c === "\\") {
      i++;
      body += escapeInClass(s[i] ?? "\\");
      continue;
    }
    body += c === "-" && !first && s[i + 1] !== "]" ? "-" : escapeInClass(c);
  }
  throw new GlobSyntaxError(
    raw,
    `the "[" at position ${
      start + 1
    } has no closing "]" (escape it as "\\[" to match it literally)`,
  );
}

function escape(c: string): string {
  // Only syntax characters may be escaped in a "u" RegExp.
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

function escapeInClass(c: string): string {
  return /[\]\\^\-[]/.test(c) ? `\\${c}` : c;
}

/**
 * Whether a path below `dir` could match: simulates the pattern over the
 * directory's segments and checks that some pattern is left to match.
 */
function couldMatchBelow(
  pattern: Array<RegExp | "**">,
  dir: readonly string[],
): boolean {
  // States: indexes into the pattern reached after the segments so far.
  let states = new Set<number>([0]);
  for (const name of dir) {
    const next = new Set<number>();
    for (const s of closure(pattern, states)) {
      const p = pattern[s];
      if (p === undefined) continue;
      if (p === "**") next.add(s); // `**` swallows this segment
      else if (p.test(name)) next.add(s + 1);
    }
    if (next.size === 0) return false;
    states = next;
  }
  for (const s of closure(pattern, states)) {
    if (s < pattern.length) return true;
  }
  return false;
}

/** Adds the states reached by letting each `**` match zero segments. */
function closure(pattern: Array<RegExp | "**">, states: Set<number>): number[] {
  const out = new Set(states);
  for (const s of out) if (pattern[s] === "**") out.add(s + 1);
  return [...out];
}
