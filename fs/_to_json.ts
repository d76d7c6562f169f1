// JSON serialisation that refuses what JSON.stringify would silently drop
// or mangle, and says where in the value the problem is.

import { writeFailure } from "./_write_error.ts";

function pointer(path: readonly (string | number)[]): string {
  return path.length === 0 ? "the value" : `"/${path.join("/")}"`;
}

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
  const bad = (at: (string | number)[], why: string): never => {
    throw writeFailure(
      "invalid_data",
      operation,
      path,
      `${pointer(at)} ${why}, which JSON cannot hold; convert it first`,
    );
  };
  const ancestors = new Set<object>();
  const check = (v: unknown, key: string, at: (string | number)[]): void => {
    if (v !== null && typeof v === "object" && "toJSON" in v) {
      const toJSON = (v as { toJSON: unknown }).toJSON;
      if (typeof toJSON === "function") v = toJSON.call(v, key);
    }
    switch (typeof v) {
      case "function":
        return bad(at, "is a function");
      case "symbol":
        return bad(at, "is a symbol");
      case "bigint":
        return bad(at, "is a bigint");
      case "number":
        if (!Number.isFinite(v)) bad(at, `is ${v}`);
        return;
      case "object": {
        if (v === null) return;
        if (ancestors.has(v)) bad(at, "refers back to itself (a cycle)");
        ancestors.add(v);
        if (Array.isArray(v)) {
          v.forEach((item, i) => {
            if (item === undefined) return;
            at.push(i);
            check(item, String(i), at);
            at.pop();
          });
        } else {
          for (const [k, item] of Object.entries(v)) {
            if (item === undefined) continue;
            at.push(k);
            check(item, k, at);
            at.pop();
          }
        }
        ancestors.delete(v);
      }
    }
  };
  if (value === undefined) bad([], "is undefined");
  check(value, "", []);
  return JSON.stringify(value, null, space);
}
