// The fencing counter of one lock: `<root>/locks/<name>.fence`.
//
// Invariant: fences strictly increase. Only a holder bumps the counter,
// while holding the lock, and after a crash or power loss the counter is
// never below a fence that was handed out.
//
// Format (`sturdy.fence/2`): two 512-byte slots, each one text line
// `sturdy.fence/2 <name> <fence> <reserve> <boot> <checksum>` padded with
// spaces. A bump overwrites the slot of the new value's parity in place. A
// write torn by a crash spoils at most that slot; the other still holds
// the previous value, so the torn value is simply handed out again later.
//
// Most bumps are not synced. `reserve` is an upper bound on every fence
// handed out, and it only ever changes in a synced write; `boot` is when
// the machine booted. A page-cache write is lost only when the machine
// goes down, and then the boot time changes: a bump that sees another boot
// (or that would pass the reserve) jumps to reserve + 1 and syncs a new
// reserve ahead of it. So a fence is never handed out twice, and only one
// bump in RESERVE_STEP pays for an fdatasync (~0.3-1 ms here). Where the
// boot time cannot be read (no --allow-sys=osUptime), every bump is synced.
//
// The file is created once, durably (temp, fsync, rename, directory
// fsync). A `sturdy.fence/1` JSON file from an earlier version is read and
// converted.

import { SturdyError } from "../retry/mod.ts";
import { writeBytes } from "../fs/mod.ts";

const FORMAT = "sturdy.fence/2";
const LEGACY_FORMAT = "sturdy.fence/1";
const SLOT = 512;
/** How far ahead of the last fence a synced reserve reaches. */
const RESERVE_STEP = 1_000;
/** Boot times read at different moments differ by rounding; a reboot moves it by the uptime. */
const BOOT_TOLERANCE_S = 2;
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

interface Slot {
  fence: number;
  reserve: number;
  /** Boot time in seconds since the epoch, or 0 when unknown. */
  boot: number;
}

function slotBytes(name: string, slot: Slot): Uint8Array {
  const body = `${FORMAT} ${name} ${slot.fence} ${slot.reserve} ${slot.boot}`;
  const line = `${body} ${checksum(body)}`;
  const bytes = new Uint8Array(SLOT).fill(0x20); // spaces
  bytes.set(encoder.encode(line));
  bytes[SLOT - 1] = 0x0a; // newline: `cat` shows two lines
  return bytes;
}

function parseSlot(bytes: Uint8Array): Slot | undefined {
  const parts = decoder.decode(bytes).trim().split(" ");
  if (parts.length !== 6 || parts[0] !== FORMAT) return undefined;
  const body = parts.slice(0, 5).join(" ");
  const [fence, reserve, boot] = parts.slice(2, 5).map(Number) as [
    number,
    number,
    number,
  ];
  if (
    parts[5] !== checksum(body) || !Number.isSafeInteger(fence) ||
    !Number.isSafeInteger(reserve) || !Number.isSafeInteger(boot)
  ) return undefined;
  return { fence, reserve, boot };
}

/** When this machine booted (seconds), or 0 when it cannot be read. */
function bootTime(): number {
  try {
    return Math.round(Date.now() / 1000 - Deno.osUptime());
  } catch {
    return 0; // no --allow-sys=osUptime: every bump is synced
  }
}

function corrupt(path: string, why: string): SturdyError {
  return new SturdyError(
    `Cannot read fence counter ${
      JSON.stringify(path)
    }: ${why}. Restore it from a backup, or delete it only if no fenced resource has recorded a fence from this lock; never lower it`,
    { code: "fence_corrupt", path, operation: "acquireLock" },
  );
}

/** The newest valid slot in `content` (fence 0 for an empty file). */
function newest(path: string, content: Uint8Array): Slot {
  if (content.length === 0) return { fence: 0, reserve: 0, boot: 0 };
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
    ) return { fence, reserve: fence, boot: 0 };
    throw corrupt(path, `it is not a "${LEGACY_FORMAT}" record`);
  }
  const slots = [
    parseSlot(content.subarray(0, SLOT)),
    parseSlot(content.subarray(SLOT, 2 * SLOT)),
  ].filter((s): s is Slot => s !== undefined);
  if (slots.length === 0) throw corrupt(path, "neither slot is valid");
  return slots.reduce((a, b) => (b.fence > a.fence ? b : a));
}

/**
 * The counter's current value (0 when the file does not exist).
 *
 * @param path The `.fence` file.
 * @returns The highest fence handed out.
 */
export async function readFence(path: string): Promise<number> {
  try {
    return newest(path, await Deno.readFile(path)).fence;
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
  check: () => void | Promise<void>,
): Promise<number> {
  let file: Deno.FsFile;
  try {
    // The open, read and in-place write of this 1 KiB file are synchronous:
    // each is one short system call, cheaper than a thread-pool hop (see
    // "Synchronous steps" in _dir_backend.ts). The rare fdatasync is not.
    file = Deno.openSync(path, { read: true, write: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // First use: create both slots durably, then bump in place.
    await check();
    const zero = { fence: 0, reserve: 0, boot: 0 };
    const initial = new Uint8Array(2 * SLOT);
    initial.set(slotBytes(name, zero), 0);
    initial.set(slotBytes(name, zero), SLOT);
    await writeBytes(path, initial, { durability: "durable" });
    file = Deno.openSync(path, { read: true, write: true });
  }
  try {
    const content = readAll(file);
    const current = newest(path, content);
    const boot = bootTime();
    const sameBoot = boot !== 0 && current.boot !== 0 &&
      Math.abs(boot - current.boot) <= BOOT_TOLERANCE_S;
    // Unsynced bumps are safe only within the boot that synced the reserve
    // and below that reserve. Otherwise jump past everything that may have
    // been handed out (the reserve) and sync: with a known boot time, a new
    // reserve ahead; without one, no reserve (every bump synced).
    const cheap = sameBoot && current.fence + 1 <= current.reserve;
    const fence = cheap
      ? current.fence + 1
      : Math.max(current.fence, current.reserve) + 1;
    const next: Slot = cheap
      ? { ...current, fence }
      : boot === 0
      ? { fence, reserve: fence, boot: 0 }
      : { fence, reserve: fence + RESERVE_STEP, boot };
    await check();
    if (content.length !== 2 * SLOT || content[0] === 0x7b) {
      // Converting a legacy file: replace it whole and durably.
      const fresh = new Uint8Array(2 * SLOT);
      fresh.set(slotBytes(name, next), 0);
      fresh.set(slotBytes(name, next), SLOT);
      await writeBytes(path, fresh, { durability: "durable" });
      return fence;
    }
    file.seekSync((fence % 2) * SLOT, Deno.SeekMode.Start);
    const bytes = slotBytes(name, next);
    for (let written = 0; written < bytes.length;) {
      written += file.writeSync(bytes.subarray(written));
    }
    if (!cheap) await file.syncData();
    return fence;
  } finally {
    file.close();
  }
}

// One read is enough for a fence file (1 KiB); a longer file is not one,
// and `highest` refuses it by its length.
function readAll(file: Deno.FsFile): Uint8Array {
  const buffer = new Uint8Array(2 * SLOT + 1);
  const n = file.readSync(buffer) ?? 0;
  return buffer.subarray(0, n);
}
