// Field readers for the episode file. Each reader checks one value, records
// a problem (path, line, message) when it is wrong, and returns `undefined`
// so the caller can fall back to a default and keep checking: the user gets
// every problem in one run instead of one per run.

import { parseDuration, validateName } from "../retry/mod.ts";
import type { EpisodeConfigProblem } from "./errors.ts";
import { problem } from "./_problems.ts";
import { formatPath, type PathSegment, type YamlSource } from "./_yaml.ts";

/** A checked mapping: the YAML object, never with inherited keys. */
export type Mapping = Readonly<Record<string, unknown>>;

/** Options of {@linkcode Fields.duration}. */
interface DurationRule {
  /** Refuse zero. */
  positive?: boolean;
}

/** Collects problems while reading values out of one parsed file. */
export class Fields {
  readonly problems: EpisodeConfigProblem[] = [];
  readonly #source: YamlSource;

  constructor(source: YamlSource) {
    this.#source = source;
  }

  /** Records a problem at `path`; always returns `undefined`. */
  report(
    path: readonly PathSegment[],
    message: string,
    at: "key" | "value" = "value",
  ): undefined {
    this.problems.push(
      problem(formatPath(path), message, this.#source.line(path, at)),
    );
    return undefined;
  }

  /**
   * A mapping whose keys are all in `allowed`; unknown keys are reported
   * with a "did you mean" suggestion. `null` (a key with nothing after it)
   * counts as an empty mapping.
   */
  mapping(
    value: unknown,
    path: readonly PathSegment[],
    allowed: readonly string[] | undefined,
  ): Mapping | undefined {
    if (value === null) return {};
    if (!isMapping(value)) {
      return this.report(
        path,
        `must be a mapping (key: value), got ${shown(value)}`,
      );
    }
    if (allowed !== undefined) {
      for (const key of Object.keys(value)) {
        if (allowed.includes(key)) continue;
        const guess = suggest(key, allowed);
        this.report(
          [...path, key],
          guess === undefined
            ? `unknown key, expected one of: ${allowed.join(", ")}`
            : `unknown key, did you mean "${guess}"?`,
          "key",
        );
      }
    }
    return value;
  }

  /** A list, or `[]` for `null`. */
  list(value: unknown, path: readonly PathSegment[]): unknown[] | undefined {
    if (value === null) return [];
    if (!Array.isArray(value)) {
      return this.report(path, `must be a list, got ${shown(value)}`);
    }
    return value;
  }

  /** A whole number from `min` to `max`. */
  integer(
    value: unknown,
    path: readonly PathSegment[],
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number | undefined {
    if (
      typeof value === "number" && Number.isSafeInteger(value) &&
      value >= min && value <= max
    ) return value;
    const range = max === Number.MAX_SAFE_INTEGER
      ? `of ${min} or more`
      : `from ${min} to ${max}`;
    return this.report(
      path,
      `must be a whole number ${range}, got ${shown(value)}`,
    );
  }

  /** A duration string (`30s`) or a whole number of milliseconds. */
  duration(
    value: unknown,
    path: readonly PathSegment[],
    rule: DurationRule = {},
  ): number | undefined {
    let ms: number | undefined;
    if (typeof value === "string") {
      try {
        ms = parseDuration(value);
      } catch {
        return this.report(
          path,
          `${shown(value)} is not a duration, use e.g. 250ms, 1.5s, 2m, 1h, 7d`,
        );
      }
    } else if (typeof value === "number") {
      if (!Number.isSafeInteger(value) || value < 0) {
        return this.report(
          path,
          `${value} is not a duration, use a whole number of milliseconds or e.g. 250ms, 1.5s, 2m, 1h, 7d`,
        );
      }
      ms = value;
    } else {
      return this.report(
        path,
        `must be a duration such as 30s or a number of milliseconds, got ${
          shown(value)
        }`,
      );
    }
    if (rule.positive && ms === 0) {
      return this.report(path, `must be longer than 0, got ${shown(value)}`);
    }
    return ms;
  }

  /** A non-empty string without NUL characters. */
  string(value: unknown, path: readonly PathSegment[]): string | undefined {
    if (typeof value !== "string" || value === "") {
      return this.report(
        path,
        `must be a non-empty string, got ${shown(value)}`,
      );
    }
    if (value.includes("\0")) {
      return this.report(path, "must not contain a NUL character");
    }
    return value;
  }

  /** `true` or `false`. */
  boolean(value: unknown, path: readonly PathSegment[]): boolean | undefined {
    if (typeof value === "boolean") return value;
    return this.report(path, `must be true or false, got ${shown(value)}`);
  }

  /** One of `choices`, suggesting the closest on a typo. */
  oneOf<T extends string>(
    value: unknown,
    path: readonly PathSegment[],
    choices: readonly T[],
  ): T | undefined {
    if (
      typeof value === "string" &&
      (choices as readonly string[]).includes(value)
    ) {
      return value as T;
    }
    const guess = typeof value === "string"
      ? suggest(value, choices)
      : undefined;
    return this.report(
      path,
      `must be one of ${choices.join(", ")}, got ${shown(value)}${
        guess === undefined ? "" : `; did you mean "${guess}"?`
      }`,
    );
  }

  /** A name safe to use in a path (see `validateName`). */
  name(
    value: unknown,
    path: readonly PathSegment[],
    kind: string,
  ): string | undefined {
    try {
      return validateName(value, kind);
    } catch {
      return this.report(
        path,
        `${
          shown(value)
        } is not a valid ${kind}, use 1-128 characters from A-Z a-z 0-9 . _ - (not "." or "..")`,
      );
    }
  }

  /** A command line as an argv list: one or more non-empty strings. */
  argv(value: unknown, path: readonly PathSegment[]): string[] | undefined {
    if (!Array.isArray(value) || value.length === 0) {
      return this.report(
        path,
        `must be a non-empty list of strings such as ["deno", "run", "main.ts"], got ${
          shown(value)
        }`,
      );
    }
    return this.strings(value, path);
  }

  /** Every item of `items` as a non-empty string, or `undefined`. */
  strings(
    items: readonly unknown[],
    path: readonly PathSegment[],
  ): string[] | undefined {
    const out = items.map((item, i) => this.string(item, [...path, i]));
    return out.every((item) => item !== undefined)
      ? out as string[]
      : undefined;
  }
}

/** Whether `value` is a plain YAML mapping (not a list, not null). */
export function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `map[key]` if `map` has that key itself, else `undefined`. */
export function field(map: Mapping, key: string): unknown {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

/** How a value reads in a message: strings quoted, collections named. */
export function shown(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) {
    return value.length === 0 ? "an empty list" : "a list";
  }
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  }
  return String(value);
}

/**
 * The candidate `word` was most likely meant to be: the same word ignoring
 * case, `-` and `_`, or else the closest within a small edit distance.
 */
export function suggest(
  word: string,
  candidates: readonly string[],
): string | undefined {
  const plain = (text: string) => text.toLowerCase().replace(/[-_]/g, "");
  const exact = candidates.find((candidate) =>
    plain(candidate) === plain(word)
  );
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const limit = Math.max(1, Math.floor(candidate.length / 3));
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Edit distance counting an insertion, a deletion, a substitution or a swap
 * of two neighbours as one edit (optimal string alignment), so "biuld" is
 * one edit from "build".
 */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return Infinity; // not a typo
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, before[j - 2]! + 1);
      }
      current[j] = best;
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}
