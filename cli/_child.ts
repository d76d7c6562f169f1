// Running a wrapped command (`retry`, `lock`): spawning it with a clear
// error when it does not exist, keeping stdout clean for --json, turning
// its status into an exit code, and passing SIGINT/SIGTERM on.

import { CliError } from "./_cli_error.ts";
import { ExitCode } from "./_exit_codes.ts";

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

/** The shell's exit code for death by `signal`: 128 + its number. */
export function signalExitCode(signal: string): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 0);
}

/** The exit code a shell would report for `status`. */
export function exitCodeOf(status: Deno.CommandStatus): number {
  return status.signal ? signalExitCode(status.signal) : status.code;
}

/** A started command and the promise that settles when its output is drained. */
export interface Spawned {
  child: Deno.ChildProcess;
  /** Resolves when the command exited and its piped output was copied. */
  status: Promise<Deno.CommandStatus>;
}

/**
 * Starts `cmd` with stdin and stderr inherited. With `json`, its stdout
 * goes to our stderr so our stdout holds only the JSON result.
 */
export function spawnCommand(
  cmd: string,
  args: string[],
  options: { json: boolean; env?: Record<string, string> },
): Spawned {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      ...(options.env ? { env: options.env } : {}),
      stdin: "inherit",
      stdout: options.json ? "piped" : "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CliError(
        `Cannot run "${cmd}": command not found`,
        ExitCode.notFound,
        "Check the spelling, or give the full path to the program",
      );
    }
    throw err;
  }
  const piping = options.json
    ? child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true })
      .catch(() => {})
    : Promise.resolve();
  return {
    child,
    status: Promise.all([child.status, piping]).then(([status]) => status),
  };
}

/**
 * Calls `onSignal` for SIGINT and SIGTERM until disposed (not on Windows,
 * where Deno cannot listen for SIGTERM).
 */
export function onInterrupt(
  onSignal: (signal: "SIGINT" | "SIGTERM") => void,
): Disposable {
  const handlers = Deno.build.os === "windows"
    ? []
    : (["SIGINT", "SIGTERM"] as const).map((sig) => {
      const handler = () => onSignal(sig);
      Deno.addSignalListener(sig, handler);
      return [sig, handler] as const;
    });
  return {
    [Symbol.dispose]() {
      for (const [sig, handler] of handlers) {
        Deno.removeSignalListener(sig, handler);
      }
    },
  };
}
