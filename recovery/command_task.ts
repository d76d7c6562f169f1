import { SturdyError } from "../retry/mod.ts";
import type { TaskContext } from "./options.ts";

/** Options of {@linkcode commandTask}. */
export interface CommandTaskOptions {
  /**
   * The working directory.
   *
   * @default {the current directory}
   */
  cwd?: string;
  /**
   * Extra environment variables (added to the inherited ones). The
   * command also gets `STURDY_TASK_ID` and `STURDY_TASK_ATTEMPT`.
   *
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Where the command's stdout goes: `"inherit"` (ours), `"stderr"` (our
   * stderr, to keep our stdout clean for JSON) or `"null"`.
   *
   * @default {"inherit"}
   */
  stdout?: "inherit" | "stderr" | "null";
  /**
   * Where its stderr goes.
   *
   * @default {"inherit"}
   */
  stderr?: "inherit" | "null";
  /**
   * How the command is named in errors.
   *
   * @default {the argv joined with spaces}
   */
  label?: string;
  /**
   * After the run's signal aborts (a timeout, a shutdown), how long the
   * command gets after SIGTERM before SIGKILL, in ms.
   *
   * @default {5000}
   */
  killGrace?: number;
}

/**
 * A command that exited with a non-zero code, was killed by a signal, or
 * could not be started. Code `command_failed` (retryable: its category is
 * `transient`) or `command_not_found` (`retryable: false`).
 *
 * @example Inspect a failed command
 * ```ts
 * import { CommandFailedError, commandTask } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const run = commandTask([Deno.execPath(), "eval", "Deno.exit(3)"], { stdout: "null" });
 * const err = await run({
 *   taskId: "t", attempt: 1, attemptsStarted: 1, previousProgress: undefined,
 *   signal: new AbortController().signal, progress: async () => {},
 * }).catch((e) => e);
 * assert.ok(err instanceof CommandFailedError);
 * assert.equal(err.exitCode, 3);
 * ```
 */
export class CommandFailedError extends SturdyError {
  /** The exit code (128 + n when signal n killed it; 127 when not found). */
  readonly exitCode: number;
  /** The signal that killed it, if one did. */
  readonly signal: string | undefined;
  /** `false` for a command that cannot be found: retrying cannot help. */
  readonly retryable: boolean | undefined;

  /**
   * Creates an error.
   *
   * @param message What failed.
   * @param options The exit code, signal, code and cause.
   */
  constructor(
    message: string,
    options: {
      exitCode: number;
      signal?: string;
      code?: "command_failed" | "command_not_found";
      cause?: unknown;
    },
  ) {
    super(message, {
      code: options.code ?? "command_failed",
      operation: "run",
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.exitCode = options.exitCode;
    this.signal = options.signal;
    this.retryable = options.code === "command_not_found" ? false : undefined;
  }
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

/**
 * Makes a task function that runs a command (argv, no shell) and fails
 * unless it exits 0. When the run's signal aborts (a timeout, a shutdown),
 * the command gets SIGTERM, then SIGKILL after `killGrace`, and the run
 * rejects with the signal's reason once the command is gone — never
 * leaving it running.
 *
 * @param argv The program and its arguments.
 * @param options Working directory, environment, output, kill grace.
 * @returns A function for {@linkcode RecoveryManager.execute}.
 *
 * @example Run a command as a task
 * ```ts
 * import { commandTask, RecoveryManager } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const recovery = new RecoveryManager({ root });
 * const result = await recovery.execute(
 *   "hello",
 *   commandTask([Deno.execPath(), "eval", "console.log('hi')"], { stdout: "null" }),
 * );
 * assert.equal(result.status, "succeeded");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function commandTask(
  argv: readonly string[],
  options: CommandTaskOptions = {},
): (ctx: TaskContext) => Promise<void> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === "") {
    throw new SturdyError(
      "Cannot make a command task from an empty command line: give the program and its arguments",
      { code: "invalid_option", operation: "commandTask" },
    );
  }
  const stdout = options.stdout ?? "inherit";
  const grace = options.killGrace ?? 5_000;
  const label = options.label ?? argv.join(" ");
  return async (ctx: TaskContext): Promise<void> => {
    ctx.signal.throwIfAborted();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, {
        args,
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        env: {
          ...options.env,
          STURDY_TASK_ID: ctx.taskId,
          STURDY_TASK_ATTEMPT: String(ctx.attempt),
        },
        stdin: "null",
        stdout: stdout === "stderr" ? "piped" : stdout,
        stderr: options.stderr ?? "inherit",
      }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new CommandFailedError(
          `Cannot run "${cmd}": command not found${
            options.cwd ? ` (in ${options.cwd})` : ""
          }; check the spelling or give the full path`,
          { exitCode: 127, code: "command_not_found", cause: err },
        );
      }
      throw err;
    }
    const piping = stdout === "stderr"
      ? child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true })
        .catch(() => {})
      : Promise.resolve();
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      signalTree(child.pid, "SIGTERM");
      killTimer = setTimeout(() => signalTree(child.pid, "SIGKILL"), grace);
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    let status: Deno.CommandStatus;
    try {
      status = await child.status;
      await piping;
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
    }
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (status.success) return;
    const exitCode = status.signal
      ? 128 + (SIGNALS[status.signal] ?? 0)
      : status.code;
    throw new CommandFailedError(
      status.signal
        ? `Command "${label}" was killed by ${status.signal}`
        : `Command "${label}" exited with code ${status.code}`,
      {
        exitCode,
        ...(status.signal ? { signal: status.signal } : {}),
      },
    );
  };
}

// Signals a process and everything it started (a shell's children too), so
// no part of a stopped command keeps running. The tree comes from `ps`
// (Deno reads /proc only with --allow-all); without it, only `pid`.
function signalTree(pid: number, signal: Deno.Signal): void {
  const send = (p: number) => {
    try {
      Deno.kill(p, signal);
    } catch { /* already gone */ }
  };
  let listed: Deno.CommandOutput | undefined;
  try {
    listed = new Deno.Command("ps", {
      args: ["-eo", "pid=,ppid="],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
  } catch {
    listed = undefined;
  }
  const children = new Map<number, number[]>();
  if (listed?.success) {
    for (const line of new TextDecoder().decode(listed.stdout).split("\n")) {
      const [p, pp] = line.trim().split(/\s+/).map(Number);
      if (p && pp) children.set(pp, [...(children.get(pp) ?? []), p]);
    }
  }
  // Parent first, so it cannot start anything new; then its descendants.
  const order: number[] = [];
  const walk = (p: number) => {
    order.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  for (const p of order) send(p);
}
