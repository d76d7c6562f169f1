// Per-path serialisation of writes within this process, with optional
// coalescing, and the throttle for the cheap orphan sweep done by writes.
//
// Why a process-wide instance: the point of the queue is that two writes
// to the same file from anywhere in this process never interleave, so
// every caller must share it; a queue per caller would serialise nothing.
// It holds no state between bursts: a path's entry exists only while
// writes to it are queued or running and is deleted when it goes idle, and
// the sweep throttle forgets directories once their interval has passed,
// so nothing accumulates and nothing leaks from one user to another.

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Job {
  run: () => Promise<void>;
  coalesce: boolean;
  waiters: Waiter[];
}

/** Runs jobs for the same key one at a time, in order. */
export class WriteQueue {
  #paths = new Map<string, Job[]>();

  /** How many paths have queued or running writes. */
  get size(): number {
    return this.#paths.size;
  }

  /**
   * Runs `run` after every earlier job for `key`. With `coalesce`, a job
   * still waiting behind a running one is replaced by this one and its
   * callers settle with this job's outcome (the last write wins anyway).
   */
  run(key: string, run: () => Promise<void>, coalesce: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      const jobs = this.#paths.get(key);
      if (!jobs) {
        const fresh = [{ run, coalesce, waiters: [waiter] }];
        this.#paths.set(key, fresh);
        this.#drain(key, fresh);
        return;
      }
      // jobs[0] is running; only a job that has not started may merge.
      const last = jobs.at(-1)!;
      if (coalesce && jobs.length > 1 && last.coalesce) {
        last.run = run;
        last.waiters.push(waiter);
      } else jobs.push({ run, coalesce, waiters: [waiter] });
    });
  }

  async #drain(key: string, jobs: Job[]): Promise<void> {
    while (jobs.length > 0) {
      const job = jobs[0]!;
      try {
        await job.run();
        for (const w of job.waiters) w.resolve();
      } catch (err) {
        for (const w of job.waiters) w.reject(err);
      }
      jobs.shift();
    }
    this.#paths.delete(key);
  }
}

/** Says when a directory is due for another orphan sweep. */
export class SweepThrottle {
  #last = new Map<string, number>();
  readonly #intervalMs: number;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Whether `dir` was not swept in the last interval; marks it swept. */
  due(dir: string, now: number): boolean {
    const last = this.#last.get(dir);
    if (last !== undefined && now - last < this.#intervalMs) return false;
    if (this.#last.size >= 1024) {
      for (const [d, t] of this.#last) {
        if (now - t >= this.#intervalMs) this.#last.delete(d);
      }
    }
    this.#last.set(dir, now);
    return true;
  }
}

/** The queue every write in this process goes through. */
export const writeQueue: WriteQueue = new WriteQueue();

/** At most one opportunistic sweep per directory per minute. */
export const sweepThrottle: SweepThrottle = new SweepThrottle(60_000);
