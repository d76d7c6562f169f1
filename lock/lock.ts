// A held lock: its heartbeat and its compromise detection.
//
// Invariant: once compromised or released, a lock never claims to be held
// again: `signal` is aborted, the heartbeat has stopped, and `release()`
// touches nothing that is not provably ours. Nothing here throws or
// rejects outside a caller's own await: heartbeat failures are retried at
// the next beat, a loss is reported through `signal` and `onCompromised`,
// and a throwing `onCompromised` is ignored.

import { systemClock } from "../retry/mod.ts";
import type { Clock } from "../retry/mod.ts";
import type { Lease, LockBackend, RenewOutcome } from "./backend.ts";
import { LockCompromisedError } from "./errors.ts";
import type { LockCompromisedEvent, LockKind } from "./options.ts";
import type { LockOwner } from "./owner.ts";

export { acquireLock, tryAcquireLock, withLock } from "./acquire.ts";

/**
 * A held lock. Release it with `release()` or `await using`.
 *
 * @example Hold a lock for a block
 * ```ts
 * import { acquireLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * {
 *   await using lock = await acquireLock("deploy", { root });
 *   assert.equal(lock.name, "deploy");
 *   assert.ok(lock.fence >= 1);
 *   assert.equal(lock.signal.aborted, false);
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export interface Lock extends AsyncDisposable {
  /** The lock's name. */
  readonly name: string;
  /** The mechanism holding it. */
  readonly kind: LockKind;
  /** 128 random bits naming this acquisition. */
  readonly token: string;
  /** The fencing token: larger than every earlier holder's. */
  readonly fence: number;
  /** The owner record as last written. */
  readonly owner: LockOwner;
  /**
   * Aborted when the lock is lost (reason: `LockCompromisedError`) or
   * released (reason: an `AbortError`). Pass it to work done under the lock.
   */
  readonly signal: AbortSignal;
  /** Whether the lock was found lost. */
  readonly compromised: boolean;
  /** Whether `release()` has been called. */
  readonly released: boolean;
  /**
   * Stops the heartbeat and removes the lock if it is still ours.
   * Idempotent; never throws for a lost lock.
   */
  release(): Promise<void>;
}

/** How a {@linkcode createLock} lock behaves. */
export interface HeldLockOptions {
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
  /** The time source for heartbeats. */
  clock: Clock;
  /** Told once when the lock is found lost. */
  onCompromised?: ((event: LockCompromisedEvent) => void) | undefined;
}

class HeldLock implements Lock {
  readonly #backend: LockBackend;
  readonly #lease: Lease;
  readonly #options: HeldLockOptions;
  readonly #controller = new AbortController();
  readonly #stop = new AbortController();
  #compromised = false;
  #released: Promise<void> | undefined;
  #heartbeat: Promise<void>;

  constructor(backend: LockBackend, lease: Lease, options: HeldLockOptions) {
    this.#backend = backend;
    this.#lease = lease;
    this.#options = options;
    this.#heartbeat = this.#beat();
  }

  get name(): string {
    return this.#lease.name;
  }
  get kind(): LockKind {
    return this.#backend.kind;
  }
  get token(): string {
    return this.#lease.owner.token;
  }
  get fence(): number {
    return this.#lease.owner.fence;
  }
  get owner(): LockOwner {
    return this.#lease.owner;
  }
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  get compromised(): boolean {
    return this.#compromised;
  }
  get released(): boolean {
    return this.#released !== undefined;
  }

  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  async #release(): Promise<void> {
    this.#stop.abort();
    await this.#heartbeat;
    let ours: boolean | undefined;
    try {
      // Even a lost lease goes to the backend: it deletes nothing that is
      // not ours but closes what the lease holds open.
      ours = await this.#backend.release(this.#lease);
    } finally {
      // Found lost only now (between the last beat and release).
      if (ours === false) this.#lose("taken_over", null);
      if (!this.#controller.signal.aborted) {
        this.#controller.abort(
          new DOMException(
            `Lock ${JSON.stringify(this.name)} was released`,
            "AbortError",
          ),
        );
      }
    }
  }

  // The heartbeat: renew every `heartbeatMs` until stopped or lost.
  async #beat(): Promise<void> {
    const { clock, heartbeatMs } = this.#options;
    while (!this.#stop.signal.aborted) {
      try {
        await pause(clock, heartbeatMs, this.#stop.signal);
      } catch {
        return; // stopped
      }
      let outcome: RenewOutcome;
      try {
        outcome = await this.#backend.renew(this.#lease, clock.now());
      } catch {
        // An I/O error is not evidence of loss: try again at the next beat.
        continue;
      }
      if (!outcome.held) {
        this.#lose(outcome.reason, outcome.current);
        return;
      }
    }
  }

  #lose(reason: LockCompromisedEvent["reason"], current: LockOwner | null) {
    if (this.#compromised) return;
    this.#compromised = true;
    this.#stop.abort();
    const error = new LockCompromisedError(this, reason, current);
    this.#controller.abort(error);
    const event: LockCompromisedEvent = {
      name: this.name,
      token: this.token,
      fence: this.fence,
      reason,
      current,
      detectedAt: this.#options.clock.now(),
      error,
    };
    try {
      const result: unknown = this.#options.onCompromised?.(event);
      // An async callback's rejection must not become unhandled.
      if (result instanceof Promise) result.catch(() => {});
    } catch { /* a throwing callback must not crash the holder */ }
  }
}

/**
 * Wraps a granted lease in a {@linkcode Lock} and starts its heartbeat.
 * @internal
 */
export function createLock(
  backend: LockBackend,
  lease: Lease,
  options: HeldLockOptions,
): Lock {
  return new HeldLock(backend, lease, options);
}

// The heartbeat's wait. On the real clock the timer is unref'd: a
// forgotten lock must not keep the process alive (when it exits, the
// kernel frees the lock and waiters take it over).
function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (clock !== systemClock) return clock.sleep(ms, signal);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    Deno.unrefTimer(timer);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
