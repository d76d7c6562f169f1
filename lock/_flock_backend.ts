// kind "flock": a kernel lock (Deno.FsFile.tryLock: flock on Unix,
// LockFileEx on Windows) on <root>/locks/<name>.flock, the owner record
// beside it in <name>.flock.json, the same fence counter as "dir".
//
// Invariants:
// 1. The kernel grants the lock to one open file at a time and drops it
//    when the holder closes the file or dies, even by kill -9: no stale
//    state and no takeover logic are needed.
// 2. The .flock file is never deleted on release: all contenders must
//    lock the same inode. Only a forced break deletes it; the holder's
//    heartbeat then sees the path name another file and reports the loss.
// 3. Waiting never blocks inside the kernel: Deno's blocking lock() runs
//    on a thread that cannot be cancelled, so the caller polls tryLock()
//    with backoff, which honours timeout and signal.
// 4. Only the holder writes <name>.flock.json, in place through one open
//    file (no temp file and rename: the record is written while the
//    kernel lock is held, so there is a single writer). A record is padded
//    with spaces to at least the file's length, so it never ends in an
//    older record's tail; release empties the file, which reads as "no
//    record". A reader that catches a write half-done sees no record for
//    that instant (the kernel lock still says who is alive). A forced
//    break deletes the file; the old holder then writes only into its own
//    unlinked inode.
//
// The steps are synchronous system calls on an existing local file (open,
// tryLock, fstat, stat, pread, pwrite, ftruncate: 5-20 µs each, where an
// async op costs a 50-100 µs thread-pool hop); see "Synchronous steps" in
// _dir_backend.ts for the trade-off.

import { SturdyError } from "../retry/mod.ts";
import type {
  AcquireAttempt,
  AcquireRequest,
  Lease,
  LockBackend,
  LockInfo,
  RenewOutcome,
} from "./backend.ts";
import { bumpFence } from "./_fence.ts";
import {
  type FileId,
  fileIdSync,
  isSameFileSync,
  probeKernelLockSync,
  tryLockSync,
} from "./_kernel_lock.ts";
import { readOwnerFileSync } from "./_owner_file.ts";
import { describeHolder } from "./errors.ts";
import { lockNames, type LockPaths, lockPaths, locksDir } from "./_paths.ts";
import type { LockOwner } from "./owner.ts";
import type { Clock } from "../retry/mod.ts";

class FlockLease implements Lease {
  constructor(
    readonly name: string,
    public owner: LockOwner,
    readonly paths: LockPaths,
    readonly file: Deno.FsFile,
    readonly id: FileId,
    readonly record: Deno.FsFile,
  ) {}
}

const encoder = new TextEncoder();

/** Writes `owner` over the record in place (invariant 4). */
function writeRecord(record: Deno.FsFile, owner: LockOwner): void {
  const text = JSON.stringify(owner);
  const size = record.statSync().size;
  const bytes = encoder.encode(text.padEnd(Math.max(size, text.length)));
  record.seekSync(0, Deno.SeekMode.Start);
  for (let written = 0; written < bytes.length;) {
    written += record.writeSync(bytes.subarray(written));
  }
}

/** Opens the record file, creating it (and the locks directory) once. */
function openRecord(path: string): Deno.FsFile {
  return Deno.openSync(path, { read: true, write: true, create: true });
}

/** Opens the lock file, creating it (and the locks directory) once. */
async function openLockFile(root: string, path: string): Promise<Deno.FsFile> {
  const options = { read: true, write: true, create: true };
  try {
    return Deno.openSync(path, options);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(locksDir(root), { recursive: true });
  return await Deno.open(path, options);
}

/** The "flock" lock mechanism. */
export class FlockBackend implements LockBackend {
  readonly kind = "flock" as const;
  readonly #root: string;
  readonly #clock: Clock;

  /** Creates the backend for one root. */
  constructor(options: { root: string; clock: Clock }) {
    this.#root = options.root;
    this.#clock = options.clock;
  }

  /** One attempt: tryLock on the .flock file. */
  async acquire(request: AcquireRequest): Promise<AcquireAttempt> {
    const paths = lockPaths(this.#root, request.name);
    const file = await openLockFile(this.#root, paths.flock);
    let lease: FlockLease | undefined;
    let record: Deno.FsFile | undefined;
    try {
      const locked = tryLockSync(file);
      if (locked === undefined) {
        throw new SturdyError(
          `Cannot acquire lock ${
            JSON.stringify(request.name)
          }: the file system of ${
            JSON.stringify(paths.flock)
          } does not support kernel locks; use kind "dir"`,
          { code: "lock_unsupported", path: paths.flock },
        );
      }
      if (!locked) {
        return { acquired: false, holder: this.#held(request.name) };
      }
      const id = fileIdSync(file);
      const check = () => {
        // Invariant 2: a file opened before a forced break is not the lock.
        if (!isSameFileSync(paths.flock, id)) throw new LostFile();
      };
      check();
      const fence = await bumpFence(paths.fence, request.name, check);
      const owner: LockOwner = { ...request.owner, fence };
      record = openRecord(paths.flockOwner);
      writeRecord(record, owner);
      lease = new FlockLease(request.name, owner, paths, file, id, record);
      return { acquired: true, lease };
    } catch (err) {
      if (err instanceof LostFile) return { acquired: false, holder: null };
      throw err;
    } finally {
      if (!lease) {
        record?.close();
        file.close();
      }
    }
  }

  /** Refreshes the owner record while the .flock file is still ours. */
  renew(lease: Lease, now: number): Promise<RenewOutcome> {
    try {
      return Promise.resolve(this.#renew(lease as FlockLease, now));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #renew(held: FlockLease, now: number): RenewOutcome {
    const current = readOwnerFileSync(held.paths.flockOwner);
    if (!isSameFileSync(held.paths.flock, held.id)) {
      return { held: false, reason: "removed", current: current ?? null };
    }
    if (current && current.token !== held.owner.token) {
      return { held: false, reason: "taken_over", current };
    }
    const owner = { ...held.owner, heartbeatAt: now };
    writeRecord(held.record, owner);
    held.owner = owner;
    return { held: true, owner };
  }

  /** Removes the owner record (if ours), then drops the kernel lock. */
  release(lease: Lease): Promise<boolean> {
    const held = lease as FlockLease;
    try {
      if (!isSameFileSync(held.paths.flock, held.id)) {
        return Promise.resolve(false);
      }
      const current = readOwnerFileSync(held.paths.flockOwner);
      if (current && current.token !== held.owner.token) {
        return Promise.resolve(false);
      }
      try {
        held.record.truncateSync(0); // invariant 4: empty reads as no record
      } catch { /* the record only matters while the lock is held */ }
      return Promise.resolve(true);
    } catch (err) {
      return Promise.reject(err);
    } finally {
      held.record.close();
      held.file.close();
    }
  }

  /** What is known about lock `name`, or `null` if it is not held. */
  inspect(name: string): Promise<LockInfo | null> {
    try {
      return Promise.resolve(this.#inspect(name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #inspect(name: string): LockInfo | null {
    const paths = lockPaths(this.#root, name);
    const kernel = probeKernelLockSync(paths.flock);
    if (kernel === "held") return this.#held(name);
    const owner = readOwnerFileSync(paths.flockOwner);
    if (!owner) return null;
    // A record left by a holder that was killed: the lock itself is free.
    return this.#info(
      name,
      owner,
      kernel === "free" ? "dead" : "unknown",
      kernel === "free",
      kernel === "free"
        ? `its kernel lock is free: pid ${owner.pid} exited or was killed`
        : "kernel locks are not supported here",
    );
  }

  /** Every "flock" lock under the root. */
  async list(): Promise<LockInfo[]> {
    const names = await lockNames(this.#root, ".flock");
    const infos = await Promise.all(names.map((n) => this.inspect(n)));
    return infos.filter((i): i is LockInfo => i !== null);
  }

  /**
   * Removes a left-over owner record; with `force`, also deletes the lock
   * file of a live holder (new contenders then lock a new file).
   */
  async break(name: string, force: boolean): Promise<boolean> {
    const paths = lockPaths(this.#root, name);
    const info = await this.inspect(name);
    if (!info) return false;
    if (!info.stale && !force) {
      throw new SturdyError(
        `Cannot break lock ${JSON.stringify(name)}: ${
          describeHolder(info)
        }. Wait for it, or pass force to break it anyway (its holder then loses the lock)`,
        { code: "lock_held", path: paths.flock, operation: "breakLock" },
      );
    }
    if (!info.stale) await Deno.remove(paths.flock).catch(() => {});
    await Deno.remove(paths.flockOwner).catch(() => {});
    return true;
  }

  // The holder of a lock whose kernel lock is held.
  #held(name: string): LockInfo {
    const paths = lockPaths(this.#root, name);
    const owner = readOwnerFileSync(paths.flockOwner);
    return this.#info(
      name,
      owner ?? null,
      "alive",
      false,
      "its kernel lock is held",
    );
  }

  #info(
    name: string,
    owner: LockOwner | null,
    holder: LockInfo["holder"],
    stale: boolean,
    evidence: string,
  ): LockInfo {
    const now = this.#clock.now();
    return {
      name,
      kind: "flock",
      path: lockPaths(this.#root, name).flock,
      owner,
      heldForMs: owner ? Math.max(0, now - owner.acquiredAt) : null,
      heartbeatAgeMs: owner ? Math.max(0, now - owner.heartbeatAt) : null,
      holder,
      stale,
      evidence,
    };
  }
}

/** Thrown inside an acquisition when the lock file was replaced. */
class LostFile extends Error {}
