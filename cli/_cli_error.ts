import { ExitCode } from "./_exit_codes.ts";

/**
 * An error the CLI reports as one line on stderr and turns into an exit
 * code. `hint` is printed on a second line and says what to do.
 */
export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, exitCode: number, hint?: string) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** Bad flags or arguments: exit 2, with a pointer to `--help`. */
export class UsageError extends CliError {
  constructor(message: string, command?: string) {
    super(
      message,
      ExitCode.usage,
      `Run "sturdy ${command ? command + " " : ""}--help" for usage`,
    );
    this.name = "UsageError";
  }
}

const PERMISSION =
  /Requires (\w+) access to ([^,]+), run again with the (--allow-\w+) flag/;

/**
 * Turns Deno's missing-permission errors into a CliError (exit 77) naming
 * the exact flag; returns `undefined` for any other error.
 */
export function permissionError(err: unknown): CliError | undefined {
  if (
    !(err instanceof Deno.errors.NotCapable ||
      err instanceof Deno.errors.PermissionDenied)
  ) return undefined;
  const match = PERMISSION.exec(err.message);
  if (!match) {
    return new CliError(
      `Missing permission: ${err.message}`,
      ExitCode.noPermission,
    );
  }
  const [, kind, target, flag] = match;
  const value = target!.replace(/^"|"$/g, "");
  return new CliError(
    `Missing permission: ${kind} access to ${target}`,
    ExitCode.noPermission,
    `Run the CLI from the directory that holds it (read and write are limited to "."), or add ${flag}=${value}`,
  );
}
