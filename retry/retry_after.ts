/** Anything a `Retry-After` hint can be read from. */
export type RetryAfterSource =
  | string
  | number
  | Headers
  | Response
  | Record<string, string | string[] | undefined>
  | null
  | undefined;

/** Options for {@linkcode parseRetryAfter}. */
export interface ParseRetryAfterOptions {
  /**
   * The current time in ms since the epoch, for HTTP-date values.
   * @default {Date.now()}
   */
  now?: number;
}

const MS_HEADERS = ["retry-after-ms", "x-ms-retry-after-ms"];

/**
 * Reads how long a server asked the client to wait, in milliseconds.
 *
 * Accepts a raw header value — delta-seconds (`"120"`, `"1.5"`) or an HTTP
 * date (`"Wed, 21 Oct 2026 07:28:00 GMT"`) per RFC 9110 — or a `Headers`,
 * a `Response` or a plain header object, where the millisecond variants
 * `retry-after-ms` and `x-ms-retry-after-ms` take precedence over
 * `retry-after`. A number is taken as seconds. Dates in the past give `0`.
 *
 * @param source The value or the headers to read.
 * @param options The current time, for HTTP dates.
 * @returns The wait in milliseconds, or `undefined` when there is no valid hint.
 *
 * @example Seconds, dates and millisecond headers
 * ```ts
 * import { parseRetryAfter } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseRetryAfter("120"), 120_000);
 * const now = Date.parse("2026-10-21T07:28:00Z");
 * assert.equal(
 *   parseRetryAfter("Wed, 21 Oct 2026 07:28:30 GMT", { now }),
 *   30_000,
 * );
 * assert.equal(
 *   parseRetryAfter(new Headers({ "retry-after-ms": "250", "retry-after": "9" })),
 *   250,
 * );
 * assert.equal(parseRetryAfter("soon"), undefined);
 * ```
 */
export function parseRetryAfter(
  source: RetryAfterSource,
  options: ParseRetryAfterOptions = {},
): number | undefined {
  if (source === null || source === undefined) return undefined;
  if (typeof source === "number") {
    return Number.isFinite(source) && source >= 0 ? source * 1000 : undefined;
  }
  if (typeof source === "string") return parseValue(source, options.now);
  const headers = source instanceof Response ? source.headers : source;
  const get = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined;
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() === name) {
        return Array.isArray(value) ? value[0] : value;
      }
    }
    return undefined;
  };
  for (const name of MS_HEADERS) {
    const raw = get(name)?.trim();
    if (raw && /^\d+(\.\d+)?$/.test(raw)) return Number(raw);
  }
  const raw = get("retry-after");
  return raw === undefined ? undefined : parseValue(raw, options.now);
}

function parseValue(raw: string, now = Date.now()): number | undefined {
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  // Only accept something that looks like an HTTP date, not any string
  // Date.parse happens to understand (it accepts "1" as a year).
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
