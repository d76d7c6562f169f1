// What every command gets: the global flags, the state root, and the ways
// to talk to the user. Commands never write to stdout or stderr directly,
// so tests can run `main()` in-process and capture its output.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./_cli_error.ts";

/** Where the CLI writes; the real process streams unless a test swaps them. */
export interface CliIo {
  /** Writes to stdout (results, JSON documents). */
  stdout(text: string): void;
  /** Writes to stderr (notices, errors). */
  stderr(text: string): void;
  /** Whether stderr is a terminal (notices are shown there by default). */
  stderrIsTerminal: boolean;
  /** Reads an environment variable; `undefined` when unset or not allowed. */
  env(name: string): string | undefined;
  /**
   * Writes raw bytes to stdout (file contents).
   *
   * @default {the process's stdout}
   */
  stdoutBytes?(bytes: Uint8Array): void;
  /**
   * The input stream.
   *
   * @default {the process's stdin}
   */
  stdin?(): ReadableStream<Uint8Array>;
}

const encoder = new TextEncoder();

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return {
    stdout: (text) => writeAll(Deno.stdout, text),
    stderr: (text) => writeAll(Deno.stderr, text),
    stdoutBytes: (bytes) => writeAllBytes(Deno.stdout, bytes),
    stdin: () => Deno.stdin.readable,
    stderrIsTerminal: Deno.stderr.isTerminal(),
    env(name) {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined; // --allow-env not granted for this name
      }
    },
  };
}

function writeAll(stream: typeof Deno.stdout, text: string): void {
  writeAllBytes(stream, encoder.encode(text));
}

function writeAllBytes(stream: typeof Deno.stdout, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += stream.writeSync(bytes.subarray(written));
  }
}

/** Flags every command accepts, before or after the command name. */
export const GLOBAL_OPTIONS = {
  home: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Help text for the global flags, shared by every command's `--help`. */
export const GLOBAL_HELP = `Global options:
  --home DIR      State root (default: $STURDY_HOME, else ./.sturdy)
  --json          Print the result as one JSON document on stdout
  -q, --quiet     Print no notices, only errors
  -v, --verbose   Print notices even when stderr is not a terminal
  -h, --help      Show help`;

/** The context a command runs in. */
export class CommandContext {
  readonly home: string;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly io: CliIo;

  constructor(
    flags: {
      home?: string;
      json?: boolean;
      quiet?: boolean;
      verbose?: boolean;
    },
    io: CliIo,
  ) {
    this.io = io;
    this.home = flags.home ?? io.env("STURDY_HOME") ?? ".sturdy";
    this.json = flags.json ?? false;
    this.quiet = flags.quiet ?? false;
    this.verbose = flags.verbose ?? false;
  }

  /**
   * A progress or retry notice: shown on a terminal, or anywhere with
   * `--verbose`; never with `--quiet`.
   */
  notice(line: string): void {
    if (this.quiet) return;
    if (this.verbose || this.io.stderrIsTerminal) {
      this.io.stderr(`sturdy: ${line}\n`);
    }
  }

  /** An outcome worth telling even off a terminal (silenced by `--quiet`). */
  warn(line: string): void {
    if (!this.quiet) this.io.stderr(`sturdy: ${line}\n`);
  }

  /** Prints the command's result: JSON with `--json`, else `text`. */
  result(value: unknown, text?: string): void {
    if (this.json) this.io.stdout(JSON.stringify(value, null, 2) + "\n");
    else if (text !== undefined) this.io.stdout(text + "\n");
  }
}

/**
 * Parses a command's flags (plus the global ones) with `node:util`'s
 * `parseArgs`, turning its errors into usage errors that name the command
 * and suggest the closest known flag.
 */
export function parseCommandArgs<
  O extends NonNullable<ParseArgsConfig["options"]>,
>(
  command: string,
  args: string[],
  options: O,
): ReturnType<
  typeof parseArgs<{
    args: string[];
    options: O & typeof GLOBAL_OPTIONS;
    allowPositionals: true;
    strict: true;
  }>
> {
  const all = { ...GLOBAL_OPTIONS, ...options };
  try {
    return parseArgs({
      args,
      options: all,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(
      describeParseError(err, command, Object.keys(all)),
      command,
    );
  }
}

function describeParseError(
  err: unknown,
  command: string,
  known: string[],
): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  const flag = /'(--?[\w-]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag !== undefined) {
    const name = flag.replace(/^-+/, "").split("=")[0]!;
    const near = closest(name, known);
    return `Unknown option "${flag}" for "sturdy ${command}"` +
      (near ? `; did you mean "--${near}"?` : "");
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag !== undefined) {
    return message.includes("does not take an argument")
      ? `Option "${flag}" takes no value`
      : `Option "${flag}" needs a value`;
  }
  return message;
}

/** The known name within edit distance 2 of `name`, if any. */
export function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
}

/**
 * Splits `args` at the wrapped command: everything after the first `--`, or
 * from the first bare word that is not a flag's value. `valueFlags` names
 * the flags that take a value (`--attempts 3`).
 */
export function splitWrapped(
  args: string[],
  valueFlags: ReadonlySet<string>,
): { own: string[]; wrapped: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      return { own: args.slice(0, i), wrapped: args.slice(i + 1) };
    }
    if (!arg.startsWith("-")) {
      return { own: args.slice(0, i), wrapped: args.slice(i) };
    }
    const takesValue = !arg.includes("=") &&
      valueFlags.has(arg.replace(/^-+/, ""));
    // A flag's value is never the "--" that starts the wrapped command.
    if (takesValue && args[i + 1] !== "--") i++;
  }
  return { own: args, wrapped: [] };
}

/**
 * Checks a command's subcommand: present, known (else "did you mean"), and
 * given only the flags it takes. `specs` maps each subcommand to the flags
 * (without `--`) it accepts; returns the subcommand and its spec.
 */
export function pickSubcommand<
  S extends string,
  T extends { readonly flags: readonly string[] },
>(
  command: string,
  sub: string | undefined,
  specs: Readonly<Record<S, T>>,
  values: Readonly<Record<string, unknown>>,
  ownFlags: readonly string[],
): { sub: S; spec: T } {
  const names = Object.keys(specs) as S[];
  if (sub === undefined) {
    throw new UsageError(
      `Missing the subcommand: ${names.slice(0, -1).join(", ")} or ${
        names.at(-1)
      }`,
      command,
    );
  }
  if (!(names as string[]).includes(sub)) {
    const near = closest(sub, names);
    throw new UsageError(
      `Unknown subcommand "${sub}"${near ? `; did you mean "${near}"?` : ""}`,
      command,
    );
  }
  const spec = specs[sub as S]!;
  for (const flag of ownFlags) {
    if (values[flag] !== undefined && !spec.flags.includes(flag)) {
      throw new UsageError(
        `Option "--${flag}" does not apply to "sturdy ${command} ${sub}"`,
        command,
      );
    }
  }
  return { sub: sub as S, spec };
}

/**
 * Joins what the generic split gave a command that takes a wrapped command
 * after its own positionals (`lock NAME -- CMD`, `recover run TASK -- CMD`)
 * and splits it again at the first `--`.
 */
export function splitAtDash(
  own: string[],
  wrapped: string[],
): { before: string[]; command: string[]; dashed: boolean } {
  const args = [...own, ...wrapped];
  const dash = args.indexOf("--");
  return dash === -1 ? { before: args, command: [], dashed: false } : {
    before: args.slice(0, dash),
    command: args.slice(dash + 1),
    dashed: true,
  };
}
