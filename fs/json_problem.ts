// What JSON.stringify would silently drop or mangle in a value, and where.
// Shared by fs/'s JSON writers and checkpoint/'s state serialiser.
//
// Two passes: a fast one that allocates nothing (no path kept, no cycle
// tracking: a cycle recurses until the stack overflows, read as "not
// sure"), and, only when it is not sure, a precise walk that names the
// first problem by its JSON pointer. The fast pass walks objects with
// for-in, a superset of the own enumerable keys JSON.stringify writes, so
// it can wrongly say "not sure" but never wrongly "fine".

/** A value JSON cannot hold faithfully, and where it is. */
export interface JsonProblem {
  /** The keys and indexes leading to it; empty for the value itself. */
  path: (string | number)[];
  /** What is wrong, e.g. `"is a function"` or `"is NaN"`. */
  reason: string;
}

/**
 * Finds the first place in `value` that `JSON.stringify` would drop or
 * mangle: a function, symbol, bigint, non-finite number, a cycle, or an
 * undefined top-level value. `toJSON` is applied as `JSON.stringify`
 * applies it.
 *
 * @param value Anything.
 * @returns The problem, or `undefined` when JSON holds the value faithfully.
 *
 * @example Find a function deep in a value
 * ```ts
 * import { findJsonProblem, jsonPointer } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * assert.equal(findJsonProblem({ a: [1, "x", null] }), undefined);
 * const problem = findJsonProblem({ a: [1, () => {}] });
 * assert.equal(problem?.reason, "is a function");
 * assert.equal(jsonPointer(problem!.path), '"/a/1"');
 * ```
 */
export function findJsonProblem(value: unknown): JsonProblem | undefined {
  if (value === undefined) return { path: [], reason: "is undefined" };
  try {
    if (plainJson(value, "")) return undefined;
  } catch (err) {
    // A cycle (or a value deeper than the stack): the precise walk names
    // the cycle, or overflows just the same.
    if (!(err instanceof RangeError)) throw err;
  }
  return preciseProblem(value);
}

/**
 * A JSON pointer for messages, quoted: `"/messages/3/content"` (with `~`
 * and `/` escaped as RFC 6901 says).
 *
 * @param path Keys and indexes.
 * @returns The quoted pointer; `""` for the empty path.
 *
 * @example Point at a nested key
 * ```ts
 * import { jsonPointer } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * assert.equal(jsonPointer(["a/b", 0]), '"/a~1b/0"');
 * ```
 */
export function jsonPointer(path: readonly (string | number)[]): string {
  return `"${
    path.map((p) => "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1"))
      .join("")
  }"`;
}

function resolveToJson(value: unknown, key: string): unknown {
  if (value !== null && typeof value === "object" && "toJSON" in value) {
    const toJSON = (value as { toJSON: unknown }).toJSON;
    if (typeof toJSON === "function") return toJSON.call(value, key);
  }
  return value;
}

function plainJson(
  v: unknown,
  key: string | number,
  resolved = false,
): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
    case "undefined":
      return true;
    case "number":
      return v - v === 0; // finite
    case "object": {
      if (v === null) return true;
      if (!resolved) {
        const toJSON = (v as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === "function") {
          return plainJson(toJSON.call(v, String(key)), key, true);
        }
      }
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          if (!plainItem(v[i], i)) return false;
        }
        return true;
      }
      for (const k in v) {
        if (!plainItem((v as Record<string, unknown>)[k], k)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// The common leaves inline, so most items cost no call.
function plainItem(item: unknown, key: string | number): boolean {
  const t = typeof item;
  if (t === "string" || t === "boolean" || t === "undefined") return true;
  if (t === "number") return (item as number) - (item as number) === 0;
  return plainJson(item, key);
}

function preciseProblem(value: unknown): JsonProblem | undefined {
  const ancestors = new Set<object>();
  const at: (string | number)[] = [];
  const check = (raw: unknown, key: string): string | undefined => {
    const v = resolveToJson(raw, key);
    switch (typeof v) {
      case "function":
        return "is a function";
      case "symbol":
        return "is a symbol";
      case "bigint":
        return "is a bigint";
      case "number":
        return Number.isFinite(v) ? undefined : `is ${v}`;
      case "object": {
        if (v === null) return undefined;
        if (ancestors.has(v)) {
          return "refers back to an enclosing value (a cycle)";
        }
        ancestors.add(v);
        const entries: Array<[string | number, unknown]> = Array.isArray(v)
          ? v.map((item, i) => [i, item])
          : Object.entries(v);
        for (const [k, item] of entries) {
          if (item === undefined) continue;
          at.push(k);
          const why = check(item, String(k));
          if (why !== undefined) return why;
          at.pop();
        }
        ancestors.delete(v);
        return undefined;
      }
      default:
        return undefined;
    }
  };
  const reason = check(value, "");
  return reason === undefined ? undefined : { path: at, reason };
}
