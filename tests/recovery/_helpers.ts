import type { Clock } from "../../mod.ts";
import {
  RecoveryManager,
  type RecoveryManagerOptions,
} from "../../recovery/mod.ts";

/**
 * A clock whose sleeps return at once and move time forward, so retry
 * schedules run instantly with exact timestamps.
 */
export class InstantClock implements Clock {
  t: number;
  readonly sleeps: number[] = [];
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    this.t += Math.max(0, ms);
    return Promise.resolve();
  }
}

/** A manager on `root` with an instant clock and no jitter. */
export function manager(
  root: string,
  options: RecoveryManagerOptions = {},
): { recovery: RecoveryManager; clock: InstantClock } {
  const clock = options.clock instanceof InstantClock
    ? options.clock
    : new InstantClock();
  const recovery = new RecoveryManager({
    root,
    clock,
    retry: { jitter: "none", minDelay: 100, ...options.retry },
    ...Object.fromEntries(
      Object.entries(options).filter(([k]) => k !== "retry" && k !== "clock"),
    ),
  });
  return { recovery, clock };
}

/** An error with a code, as Deno and Node raise them. */
export function codeError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}
