import { SturdyError } from "./sturdy_error.ts";

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses a human duration such as `250ms`, `1.5s`, `2m`, `1h` or `7d` into
 * milliseconds. A unit is required; anything else is refused.
 *
 * @param text The duration to parse.
 * @returns The duration in milliseconds (rounded to a whole number).
 * @throws {SturdyError} With code `invalid_duration` for anything else.
 *
 * @example Parse durations
 * ```ts
 * import { parseDuration } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("1.5s"), 1500);
 * assert.equal(parseDuration("2m"), 120_000);
 * assert.throws(() => parseDuration("10"), { code: "invalid_duration" });
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  const value = match ? Number(match[1]) * UNITS[match[2]!]! : NaN;
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) {
    throw new SturdyError(
      `Invalid duration ${
        JSON.stringify(text)
      }: use a number and a unit, e.g. 250ms, 1.5s, 2m, 1h or 7d`,
      { code: "invalid_duration" },
    );
  }
  return Math.round(value);
}

/**
 * Formats milliseconds for people: `850ms`, `1.2s`, `2m5s`, `1h30m`.
 *
 * @param ms A duration in milliseconds.
 * @returns A short human-readable form.
 *
 * @example Format durations
 * ```ts
 * import { formatDuration } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatDuration(850), "850ms");
 * assert.equal(formatDuration(1234), "1.2s");
 * assert.equal(formatDuration(125_000), "2m5s");
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  const totalSeconds = Math.round(ms / 1_000);
  const h = Math.floor(totalSeconds / 3_600);
  const m = Math.floor((totalSeconds % 3_600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return m > 0 ? `${h}h${m}m` : `${h}h`;
  return s > 0 ? `${m}m${s}s` : `${m}m`;
}
