import type { LockCompromisedReason, LockKind } from "./options.ts";
import type { HolderState, LockOwner } from "./owner.ts";

/** What `inspectLock` and `listLocks` report about one lock. */
export interface LockInfo {
  /** The lock's name. */
  name: string;
  /** The mechanism. */
  kind: LockKind;
  /** The lock directory or file. */
  path: string;
  /** The owner record, or `null` when it cannot be read (half-written). */
  owner: LockOwner | null;
  /** Milliseconds since the owner acquired it, or `null`. */
  heldForMs: number | null;
  /** Milliseconds since the owner's last heartbeat, or `null`. */
  heartbeatAgeMs: number | null;
  /** Whether the holder is alive, provably dead, or cannot be told. */
  holder: HolderState;
  /** Whether a waiter may take the lock over now. */
  stale: boolean;
  /** The evidence behind `holder` and `stale`, for people. */
  evidence: string;
}

/**
 * A lock a backend granted. Backends keep their own state in a subclass
 * and get the same object back in `renew` and `release`.
 */
export interface Lease {
  /** The lock's name. */
  readonly name: string;
  /** The owner record as last written. */
  readonly owner: LockOwner;
}

/** What an acquisition asks for: everything of the owner but the fence. */
export interface AcquireRequest {
  /** The lock's name (already validated). */
  name: string;
  /** The owner record to write; the backend fills in `fence`. */
  owner: Omit<LockOwner, "fence">;
}

/** The outcome of one acquisition attempt. */
export type AcquireAttempt =
  | { acquired: true; lease: Lease }
  | { acquired: false; holder: LockInfo | null };

/** The outcome of a heartbeat. */
export type RenewOutcome =
  | { held: true; owner: LockOwner }
  | { held: false; reason: LockCompromisedReason; current: LockOwner | null };

/**
 * The mechanism behind locks. `Lock`, the waiting loop and inspection only
 * talk to this interface, so another mechanism (a PostgreSQL table for
 * several machines) can plug in without changing their users.
 *
 * Contract: `acquire` never waits (the caller polls); a granted lease's
 * fence is larger than every earlier lease's of the same name; `renew`
 * reports a lease that was taken over or removed and never steals one
 * back; `release` removes the lock only if it is still this lease's.
 */
export interface LockBackend {
  /** The mechanism's name. */
  readonly kind: LockKind;
  /** One attempt: take the lock if it is free or provably stale. */
  acquire(request: AcquireRequest): Promise<AcquireAttempt>;
  /** Refreshes the heartbeat; reports whether the lease is still held. */
  renew(lease: Lease, now: number): Promise<RenewOutcome>;
  /** Gives the lock up if it is still this lease's; `false` if not. */
  release(lease: Lease): Promise<boolean>;
  /** What is known about the lock, or `null` when nobody holds it. */
  inspect(name: string): Promise<LockInfo | null>;
  /** Every lock this backend knows of. */
  list(): Promise<LockInfo[]>;
  /**
   * Removes a lock whose holder is provably dead; with `force`, any lock.
   * Throws a `SturdyError` with code `lock_held` for a live holder.
   */
  break(name: string, force: boolean): Promise<boolean>;
}
