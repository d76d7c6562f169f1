// Reading owner records (kind "flock"; kind "dir" reads its record
// through the file it probes, see _dir_backend.ts).

import { type LockOwner, parseOwner } from "./owner.ts";

/**
 * The owner record at `path`: undefined when the file is missing, empty,
 * torn or not an owner record. Synchronous: one short read of a small file
 * (see "Synchronous steps" in _dir_backend.ts).
 */
export function readOwnerFileSync(path: string): LockOwner | undefined {
  const text = readRecordTextSync(path);
  if (text === undefined) return undefined;
  try {
    return parseOwner(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** The text of a record file, or undefined when it (or its directory) is gone. */
export function readRecordTextSync(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (
      err instanceof Deno.errors.NotFound ||
      err instanceof Deno.errors.NotADirectory
    ) return undefined;
    throw err;
  }
}
