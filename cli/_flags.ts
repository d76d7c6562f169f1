// Typed reading of flag values, with usage errors that quote the value and
// say what would be accepted.

import { parseDuration } from "../retry/mod.ts";
import { UsageError } from "./_cli_error.ts";

/** Reads one command's flag values; errors point at that command's help. */
export class FlagReader {
  readonly #command: string;

  constructor(command: string) {
    this.#command = command;
  }

  /** A whole number of at least `min`, or `fallback` when absent. */
  integer(
    text: string | undefined,
    flag: string,
    fallback: number,
    min: number,
  ): number {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
      throw this.#invalid(flag, text, `use a whole number of at least ${min}`);
    }
    return value;
  }

  /** A finite number of at least `min`, or `fallback` when absent. */
  number(
    text: string | undefined,
    flag: string,
    fallback: number,
    min: number,
  ): number {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value) || value < min) {
      throw this.#invalid(flag, text, `use a number of at least ${min}`);
    }
    return value;
  }

  /** A duration such as `1.5s`, or `fallback` when absent. */
  duration(text: string | undefined, flag: string, fallback: number): number {
    return this.optionalDuration(text, flag) ?? fallback;
  }

  /** A duration such as `1.5s`, or `undefined` when absent. */
  optionalDuration(
    text: string | undefined,
    flag: string,
  ): number | undefined {
    if (text === undefined) return undefined;
    try {
      return parseDuration(text);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`, this.#command);
    }
  }

  /** One of `choices`, or `fallback` when absent. */
  choice<T extends string>(
    text: string | undefined,
    flag: string,
    choices: readonly T[],
    fallback: T,
  ): T {
    if (text === undefined) return fallback;
    if ((choices as readonly string[]).includes(text)) return text as T;
    throw this.#invalid(flag, text, `use one of ${choices.join(", ")}`);
  }

  /** A usage error for `flag` with a free-form reason. */
  invalid(flag: string, text: string, how: string): UsageError {
    return this.#invalid(flag, text, how);
  }

  #invalid(flag: string, text: string, how: string): UsageError {
    return new UsageError(
      `Invalid ${flag} ${JSON.stringify(text)}: ${how}`,
      this.#command,
    );
  }
}

/** The one positional argument a command takes. */
export function single(
  positionals: string[],
  command: string,
  what: string,
): string {
  if (positionals.length === 1) return positionals[0]!;
  throw new UsageError(
    positionals.length === 0
      ? `Missing ${what}`
      : `Expected one ${what}, got ${positionals.length}: ${
        positionals.map((p) => JSON.stringify(p)).join(" ")
      }`,
    command,
  );
}
