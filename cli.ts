/**
 * The `sturdy` command line: Sturdy's resilience tools for shell scripts,
 * cron jobs and CI steps. Run it with `deno task cli`, or build the
 * standalone binary with `deno task compile`; both use the same scoped
 * permissions (read and write limited to the working directory, no network).
 *
 * ```sh
 * sturdy retry --attempts 3 --delay 500ms --timeout 10s -- ./sync.sh
 * sturdy retry --help
 * ```
 *
 * Exit codes: 0 ok, 1 failed, 2 usage, 3 lock not acquired in time,
 * 4 circuit open, 75 retries exhausted on a transient failure, 77 missing
 * permission; commands that wrap another command exit with its last code
 * (124 when Sturdy killed it on a time limit).
 *
 * @example Run the CLI in-process
 * ```ts
 * import { main } from "@sturdy/sturdy/cli";
 * import assert from "node:assert/strict";
 *
 * const out: string[] = [];
 * const code = await main(["--version"], {
 *   stdout: (text) => out.push(text),
 *   stderr: () => {},
 *   stderrIsTerminal: false,
 *   env: () => undefined,
 * });
 * assert.equal(code, 0);
 * assert.match(out.join(""), /^sturdy \d+\.\d+\.\d+/);
 * ```
 *
 * @module
 */
import type { ParseArgsConfig } from "node:util";
import { SturdyError } from "./retry/mod.ts";
import { CliError, permissionError, UsageError } from "./cli/_cli_error.ts";
import {
  type CliIo,
  closest,
  CommandContext,
  GLOBAL_HELP,
  GLOBAL_OPTIONS,
  parseCommandArgs,
  processIo,
  splitWrapped,
} from "./cli/_context.ts";
import { ExitCode } from "./cli/_exit_codes.ts";
import {
  RETRY_HELP,
  RETRY_OPTIONS,
  retryCommand,
} from "./cli/_retry_command.ts";
import { VERSION } from "./cli/_version.ts";
import {
  CHECKPOINT_HELP,
  CHECKPOINT_OPTIONS,
  checkpointCommand,
} from "./cli/_checkpoint_command.ts";
import { LOCK_HELP, LOCK_OPTIONS, lockCommand } from "./cli/_lock_command.ts";
import { READ_HELP, READ_OPTIONS, readCommand } from "./cli/_read_command.ts";
import {
  EPISODE_HELP,
  EPISODE_OPTIONS,
  episodeCommand,
} from "./cli/_episode_command.ts";
import {
  RECOVER_HELP,
  RECOVER_OPTIONS,
  recoverCommand,
} from "./cli/_recover_command.ts";
import {
  REPORTS_HELP,
  REPORTS_OPTIONS,
  reportsCommand,
} from "./cli/_reports_command.ts";
import { SCAN_HELP, SCAN_OPTIONS, scanCommand } from "./cli/_scan_command.ts";
import {
  WRITE_HELP,
  WRITE_OPTIONS,
  writeCommand,
} from "./cli/_write_command.ts";

export type { CliIo } from "./cli/_context.ts";

interface Command {
  summary: string;
  help: string;
  /** The command's own flags (the global ones are added). */
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Whether the command runs another command, given after `--`. */
  wraps: boolean;
  run(own: string[], wrapped: string[], ctx: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  retry: {
    summary:
      "Run a command until it succeeds, with backoff, timeouts and a breaker",
    help: RETRY_HELP,
    options: RETRY_OPTIONS,
    wraps: true,
    run: retryCommand,
  },
  lock: {
    summary: "Run a command while holding a named lock; show or break locks",
    help: LOCK_HELP,
    options: LOCK_OPTIONS,
    wraps: false,
    run: lockCommand,
  },
  checkpoint: {
    summary: "Create, list, verify, restore and prune an agent's checkpoints",
    help: CHECKPOINT_HELP,
    options: CHECKPOINT_OPTIONS,
    wraps: false,
    run: checkpointCommand,
  },
  episode: {
    summary: "Run an episode.yaml's tasks resumably; show or validate episodes",
    help: EPISODE_HELP,
    options: EPISODE_OPTIONS,
    wraps: false,
    run: episodeCommand,
  },
  recover: {
    summary:
      "Run a command as a recovery task; show, answer and clean up tasks",
    help: RECOVER_HELP,
    options: RECOVER_OPTIONS,
    wraps: false,
    run: recoverCommand,
  },
  write: {
    summary: "Replace a file with stdin atomically and durably (like sponge)",
    help: WRITE_HELP,
    options: WRITE_OPTIONS,
    wraps: false,
    run: writeCommand,
  },
  read: {
    summary: "Print a file, retrying transient errors, with a timeout",
    help: READ_HELP,
    options: READ_OPTIONS,
    wraps: false,
    run: readCommand,
  },
  scan: {
    summary: "List files under a directory matching globs",
    help: SCAN_HELP,
    options: SCAN_OPTIONS,
    wraps: false,
    run: scanCommand,
  },
  reports: {
    summary: "Show recorded I/O failures, newest first",
    help: REPORTS_HELP,
    options: REPORTS_OPTIONS,
    wraps: false,
    run: reportsCommand,
  },
};

const PROGRAM_HELP =
  `sturdy ${VERSION}: keep long-running agent scripts alive through flaky I/O,
crashes and concurrent access.

Usage:
  sturdy [global options] <command> [options]

Commands:
${
    Object.entries(COMMANDS).map(([name, c]) =>
      `  ${name.padEnd(12)}${c.summary}`
    )
      .join("\n")
  }

${GLOBAL_HELP}
  --version       Print the version

Exit codes: 0 ok, 1 failed, 2 usage, 3 lock not acquired in time, 4 circuit open,
75 retries exhausted on a transient failure, 77 missing permission. Commands that
wrap another command exit with its last code (124 when Sturdy killed it on a timeout).

Examples:
  sturdy retry --attempts 3 --timeout 10s -- ./sync.sh
  sturdy lock deploy --timeout 5m -- ./deploy.sh
  sturdy checkpoint verify agent-1
  jq '.n += 1' state.json | sturdy write state.json
  sturdy scan src --include "**/*.ts" --exclude "**/*_test.ts"
  sturdy reports --since 1h
  sturdy <command> --help`;

/**
 * Runs the CLI with `args` (without the program name) and returns the exit
 * code instead of exiting, so it can be embedded and tested.
 *
 * @param args The command line, e.g. `["retry", "--", "make"]`.
 * @param io Where output goes and where the environment comes from;
 * defaults to the process's own streams and environment.
 * @returns The exit code.
 *
 * @example Print the version
 * ```ts
 * import { main } from "@sturdy/sturdy/cli";
 * import assert from "node:assert/strict";
 *
 * let out = "";
 * const io = {
 *   stdout: (t: string) => void (out += t),
 *   stderr: () => {},
 *   stderrIsTerminal: false,
 *   env: () => undefined,
 * };
 * assert.equal(await main(["--version", "--json"], io), 0);
 * assert.match(JSON.parse(out).version, /^\d+\.\d+\.\d+/);
 * ```
 */
export async function main(
  args: string[],
  io: CliIo = processIo(),
): Promise<number> {
  // Global flags may come before the command name.
  let i = 0;
  while (i < args.length && args[i]!.startsWith("-") && args[i] !== "--") {
    if (args[i] === "--home") i++;
    i++;
  }
  const leading = args.slice(0, i);
  const name = args[i];
  let json = leading.includes("--json");
  let verbose = leading.includes("--verbose") || leading.includes("-v");
  try {
    if (name === undefined) return programFlags(leading, io);
    const command = COMMANDS[name];
    if (command === undefined) {
      const near = closest(name, Object.keys(COMMANDS));
      throw new UsageError(
        `Unknown command "${name}"${near ? `; did you mean "${near}"?` : ""}`,
      );
    }
    const rest = args.slice(i + 1);
    const { own, wrapped } = command.wraps
      ? splitWrapped(rest, valueFlags(command.options))
      : { own: rest, wrapped: [] };
    const flags = [...leading, ...own];
    const { values } = parseCommandArgs(name, flags, command.options);
    json = values.json === true;
    verbose = values.verbose === true;
    if (values.help) {
      io.stdout(command.help + "\n");
      return ExitCode.ok;
    }
    const ctx = new CommandContext(values, io);
    return await command.run(flags, wrapped, ctx);
  } catch (err) {
    return report(err, io, json, verbose);
  }
}

function valueFlags(options: Command["options"]): Set<string> {
  const all = { ...GLOBAL_OPTIONS, ...options };
  return new Set(
    Object.entries(all).filter(([, o]) => o.type === "string").map(([n]) => n),
  );
}

function programFlags(flags: string[], io: CliIo): number {
  const { values } = parseCommandArgs("", flags, {
    version: { type: "boolean" },
  });
  if (values.version) {
    if (values.json) io.stdout(JSON.stringify({ version: VERSION }) + "\n");
    else io.stdout(`sturdy ${VERSION}\n`);
    return ExitCode.ok;
  }
  if (values.help) {
    io.stdout(PROGRAM_HELP + "\n");
    return ExitCode.ok;
  }
  io.stderr(PROGRAM_HELP + "\n");
  return ExitCode.usage;
}

function report(
  err: unknown,
  io: CliIo,
  json: boolean,
  verbose: boolean,
): number {
  const cliError = err instanceof CliError ? err : permissionError(err);
  const sturdyCode = err instanceof SturdyError ? err.code : undefined;
  // A library error for a missing Deno permission already names the flag.
  const code = cliError?.exitCode ??
    (sturdyCode === "missing_permission"
      ? ExitCode.noPermission
      : ExitCode.failed);
  const message = cliError?.message ??
    (err instanceof Error ? err.message : String(err));
  const hint = cliError?.hint;
  io.stderr(`sturdy: ${message}\n`);
  if (hint) io.stderr(`  ${hint}\n`);
  if (verbose && cliError === undefined && err instanceof Error && err.stack) {
    io.stderr(err.stack + "\n");
  }
  if (json) {
    io.stdout(
      JSON.stringify({
        ok: false,
        exitCode: code,
        error: message,
        ...(sturdyCode ? { code: sturdyCode } : {}),
      }) + "\n",
    );
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
