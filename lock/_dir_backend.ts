// kind "dir": a lock directory with an owner record, a liveness file and
// single-winner stale takeover. Layout under <root>/locks/:
//   <name>.lock/          the lock: held while it exists and its holder lives
//     alive               created exclusively and kernel-locked by the holder
//     owner.json          the owner record, replaced atomically by heartbeats
//   <name>.lock.reclaim   kernel-locked by the one waiter taking over
//   <name>.fence          the fencing counter (see _fence.ts)
//
// Invariants, and the step that keeps each:
// 1. One holder per directory: `mkdir` is atomic, and the directory belongs
//    to whoever creates `alive` in it exclusively. A holder paused between
//    mkdir and that create, whose directory was meanwhile taken over,
//    fails the create (or wins a successor's still-empty directory, whose
//    creator then fails it): never both.
// 2. A live local holder is never robbed, however old: its kernel lock on
//    `alive` proves it alive. Stale means provably dead (kernel lock free,
//    or pid gone / reused), or, for a holder on another host, a heartbeat
//    older than its ttl, or no readable owner and no kernel lock after a
//    grace (a crash between mkdir and the owner write).
// 3. Single winner: a waiter takes over only while holding the reclaim
//    kernel lock, re-judges the directory there, and renames it to a
//    unique graveyard; a directory can be renamed away only once. With
//    the reclaim lock held nobody else can move the directory, so the
//    one renamed is the one judged (the re-check is not racy). Losers see
//    a busy reclaim lock or a vanished directory and go back to waiting.
// 4. A holder writes into the directory (fence check, owner record,
//    heartbeat) only after checking that `alive` at the path is the file
//    it holds open, so it never writes into a successor's directory
//    except in the instant between that check and the write; then the
//    successor's heartbeat sees a foreign token and stops too, and fences
//    refuse the older holder's writes.
// 5. The kernel lock is dropped only after the directory is renamed away,
//    so a waiter never sees a live directory with a free `alive`.

import { formatDuration, sleep, SturdyError } from "../retry/mod.ts";
import type { Clock } from "../retry/mod.ts";
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
import {
  createOwnerFile,
  readOwnerFile,
  writeOwnerFile,
} from "./_owner_file.ts";
import { describeHolder } from "./errors.ts";
import {
  graveyardPath,
  type LockPaths,
  lockPaths,
  locksDir,
} from "./_paths.ts";
import { isSameHost, type LockOwner, pidEvidence } from "./owner.ts";

/** Options of {@linkcode DirBackend}. */
export interface DirBackendOptions {
  /** The Sturdy root. */
  root: string;
  /** This process's host identity. */
  host: string;
  /** The time source for ages. */
  clock: Clock;
  /** How long a lock without a readable owner is given before it is stale. */
  graceMs: number;
}

class DirLease implements Lease {
  constructor(
    readonly name: string,
    public owner: LockOwner,
    readonly paths: LockPaths,
    readonly file: Deno.FsFile,
    readonly id: FileId,
  ) {}
}

/** What a waiter saw, plus the directory it saw it in. */
interface Seen {
  info: LockInfo;
  dir: FileId;
}

/** Thrown inside a claim when the directory turns out not to be ours. */
class LostClaim extends Error {}

/** How long a new holder retries its own liveness lock against a probe. */
const CLAIM_LOCK_TRIES = 200;

/** The "dir" lock mechanism. */
export class DirBackend implements LockBackend {
  readonly kind = "dir" as const;
  readonly #root: string;
  readonly #host: string;
  readonly #clock: Clock;
  readonly #graceMs: number;

  /** Creates the backend for one root. */
  constructor(options: DirBackendOptions) {
    this.#root = options.root;
    this.#host = options.host;
    this.#clock = options.clock;
    this.#graceMs = options.graceMs;
  }

  /** One attempt: mkdir, or take over a provably stale lock and mkdir. */
  async acquire(request: AcquireRequest): Promise<AcquireAttempt> {
    const paths = lockPaths(this.#root, request.name);
    let tookOver = false;
    for (let step = 0; step < 4; step++) {
      try {
        await Deno.mkdir(paths.dir);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          await Deno.mkdir(locksDir(this.#root), { recursive: true });
          continue;
        }
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
        const seen = await this.#examine(request.name, paths);
        if (!seen) continue; // released meanwhile
        if (seen.info.stale && !tookOver) {
          tookOver = true;
          if (await this.#takeOver(request.name, paths)) continue;
        }
        return { acquired: false, holder: seen.info };
      }
      const lease = await this.#claim(request, paths);
      if (lease) return { acquired: true, lease };
      break;
    }
    return { acquired: false, holder: await this.inspect(request.name) };
  }

  /** Refreshes the owner record if the directory is still ours. */
  async renew(lease: Lease, now: number): Promise<RenewOutcome> {
    const held = lease as DirLease;
    const lost = await this.#lost(held);
    if (lost) return lost;
    const owner = { ...held.owner, heartbeatAt: now };
    await writeOwnerFile(held.paths.owner, owner);
    // Invariant 4: had the directory changed hands in between, the write
    // went to the successor's; both sides now stop.
    const after = await this.#lost(held);
    if (after) return after;
    held.owner = owner;
    return { held: true, owner };
  }

  /** Renames the directory away if it is still ours, then drops `alive`. */
  async release(lease: Lease): Promise<boolean> {
    const held = lease as DirLease;
    try {
      if (await this.#lost(held)) return false;
      const grave = graveyardPath(this.#root, held.name);
      try {
        await Deno.rename(held.paths.dir, grave);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false;
        throw err;
      }
      await Deno.remove(grave, { recursive: true }).catch(() => {});
      return true;
    } finally {
      // Invariant 5: the kernel lock goes last.
      held.file.close();
    }
  }

  /** What is known about lock `name`, or `null` if it is not held. */
  async inspect(name: string): Promise<LockInfo | null> {
    return (await this.#examine(name, lockPaths(this.#root, name)))?.info ??
      null;
  }

  /** Every "dir" lock under the root. */
  async list(): Promise<LockInfo[]> {
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(locksDir(this.#root))) {
        if (entry.isDirectory && entry.name.endsWith(".lock")) {
          names.push(entry.name.slice(0, -".lock".length));
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
   * Removes lock `name` if its holder is provably dead, or whatever its
   * state when `force` is set.
   */
  async break(name: string, force: boolean): Promise<boolean> {
    const paths = lockPaths(this.#root, name);
    return await this.#whileReclaiming(paths, async () => {
      const seen = await this.#examine(name, paths);
      if (!seen) return false;
      if (!seen.info.stale && !force) {
        throw new SturdyError(
          `Cannot break lock ${JSON.stringify(name)}: ${
            describeHolder(seen.info)
          }. It is not provably dead; wait for it, or pass force to break it anyway (its holder then loses the lock and its fenced writes are refused)`,
          { code: "lock_held", path: paths.dir, operation: "breakLock" },
        );
      }
      return await this.#bury(name, paths);
    }) ?? false;
  }

  // Takes `dir` over if, judged again under the reclaim lock, it is stale.
  async #takeOver(name: string, paths: LockPaths): Promise<boolean> {
    return await this.#whileReclaiming(paths, async () => {
      const seen = await this.#examine(name, paths);
      if (!seen?.info.stale) return false;
      return await this.#bury(name, paths);
    }) ?? false;
  }

  // Runs `fn` holding the reclaim kernel lock; undefined when another
  // waiter holds it (it is taking over right now: let it).
  async #whileReclaiming<T>(
    paths: LockPaths,
    fn: () => Promise<T>,
  ): Promise<T | undefined> {
    const file = await Deno.open(paths.reclaim, {
      read: true,
      write: true,
      create: true,
    });
    try {
      // On a file system without locks the takeover runs unguarded; the
      // graveyard re-check below still catches most races.
      if ((await tryLock(file)) === false) return undefined;
      return await fn();
    } finally {
      file.close();
    }
  }

  // Invariant 3: one rename of the judged directory to a unique name.
  async #bury(name: string, paths: LockPaths): Promise<boolean> {
    const grave = graveyardPath(this.#root, name);
    try {
      await Deno.rename(paths.dir, grave);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    await Deno.remove(grave, { recursive: true }).catch(() => {});
    return true;
  }

  // Makes the freshly created directory ours: alive, fence, owner record.
  async #claim(
    request: AcquireRequest,
    paths: LockPaths,
  ): Promise<DirLease | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(paths.alive, {
        read: true,
        write: true,
        createNew: true,
      });
    } catch (err) {
      // Invariant 1: our directory was taken over while we were paused.
      if (
        err instanceof Deno.errors.AlreadyExists ||
        err instanceof Deno.errors.NotFound
      ) return undefined;
      throw err;
    }
    let lease: DirLease | undefined;
    let id: FileId | undefined;
    try {
      const mine = await fileId(file);
      id = mine;
      if (!(await this.#lockAlive(file))) return undefined;
      const check = async () => {
        if (!(await isSameFile(paths.alive, mine))) throw new LostClaim();
      };
      // bumpFence checks before it writes; the owner record needs no check
      // before it: it is created exclusively (a successor's record is never
      // overwritten), and the check after it catches a takeover meanwhile.
      const fence = await bumpFence(paths.fence, request.name, check);
      const owner: LockOwner = { ...request.owner, fence };
      await createOwnerFile(paths.owner, owner).catch((err) => {
        // A successor's record, or no directory: ours was taken over.
        if (
          err instanceof Deno.errors.AlreadyExists ||
          err instanceof Deno.errors.NotFound
        ) throw new LostClaim();
        throw err;
      });
      await check();
      lease = new DirLease(request.name, owner, paths, file, mine);
      return lease;
    } catch (err) {
      if (err instanceof LostClaim) return undefined;
      throw err;
    } finally {
      if (!lease) {
        // Leave nothing behind that waiters would have to wait out.
        if (id && (await isSameFile(paths.alive, id).catch(() => false))) {
          await this.#bury(request.name, paths).catch(() => false);
        }
        file.close();
      }
    }
  }

  // Locks the new `alive`. A waiter's probe may hold it for an instant
  // (it read an older directory's owner): retry briefly. `true` also when
  // the file system has no locks (other evidence is used then).
  async #lockAlive(file: Deno.FsFile): Promise<boolean> {
    for (let i = 0; i < CLAIM_LOCK_TRIES; i++) {
      const locked = await tryLock(file);
      if (locked !== false) return true;
      await sleep(5);
    }
    return false;
  }

  // Why `held` is no longer ours, or undefined if it still is.
  async #lost(held: DirLease): Promise<RenewOutcome | undefined> {
    const ours = await isSameFile(held.paths.alive, held.id);
    const current = await readOwnerFile(held.paths.owner);
    if (ours && (!current || current.token === held.owner.token)) {
      return undefined;
    }
    return {
      held: false,
      reason: current ? "taken_over" : "removed",
      current: current ?? null,
    };
  }

  // Judges the lock directory: who holds it and whether it is stale.
  async #examine(name: string, paths: LockPaths): Promise<Seen | undefined> {
    let dirStat: Deno.FileInfo;
    try {
      dirStat = await Deno.stat(paths.dir);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    const now = this.#clock.now();
    const owner = await readOwnerFile(paths.owner);
    const kernel = await probeKernelLock(paths.alive);
    const dir = { dev: dirStat.dev, ino: dirStat.ino };
    const base = {
      name,
      kind: "dir" as const,
      path: paths.dir,
      owner: owner ?? null,
      heldForMs: owner ? Math.max(0, now - owner.acquiredAt) : null,
      heartbeatAgeMs: owner ? Math.max(0, now - owner.heartbeatAt) : null,
    };
    const verdict = (
      holder: LockInfo["holder"],
      stale: boolean,
      evidence: string,
    ): Seen => ({ info: { ...base, holder, stale, evidence }, dir });

    if (!owner) {
      if (kernel === "held") {
        return verdict("alive", false, "its holder is writing the owner file");
      }
      const age = Math.max(0, now - (dirStat.mtime?.getTime() ?? now));
      const stale = age > this.#graceMs;
      return verdict(
        "unknown",
        stale,
        `no readable owner file for ${formatDuration(age)} (grace ${
          formatDuration(this.#graceMs)
        })${stale ? ": abandoned half-way" : ""}`,
      );
    }
    if (!isSameHost(this.#host, owner.host)) {
      // Local proofs mean nothing for another machine: only the lease.
      const age = Math.max(0, now - owner.heartbeatAt);
      const stale = age > owner.ttlMs;
      const where = this.#host === "unknown" || owner.host === "unknown"
        ? "hosts cannot be compared (needs --allow-sys=hostname)"
        : "holder on another host";
      return verdict(
        "unknown",
        stale,
        `${where}; last heartbeat ${formatDuration(age)} ago (ttl ${
          formatDuration(owner.ttlMs)
        })${stale ? ": lease expired" : ""}`,
      );
    }
    if (kernel === "held") {
      return verdict("alive", false, "its kernel lock is held");
    }
    if (kernel === "free") {
      // The probe may have opened a successor's `alive`: only if the owner
      // is still the one read before is the free lock that owner's.
      const again = await readOwnerFile(paths.owner);
      if (again?.token !== owner.token) {
        return verdict("unknown", false, "the lock changed hands just now");
      }
      return verdict(
        "dead",
        true,
        `its kernel lock was released: pid ${owner.pid} exited or was killed`,
      );
    }
    const pid = await pidEvidence(owner.pid, owner.processStart);
    return verdict(pid.state, pid.state === "dead", pid.evidence);
  }
}
