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
  fileId,
  isSameFile,
  probeKernelLock,
  tryLock,
} from "./_kernel_lock.ts";
import { readOwnerFile, writeOwnerFile } from "./_owner_file.ts";
import { describeHolder } from "./errors.ts";
import { type LockPaths, lockPaths, locksDir } from "./_paths.ts";
import type { LockOwner } from "./owner.ts";
import type { Clock } from "../retry/mod.ts";

class FlockLease implements Lease {
  constructor(
    readonly name: string,
    public owner: LockOwner,
    readonly paths: LockPaths,
    readonly file: Deno.FsFile,
    readonly id: FileId,
  ) {}
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
    await Deno.mkdir(locksDir(this.#root), { recursive: true });
    const file = await Deno.open(paths.flock, {
      read: true,
      write: true,
      create: true,
    });
    let lease: FlockLease | undefined;
    try {
      const locked = await tryLock(file);
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
        return { acquired: false, holder: await this.#held(request.name) };
      }
      const id = await fileId(file);
      const check = async () => {
        // Invariant 2: a file opened before a forced break is not the lock.
        if (!(await isSameFile(paths.flock, id))) throw new LostFile();
      };
      await check();
      const fence = await bumpFence(paths.fence, request.name, check);
      const owner: LockOwner = { ...request.owner, fence };
      await writeOwnerFile(paths.flockOwner, owner);
      lease = new FlockLease(request.name, owner, paths, file, id);
      return { acquired: true, lease };
    } catch (err) {
      if (err instanceof LostFile) return { acquired: false, holder: null };
      throw err;
    } finally {
      if (!lease) file.close();
    }
  }

  /** Refreshes the owner record while the .flock file is still ours. */
  async renew(lease: Lease, now: number): Promise<RenewOutcome> {
    const held = lease as FlockLease;
    const current = await readOwnerFile(held.paths.flockOwner);
    if (!(await isSameFile(held.paths.flock, held.id))) {
      return { held: false, reason: "removed", current: current ?? null };
    }
    if (current && current.token !== held.owner.token) {
      return { held: false, reason: "taken_over", current };
    }
    const owner = { ...held.owner, heartbeatAt: now };
    await writeOwnerFile(held.paths.flockOwner, owner);
    held.owner = owner;
    return { held: true, owner };
  }

  /** Removes the owner record (if ours), then drops the kernel lock. */
  async release(lease: Lease): Promise<boolean> {
    const held = lease as FlockLease;
    try {
      if (!(await isSameFile(held.paths.flock, held.id))) return false;
      const current = await readOwnerFile(held.paths.flockOwner);
      if (current && current.token !== held.owner.token) return false;
      await Deno.remove(held.paths.flockOwner).catch(() => {});
      return true;
    } finally {
      held.file.close();
    }
  }

  /** What is known about lock `name`, or `null` if it is not held. */
  async inspect(name: string): Promise<LockInfo | null> {
    const paths = lockPaths(this.#root, name);
    const kernel = await probeKernelLock(paths.flock);
    if (kernel === "held") return await this.#held(name);
    const owner = await readOwnerFile(paths.flockOwner);
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
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(locksDir(this.#root))) {
        if (entry.isFile && entry.name.endsWith(".flock")) {
          names.push(entry.name.slice(0, -".flock".length));
        }
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
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
  async #held(name: string): Promise<LockInfo> {
    const paths = lockPaths(this.#root, name);
    const owner = await readOwnerFile(paths.flockOwner);
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
