import { FileWriteError } from "./errors.ts";

/** A FileWriteError whose message reads `Cannot write "<path>": <why>`. */
export function writeFailure(
  code: string,
  operation: string,
  path: string,
  why: string,
  cause?: unknown,
): FileWriteError {
  return new FileWriteError(`Cannot write "${path}": ${why}`, {
    code,
    path,
    operation,
    ...(cause === undefined ? {} : { cause }),
  });
}
