// One agent's health checks: run on an interval, never overlapping (the
// loop awaits each check before it sleeps again), each bounded by its
// timeout; failures do not count during the start period (until the first
// success); `failureThreshold` consecutive failures make it unhealthy.

import type { Clock } from "../retry/mod.ts";
import type { HealthConfig } from "./config.ts";

/** What a check said. */
export interface HealthResult {
  healthy: boolean;
  detail: string;
}

/** The check itself, however it is done. */
export type HealthProbe = (signal: AbortSignal) => Promise<HealthResult>;

export interface MonitorHooks {
  onCheck(result: HealthResult, consecutiveFailures: number): void;
  onUnhealthy(result: HealthResult): Promise<void>;
}

/** Runs a command probe: exit 0 is healthy; the first 4 KiB of output kept. */
export function commandProbe(
  argv: readonly string[],
  cwd: string,
): HealthProbe {
  return async (signal) => {
    const [cmd, ...args] = argv;
    try {
      const out = await new Deno.Command(
        cmd === "deno" ? Deno.execPath() : cmd!,
        { args, cwd, stdin: "null", stdout: "piped", stderr: "piped", signal },
      ).output();
      const text = new TextDecoder().decode(
        out.stdout.length
          ? out.stdout.subarray(0, 4096)
          : out.stderr.subarray(0, 4096),
      ).trim();
      return out.success ? { healthy: true, detail: text || "exit 0" } : {
        healthy: false,
        detail: `exit ${out.signal ?? out.code}${text ? `: ${text}` : ""}`,
      };
    } catch (err) {
      return { healthy: false, detail: (err as Error).message };
    }
  };
}

/** Checks that a heartbeat came within `timeoutMs`. */
export function heartbeatProbe(
  lastBeat: () => number,
  now: () => number,
  timeoutMs: number,
): HealthProbe {
  return () => {
    const age = now() - lastBeat();
    return Promise.resolve(
      age <= timeoutMs ? { healthy: true, detail: `heartbeat ${age}ms ago` } : {
        healthy: false,
        detail: `no heartbeat for ${age}ms (limit ${timeoutMs}ms)`,
      },
    );
  };
}

export class AgentMonitor {
  readonly #probe: HealthProbe;
  readonly #timing: Pick<
    HealthConfig,
    "intervalMs" | "timeoutMs" | "failureThreshold" | "startPeriodMs"
  >;
  readonly #clock: Clock;
  readonly #hooks: MonitorHooks;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #failures = 0;
  #started = 0;
  #succeededOnce = false;
  healthySince: number | undefined;

  constructor(
    probe: HealthProbe,
    timing: AgentMonitor["timing"],
    clock: Clock,
    hooks: MonitorHooks,
  ) {
    this.#probe = probe;
    this.#timing = timing;
    this.#clock = clock;
    this.#hooks = hooks;
  }

  get timing(): Pick<
    HealthConfig,
    "intervalMs" | "timeoutMs" | "failureThreshold" | "startPeriodMs"
  > {
    return this.#timing;
  }

  start(): void {
    this.#started = this.#clock.now();
    this.#loop = this.#run().catch(() => {});
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  /** Runs one check now (also what the loop does each interval). */
  async check(): Promise<HealthResult> {
    const timeout = new AbortController();
    const timer = this.#clock.sleep(this.#timing.timeoutMs, timeout.signal)
      .then((): HealthResult => {
        timeout.abort(
          new Error(`check timed out after ${this.#timing.timeoutMs}ms`),
        );
        return {
          healthy: false,
          detail: `check timed out after ${this.#timing.timeoutMs}ms`,
        };
      }, () => undefined as unknown as HealthResult);
    let result: HealthResult;
    try {
      result = await Promise.race([
        this.#probe(AbortSignal.any([timeout.signal, this.#stop.signal])),
        timer,
      ]);
    } catch (err) {
      result = { healthy: false, detail: (err as Error).message };
    } finally {
      if (!timeout.signal.aborted) timeout.abort();
    }
    const now = this.#clock.now();
    if (result.healthy) {
      this.#failures = 0;
      this.#succeededOnce = true;
      this.healthySince ??= now;
    } else {
      this.healthySince = undefined;
      const starting = !this.#succeededOnce &&
        now - this.#started < this.#timing.startPeriodMs;
      if (!starting) this.#failures++;
    }
    this.#hooks.onCheck(result, this.#failures);
    if (this.#failures >= this.#timing.failureThreshold) {
      this.#failures = 0;
      await this.#hooks.onUnhealthy(result);
    }
    return result;
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await this.#clock.sleep(this.#timing.intervalMs, this.#stop.signal);
      await this.check();
    }
  }
}
