// Who owns a transaction, and whether it may still be committing, so
// recovery never rolls back a commit in flight.
//
// A transaction id is `<pid>-<boot>-<start>-<random>` (as in temp names).
// Liveness, strongest first: in flight in this process; the owner checked
// by pid, boot and start token; where that cannot be told (another host,
// or Deno without access to /proc), the kernel lock the committing process
// holds on its journal (released by the kernel even on SIGKILL).

import type { FileSystem } from "./file_system.ts";
import { ownerState, parseTempName, tempName } from "./_temp_name.ts";

// Ids of the transactions this process is committing right now. Recovery
// must never roll back a commit in flight, and a pid alone cannot tell a
// live commit of this process from one it abandoned (a rollback that
// failed). Entries live only for the duration of one commit.
const live = new Set<string>();

/** A fresh transaction id, owned by this process and marked live. */
export function newTransactionId(): string {
  const id = tempName("tx").slice(4, -".sturdy-tmp".length);
  live.add(id);
  return id;
}

/** Marks a transaction as no longer committing in this process. */
export function endTransaction(id: string): void {
  live.delete(id);
}

/** Whether the owner of `id` is provably alive, dead, or cannot be told. */
function owner(id: string): "live" | "dead" | "unknown" {
  if (live.has(id)) return "live";
  const parsed = parseTempName(`.tx.${id}.sturdy-tmp`);
  if (!parsed) return "unknown";
  // Our own pid but not in flight: a commit this process abandoned.
  if (parsed.pid === Deno.pid) return "dead";
  const state = ownerState(parsed);
  return state === "alive" ? "live" : state;
}

/**
 * Takes the kernel lock that a committing process holds on its journal
 * for the whole commit; the kernel drops it when the process dies, even by
 * SIGKILL. Returns the open file holding it, or `undefined` where it
 * cannot be had (a file system without locks, an fs that is not the real
 * one): the owner check by name still applies there.
 */
export async function holdJournalLock(
  path: string,
): Promise<Deno.FsFile | undefined> {
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    if (await file.tryLock(true)) return file;
  } catch { /* no lock to be had */ }
  file?.close();
  return undefined;
}

/**
 * Whether the transaction `id`, whose journal is `path`, may still be
 * committing: it is in flight in this process, its owner provably runs,
 * or, where the owner cannot be checked (another host, or Deno without
 * access to /proc), a live process holds the journal's lock.
 */
export async function isLive(id: string, path: string): Promise<boolean> {
  const state = owner(id);
  if (state !== "unknown") return state === "live";
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    return !(await file.tryLock(true));
  } catch {
    return false; // gone, or no locks here: judged by its name alone
  } finally {
    file?.close();
  }
}

/** Options of the sweeps: how old an unjudgeable leftover must be. */
export interface SweepAge {
  maxAgeMs: number;
  now: number;
}

/** Whether a leftover of `id` may be removed: owner dead, or old enough. */
export async function removable(
  fs: FileSystem,
  id: string,
  path: string,
  age: SweepAge,
): Promise<boolean> {
  const state = owner(id);
  if (state !== "unknown") return state === "dead";
  const info = await fs.lstat(path).catch(() => undefined);
  // A hard link keeps the target's mtime; ctime says when it was made.
  const changed = info?.ctime ?? info?.mtime ?? null;
  return changed !== null && age.now - changed.getTime() >= age.maxAgeMs;
}
