// A LockBackend in memory, for tests of the waiting loop and the
// heartbeat that need no file system.

import type {
  AcquireAttempt,
  AcquireRequest,
  Lease,
  LockBackend,
  LockInfo,
  RenewOutcome,
} from "../../lock/mod.ts";

/** Scripted answers and a record of every call. */
export class FakeBackend implements LockBackend {
  readonly kind = "dir" as const;
  /** How many more acquire calls answer "busy". */
  busyFor: number;
  /** What the next renew calls answer (shifted); default "held". */
  renewScript: (RenewOutcome | Error)[] = [];
  acquires = 0;
  renews: number[] = [];
  releases = 0;
  releaseAnswer = true;
  #fence = 0;

  constructor(busyFor = 0) {
    this.busyFor = busyFor;
  }

  holder(): LockInfo {
    return {
      name: "x",
      kind: "dir",
      path: "/fake/x.lock",
      owner: null,
      heldForMs: 1234,
      heartbeatAgeMs: 10,
      holder: "alive",
      stale: false,
      evidence: "fake",
    };
  }

  acquire(request: AcquireRequest): Promise<AcquireAttempt> {
    this.acquires++;
    if (this.busyFor > 0) {
      this.busyFor--;
      return Promise.resolve({ acquired: false, holder: this.holder() });
    }
    const lease: Lease = {
      name: request.name,
      owner: { ...request.owner, fence: ++this.#fence },
    };
    return Promise.resolve({ acquired: true, lease });
  }

  renew(lease: Lease, now: number): Promise<RenewOutcome> {
    this.renews.push(now);
    const next = this.renewScript.shift();
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(next ?? { held: true, owner: lease.owner });
  }

  release(): Promise<boolean> {
    this.releases++;
    return Promise.resolve(this.releaseAnswer);
  }

  inspect(): Promise<LockInfo | null> {
    return Promise.resolve(null);
  }

  list(): Promise<LockInfo[]> {
    return Promise.resolve([]);
  }

  break(): Promise<boolean> {
    return Promise.resolve(false);
  }
}
