// The autoCheckpoint schedule: one loop, so runs never overlap; a sleep on
// the injected clock between runs, cut short by stop() or the caller's
// signal; a failed run is reported and the schedule goes on.

import type { Clock } from "../retry/mod.ts";

/** Runs `take` every `intervalMs` until stopped. */
export class AutoCheckpoint implements Disposable, AsyncDisposable {
  readonly #controller = new AbortController();
  readonly #loop: Promise<void>;
  #taken = 0;

  constructor(
    intervalMs: number,
    clock: Clock,
    take: (signal: AbortSignal) => Promise<unknown>,
    options: { onError?: (error: unknown) => void; signal?: AbortSignal },
    onStopped: () => void,
  ) {
    const signal = options.signal
      ? AbortSignal.any([this.#controller.signal, options.signal])
      : this.#controller.signal;
    this.#loop = (async () => {
      try {
        while (!signal.aborted) {
          try {
            await clock.sleep(intervalMs, signal);
          } catch {
            return; // stopped while waiting
          }
          try {
            await take(signal);
            this.#taken++;
          } catch (err) {
            if (signal.aborted) return;
            try {
              options.onError?.(err);
            } catch { /* a hook may not break the schedule */ }
          }
        }
      } finally {
        onStopped();
      }
    })();
  }

  /** Checkpoints taken so far. */
  get taken(): number {
    return this.#taken;
  }

  /** Stops the schedule and waits for a run in progress. */
  stop(): Promise<void> {
    this.#controller.abort();
    return this.#loop;
  }

  [Symbol.dispose](): void {
    this.#controller.abort();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
