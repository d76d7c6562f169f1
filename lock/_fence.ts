// The fencing counter of one lock: `<root>/locks/<name>.fence`.
//
// Invariant: fences strictly increase. Only a holder bumps the counter,
// while holding the lock, and a fence is handed out only after its value
// is on the device, so after a crash or power loss the counter is never
// below a fence that was handed out.
//
// Format (`sturdy.fence/2`): two 512-byte slots, each one text line
// `sturdy.fence/2 <name> <fence> <checksum>` padded with spaces. A bump
// overwrites the slot of the new value's parity in place and syncs it
// (pwrite + fdatasync: ~0.3 ms here, against ~1.2 ms for a temp file,
// rename and directory sync, which an acquisition would otherwise pay). A
// write torn by a crash spoils at most the slot being written; the other
// still holds the previous value, which was the highest ever handed out,
// so the torn value is simply handed out again later. Each slot is one
// sector, so nothing outside it is ever touched by a write.
//
// The file is created once, durably (temp, fsync, rename, directory
// fsync). A `sturdy.fence/1` JSON file from an earlier version is read and
// converted.

import { SturdyError } from "../retry/mod.ts";
import { writeBytes } from "../fs/mod.ts";

const FORMAT = "sturdy.fence/2";
const LEGACY_FORMAT = "sturdy.fence/1";
const SLOT = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** FNV-1a over the slot's text: enough to tell a torn slot from a whole one. */
function checksum(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

function slotBytes(name: string, fence: number): Uint8Array {
  const body = `${FORMAT} ${name} ${fence}`;
  const line = `${body} ${checksum(body)}`;
  const bytes = new Uint8Array(SLOT).fill(0x20); // spaces
  bytes.set(encoder.encode(line));
  bytes[SLOT - 1] = 0x0a; // newline: `cat` shows two lines
  return bytes;
}

function parseSlot(bytes: Uint8Array): number | undefined {
  const parts = decoder.decode(bytes).trim().split(" ");
  if (parts.length !== 4 || parts[0] !== FORMAT) return undefined;
  const body = parts.slice(0, 3).join(" ");
  const fence = Number(parts[2]);
  if (parts[3] !== checksum(body) || !Number.isSafeInteger(fence)) {
    return undefined;
  }
  return fence;
}

function corrupt(path: string, why: string): SturdyError {
  return new SturdyError(
    `Cannot read fence counter ${
      JSON.stringify(path)
    }: ${why}. Restore it from a backup, or delete it only if no fenced resource has recorded a fence from this lock; never lower it`,
    { code: "fence_corrupt", path, operation: "acquireLock" },
  );
}

/** The highest fence in `content` (0 for an empty or missing file). */
function highest(path: string, content: Uint8Array): number {
  if (content.length === 0) return 0;
  if (content.length > 2 * SLOT) {
    throw corrupt(path, "it is larger than a fence counter");
  }
  if (content[0] === 0x7b /* { */) {
    let record: { format?: unknown; fence?: unknown } | undefined;
    try {
      record = JSON.parse(decoder.decode(content));
    } catch { /* reported below */ }
    const fence = record?.fence;
    if (
      record?.format === LEGACY_FORMAT && typeof fence === "number" &&
      Number.isSafeInteger(fence) && fence >= 0
    ) return fence;
    throw corrupt(path, `it is not a "${LEGACY_FORMAT}" record`);
  }
  const slots = [
    parseSlot(content.subarray(0, SLOT)),
    parseSlot(content.subarray(SLOT, 2 * SLOT)),
  ].filter((f): f is number => f !== undefined);
  if (slots.length === 0) throw corrupt(path, "neither slot is valid");
  return Math.max(...slots);
}

/**
 * The counter's current value (0 when the file does not exist).
 *
 * @param path The `.fence` file.
 * @returns The highest fence handed out.
 */
export async function readFence(path: string): Promise<number> {
  try {
    return highest(path, await Deno.readFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/**
 * Hands out the next fence. `check` runs before anything is written and
 * throws if the caller no longer holds the lock.
 *
 * @param path The `.fence` file.
 * @param name The lock's name (written into the file for people).
 * @param check Throws when the lock was lost.
 * @returns The new fence.
 */
export async function bumpFence(
  path: string,
  name: string,
  check: () => Promise<void>,
): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // First use: create both slots durably, then bump in place.
    await check();
    const initial = new Uint8Array(2 * SLOT);
    initial.set(slotBytes(name, 0), 0);
    initial.set(slotBytes(name, 0), SLOT);
    await writeBytes(path, initial, { durability: "durable" });
    file = await Deno.open(path, { read: true, write: true });
  }
  try {
    const content = await readAll(file);
    const current = highest(path, content);
    const fence = current + 1;
    await check();
    if (content.length !== 2 * SLOT || content[0] === 0x7b) {
      // Converting a legacy file: replace it whole and durably.
      const fresh = new Uint8Array(2 * SLOT);
      fresh.set(slotBytes(name, current), 0);
      fresh.set(slotBytes(name, current), SLOT);
      fresh.set(slotBytes(name, fence), (fence % 2) * SLOT);
      await writeBytes(path, fresh, { durability: "durable" });
      return fence;
    }
    await file.seek((fence % 2) * SLOT, Deno.SeekMode.Start);
    const bytes = slotBytes(name, fence);
    for (let written = 0; written < bytes.length;) {
      written += await file.write(bytes.subarray(written));
    }
    await file.syncData();
    return fence;
  } finally {
    file.close();
  }
}

// One read is enough for a fence file (1 KiB); a longer file is not one,
// and `highest` refuses it by its length.
async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const buffer = new Uint8Array(2 * SLOT + 1);
  const n = (await file.read(buffer)) ?? 0;
  return buffer.subarray(0, n);
}
