// The highest fence each protected file has seen, per lock, so a holder
// that lost its lock while paused cannot write after its successor.
//
// Invariant: once a holder of fence f of lock L has begun on a target (the
// fence is recorded before it reads the target, and checked again right
// before it writes), no holder of a smaller fence of L writes that target.
// Recording at the start, not only at the write, matters: a successor that
// has read the target but not yet written it must still shut out the
// paused holder it replaced, or the successor's write would silently drop
// the paused holder's. The record runs ahead of the data, never behind it,
// so a crash between the two leaves the target guarded.
//
// Where the records live, and why: `<root>/locks/fences/<lock>.<hash>.json`
// rather than a sidecar next to each target. A fence is a number from one
// lock's counter (`<root>/locks/<lock>.fence`), comparable only with other
// fences of that lock under that root, so the record belongs beside the
// counter; the user's directories stay free of sidecars that globs, builds
// and `git add -A` would pick up; and `sturdy lock status` finds them all
// in one place.
//
// Limit: a file system offers no compare-and-swap on rename, so the check
// and the write that follows it are two steps. The check runs after the
// caller's callback, immediately before the replace, so a pause anywhere
// in the callback (where user code runs and where pauses happen) is caught;
// a pause in the few microseconds between the check and the rename is not.

import { basename, dirname, join, resolve } from "node:path";
import { ensureDir, isNotFound, readJson, writeJson } from "../fs/mod.ts";
import { SturdyError } from "../retry/mod.ts";
import { StaleFenceError } from "./errors.ts";

/** The on-disk record of the highest fence admitted for one target. */
export interface FenceRecord {
  format: "sturdy.fence/1";
  /** The target's canonical absolute path. */
  target: string;
  /** The lock whose fences these are. */
  lock: string;
  /** The highest fence admitted. */
  fence: number;
  /** When it was first recorded (ISO 8601). */
  admittedAt: string;
}

const FORMAT = "sturdy.fence/1";

/**
 * The canonical absolute path of `path`: resolved against the working
 * directory, with its directory's symlinks resolved (the file itself may not
 * exist yet), so `/tmp/a.json` and `/private/tmp/a.json` name one target.
 */
export async function canonicalTarget(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return join(await Deno.realPath(dirname(absolute)), basename(absolute));
  } catch {
    return absolute; // the directory is missing: the write will say so
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * The lock name guarding a file: `path-<base>-<hash>`, where `base` is the
 * file name made safe for a lock name (so `sturdy lock status` shows what
 * the lock is for) and `hash` is the start of the SHA-256 of its canonical
 * path (so two files never share a name by accident).
 */
export async function lockNameForTarget(target: string): Promise<string> {
  const base = basename(target).replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 48);
  return `path-${base}-${(await sha256Hex(target)).slice(0, 16)}`;
}

/** Where the fence record of `target` under `lock` lives. */
export async function fenceRecordPath(
  root: string,
  lock: string,
  target: string,
): Promise<string> {
  return join(
    root,
    "locks",
    "fences",
    `${lock}.${(await sha256Hex(target)).slice(0, 32)}.json`,
  );
}

/**
 * The highest fence admitted for `target` under `lock`, or 0 when none has
 * been. A record that cannot be read fails closed: guessing 0 would admit a
 * stale holder.
 */
export async function readFence(
  root: string,
  lock: string,
  target: string,
  signal?: AbortSignal,
): Promise<number> {
  const file = await fenceRecordPath(root, lock, target);
  let record: unknown;
  try {
    record = await readJson(file, signal ? { signal } : {});
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
  const fence = (record as Partial<FenceRecord> | null)?.fence;
  if (
    (record as Partial<FenceRecord> | null)?.format !== FORMAT ||
    !Number.isSafeInteger(fence) || fence! < 0
  ) {
    throw new SturdyError(
      `Cannot check the fence of "${target}": the record "${file}" is not a ${FORMAT} record; delete it only if no holder of lock "${lock}" can still be paused`,
      { code: "corrupt_fence", path: file, operation: "admitFence" },
    );
  }
  return fence!;
}

/** What {@linkcode admitFence} checks and records. */
export interface FenceClaim {
  /** The Sturdy root whose `locks/` holds the lock. */
  root: string;
  /** The lock's name. */
  lock: string;
  /** The holder's fence. */
  fence: number;
  /** The target's canonical path. */
  target: string;
  /** When, for the record (ms since the epoch). */
  now: number;
  signal?: AbortSignal | undefined;
  /** Runs after the check and before a new record is written. */
  beforeRecord?: () => void;
}

/**
 * Admits the holder of fence `fence` of `lock` to `target`: refuses it
 * with {@linkcode StaleFenceError} when a larger fence has been recorded,
 * else records `fence` (durably) unless it already is the newest.
 */
export async function admitFence(claim: FenceClaim): Promise<void> {
  const { root, lock, fence, target, signal } = claim;
  const newest = await readFence(root, lock, target, signal);
  if (newest > fence) {
    throw new StaleFenceError(target, fence, newest, lock);
  }
  claim.beforeRecord?.();
  // A holder writing again under the same fence needs no new record.
  if (newest === fence) return;
  const file = await fenceRecordPath(root, lock, target);
  const io = signal ? { signal } : {};
  await ensureDir(dirname(file), io);
  const record: FenceRecord = {
    format: FORMAT,
    target,
    lock,
    fence,
    admittedAt: new Date(claim.now).toISOString(),
  };
  await writeJson(file, record, io);
}
