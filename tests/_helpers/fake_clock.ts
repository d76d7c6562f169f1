import type { Clock } from "../../mod.ts";

interface Timer {
  at: number;
  ms: number;
  resolve: () => void;
}

/**
 * A manual clock for tests: time moves only when the test says so, and
 * every `sleep` is recorded. `run(promise)` advances from timer to timer
 * until the promise settles, so a whole retry schedule runs instantly.
 */
export class FakeClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  /** Every sleep requested, in milliseconds, in order. */
  readonly sleeps: number[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    return new Promise<void>((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        ms,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
      this.#timers.sort((a, b) => a.at - b.at);
    });
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async tick(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    while (this.#timers.length > 0 && this.#timers[0]!.at <= target) {
      const timer = this.#timers.shift()!;
      this.#now = Math.max(this.#now, timer.at);
      timer.resolve();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  /** Fires timers in order until `promise` settles; returns its outcome. */
  async run<T>(promise: Promise<T>): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    watched.catch(() => {});
    await flush();
    while (!settled) {
      const next = this.#timers.shift();
      if (!next) throw new Error("FakeClock.run: no timer left to fire");
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      await flush();
    }
    return await promise;
  }
}

/** Lets every queued promise callback run (one macrotask turn). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
