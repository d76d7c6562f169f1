// The fencing counter of one lock: `<root>/locks/<name>.fence`.
//
// Invariant: fences strictly increase. Only a holder bumps the counter,
// while holding the lock, and each bump is a durable atomic replace (fs/
// writeJson): after a crash or power loss the file holds the old or the
// new value, never less, so a fence handed out is never handed out again.

import { SturdyError } from "../retry/mod.ts";
import { writeJson } from "../fs/mod.ts";

const FENCE_FORMAT = "sturdy.fence/1";

/** The stored counter. */
interface FenceRecord {
  format: typeof FENCE_FORMAT;
  name: string;
  fence: number;
}

/**
 * The last fence handed out for a lock, 0 if none yet.
 *
 * @throws {SturdyError} Code `fence_corrupt` if the file is unreadable
 *   JSON or not a counter: refusing is safer than restarting at 0.
 */
export async function readFence(path: string): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
  let record: Partial<FenceRecord> | undefined;
  try {
    record = JSON.parse(text);
  } catch { /* reported below */ }
  const fence = record?.fence;
  if (
    record?.format !== FENCE_FORMAT || typeof fence !== "number" ||
    !Number.isSafeInteger(fence) || fence < 0
  ) {
    throw new SturdyError(
      `Cannot read fence counter ${
        JSON.stringify(path)
      }: it is not a "${FENCE_FORMAT}" record. Restore it from a backup or set its "fence" above every fence used so far; never lower it`,
      { code: "fence_corrupt", path, operation: "acquireLock" },
    );
  }
  return fence;
}

/**
 * Reads the counter, adds one and stores it durably. `check` runs just
 * before the write, so a holder that lost its lock while reading never
 * writes.
 *
 * @returns The new fence.
 */
export async function bumpFence(
  path: string,
  name: string,
  check: () => Promise<void>,
): Promise<number> {
  const fence = (await readFence(path)) + 1;
  await check();
  const record: FenceRecord = { format: FENCE_FORMAT, name, fence };
  await writeJson(path, record, { durability: "durable" });
  return fence;
}
