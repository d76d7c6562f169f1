// Reading and writing owner records.

import { writeJson } from "../fs/mod.ts";
import { type LockOwner, parseOwner } from "./owner.ts";

/**
 * The owner record at `path`: undefined when the file is missing, torn or
 * not an owner record (a half-written lock looks like this).
 */
export async function readOwnerFile(
  path: string,
): Promise<LockOwner | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (
      err instanceof Deno.errors.NotFound ||
      err instanceof Deno.errors.NotADirectory
    ) return undefined;
    throw err;
  }
  try {
    return parseOwner(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * Replaces the owner record atomically. Not synced: the record only
 * matters while its holder lives, and after a power loss a lock without a
 * readable owner is treated as half-written (stale after a grace).
 */
export async function writeOwnerFile(
  path: string,
  owner: LockOwner,
): Promise<void> {
  await writeJson(path, owner, { durability: "none", retry: false });
}

/**
 * Writes the first owner record of a lock directory just created. No temp
 * and rename: the directory is new and the holder already holds its
 * kernel lock, so a reader that sees a partial record treats the lock as
 * half-written, which is never stale while the kernel lock is held.
 */
export async function createOwnerFile(
  path: string,
  owner: LockOwner,
): Promise<void> {
  await Deno.writeFile(path, new TextEncoder().encode(JSON.stringify(owner)), {
    createNew: true,
  });
}
