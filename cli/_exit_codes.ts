// Exit codes from DESIGN.md section 7. Commands that wrap another command
// exit with the wrapped command's own code when it ran and failed.

/** Exit codes of the `sturdy` CLI. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  lockTimeout: 3,
  circuitOpen: 4,
  /** `timeout(1)`'s code: Sturdy killed the wrapped command on `--timeout`. */
  timedOut: 124,
  /** The shell's code for a command that could not be found. */
  notFound: 127,
  /** `EX_TEMPFAIL`: retries exhausted on a transient failure. */
  retriesExhausted: 75,
  /** `EX_NOPERM`: a Deno permission is missing. */
  noPermission: 77,
} as const;
