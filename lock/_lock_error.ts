import { SturdyError } from "../retry/mod.ts";

/**
 * Turns an unexpected runtime error into a SturdyError that names the lock
 * and the action; Sturdy's own errors and `signal.reason` pass unchanged.
 */
export function lockIoError(
  err: unknown,
  action: string,
  name: string,
  path: string,
  signal?: AbortSignal,
): unknown {
  if (
    err instanceof SturdyError || (signal?.aborted && err === signal.reason)
  ) {
    return err;
  }
  const missing = err instanceof Deno.errors.NotCapable;
  const message = err instanceof Error ? err.message : String(err);
  return new SturdyError(
    `Cannot ${action} lock ${JSON.stringify(name)} in ${
      JSON.stringify(path)
    }: ${message}${
      missing ? "; grant --allow-read and --allow-write on the Sturdy root" : ""
    }`,
    {
      code: missing ? "missing_permission" : "lock_io_error",
      cause: err,
      path,
      operation: action,
    },
  );
}
