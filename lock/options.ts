import type { Clock } from "../retry/mod.ts";
import type { LockCompromisedError } from "./errors.ts";
import type { LockOwner } from "./owner.ts";

/** The mechanism behind a lock. */
export type LockKind = "dir" | "flock";

/** Why a held lock stopped protecting anything. */
export type LockCompromisedReason =
  /** Another process now owns the lock (its token is in the owner file). */
  | "taken_over"
  /** The lock directory or file is gone (broken by force, or deleted). */
  | "removed";

/**
 * What `onCompromised` is told when a held lock is found lost. The lock's
 * `signal` is already aborted (with `error`) when this is delivered.
 */
export interface LockCompromisedEvent {
  /** The lock's name. */
  name: string;
  /** The lost lock's token. */
  token: string;
  /** The lost lock's fence. */
  fence: number;
  /** Why the lock is lost. */
  reason: LockCompromisedReason;
  /** Who owns the lock now, when that could be read. */
  current: LockOwner | null;
  /** When it was noticed (clock milliseconds). */
  detectedAt: number;
  /** The error the lock's signal was aborted with. */
  error: LockCompromisedError;
}

/** Where locks live: the Sturdy root. */
export interface LockRootOptions {
  /**
   * The Sturdy root; locks live in `<root>/locks/`.
   *
   * @default {".sturdy"}
   */
  root?: string;
  /**
   * This process's host identity, compared with an owner's `host` to decide
   * whether local proofs of death (kernel lock, pid) apply. Tests use it to
   * pretend to be another machine.
   *
   * @default {Deno.hostname()}
   */
  host?: string;
  /**
   * Time source, for heartbeat ages.
   *
   * @default {systemClock}
   */
  clock?: Clock;
}

/** Options of `acquireLock`, `tryAcquireLock`, `withLock`, `getTaskLock`. */
export interface LockOptions extends LockRootOptions {
  /**
   * Milliseconds to wait for the lock; `0` tries once. `Infinity` waits
   * until the lock is free or `signal` aborts.
   *
   * @default {30000}
   */
  timeout?: number;
  /**
   * The lease, in milliseconds: a holder on another host whose heartbeat is
   * older than this is stale. A holder on this host is never judged by age:
   * it is stale only when provably dead.
   *
   * @default {30000}
   */
  ttl?: number;
  /**
   * Milliseconds between heartbeats, which refresh the owner file and
   * notice a takeover. Must be smaller than `ttl`.
   *
   * @default {ttl / 3}
   */
  heartbeat?: number;
  /** Stops waiting; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Called once if the held lock is found lost (taken over or removed).
   * It may not throw into the library: a throw or a rejected promise is
   * ignored. The lock's `signal` aborts too.
   *
   * @default {undefined}
   */
  onCompromised?: (event: LockCompromisedEvent) => void;
  /**
   * Free text stored in the owner file, shown by `inspectLock` and in
   * timeout errors.
   *
   * @default {undefined}
   */
  purpose?: string;
  /**
   * `"dir"`: a lock directory with an owner file, heartbeat and stale
   * takeover (portable, inspectable, works on NFS). `"flock"`: a kernel
   * lock on `<name>.flock` (one machine, released by the kernel on exit).
   * Both take, hold and release a lock with short synchronous file-system
   * calls (each a few microseconds locally): should the file system hang
   * (an unreachable NFS server), they block the event loop until it
   * answers, not only the lock call.
   *
   * @default {"dir"}
   */
  kind?: LockKind;
  /**
   * Source of randomness in [0, 1) for the waiting jitter and tokens'
   * graveyard names.
   *
   * @default {Math.random}
   */
  random?: () => number;
}
