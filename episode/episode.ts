import { hostname } from "node:os";
import { join } from "node:path";
import {
  type Clock,
  formatDuration,
  systemClock,
  validateName,
} from "../retry/mod.ts";
import {
  appendJsonl,
  ensureDir,
  isNotFound,
  readJson,
  writeJson,
} from "../fs/mod.ts";
import { inspectLock, type Lock, tryAcquireLock } from "../lock/mod.ts";
import { RecoveryManager, redactSecrets } from "../recovery/mod.ts";
import type { EpisodeConfig } from "./config.ts";
import { EpisodeError } from "./errors.ts";
import {
  cooldownDelay,
  pruneErrorTimes,
  shouldResetCooldown,
  thresholdReached,
  worstCaseBudget,
} from "./limits.ts";
import {
  AgentMonitor,
  commandProbe,
  type HealthResult,
  heartbeatProbe,
} from "./_health.ts";

/** Where an episode stands. */
export type EpisodeStatus =
  | "created"
  | "running"
  | "stopping"
  | "completed"
  | "failed"
  | "aborted"
  | "interrupted"
  | "escalated";

/** The statuses an episode ends with. */
export type EpisodeEndStatus = Exclude<
  EpisodeStatus,
  "created" | "running" | "stopping"
>;

/** An agent as the episode sees it. */
export interface AgentState {
  /** `healthy` until checks fail, `recovering` during a recovery,
   * `failed` once recoveries are spent. */
  health: "healthy" | "unhealthy" | "recovering" | "failed";
  /** When its last heartbeat came (epoch ms). */
  lastHeartbeatAt: number;
  /** The last health check's result. */
  lastCheck?: { at: number; healthy: boolean; detail: string };
  /** Recoveries made (persisted across restarts of the episode). */
  recoveries: number;
}

/**
 * An episode's persisted state, `<root>/episodes/<id>/state.json`,
 * rewritten atomically on every change.
 */
export interface EpisodeState {
  /** Format marker. */
  format: "sturdy.episode/1";
  /** The episode's id. */
  id: string;
  /** This run's id (a new one per `start()`). */
  runId: string;
  /** Where it stands. */
  status: EpisodeStatus;
  /** Why it ended, in words. */
  reason?: string;
  /** The config's SHA-256, to notice edits between runs. */
  configHash?: string;
  /** The process running it. */
  pid: number;
  /** Its host. */
  host: string;
  /** When this run started (epoch ms). */
  startedAt: number;
  /** When it ended (epoch ms). */
  endedAt?: number;
  /** When the state last changed (epoch ms). */
  updatedAt: number;
  /** Errors recorded in this run. */
  errorCount: number;
  /** Their times, pruned to the threshold's window. */
  errorTimes: number[];
  /** The last error's message (redacted). */
  lastError?: string;
  /** Agents registered, by id. */
  agents: Record<string, AgentState>;
  /** Tasks recorded as failed. */
  failedTasks: string[];
  /** Tasks recorded as recovered. */
  recoveredTasks: string[];
  /**
   * Starts that did not end cleanly in a row (a crash loop); persisted so
   * an outside restarter relaunching a crashing episode still stops.
   */
  crashLoop: { count: number; firstAt?: number };
}

/** One line of `<root>/episodes/<id>/events.jsonl`. */
export interface EpisodeEvent {
  /** Format version. */
  v: 1;
  /** When (epoch ms). */
  at: number;
  /** When, for people. */
  ts: string;
  /** The episode's id. */
  episode: string;
  /** The run's id. */
  runId: string;
  /** What happened, e.g. `started`, `error`, `agent_unhealthy`, `ended`. */
  event: string;
  /** The agent concerned. */
  agent?: string;
  /** The task concerned. */
  task?: string;
  /** Details, in words (redacted). */
  detail?: string;
  /** The episode's status after it. */
  status?: EpisodeStatus;
}

/** How a code-registered agent is checked and recovered. */
export interface AgentRegistration {
  /**
   * A health check: resolves true when healthy. It gets a signal that
   * aborts at its timeout. Overrides the YAML's check kind.
   *
   * @default {the YAML's check, else none}
   */
  healthCheck?: (signal: AbortSignal) => boolean | Promise<boolean>;
  /**
   * A watchdog: the agent is unhealthy when no `heartbeat(id)` came within
   * this many ms.
   *
   * @default {the YAML's heartbeatTimeout, else none}
   */
  heartbeatTimeout?: number;
  /**
   * Brings an unhealthy agent back; run through recovery/ (retried) after
   * the cooldown.
   *
   * @default {undefined} (recovery only records the event)
   */
  recover?: () => void | Promise<void>;
}

/** Options of {@linkcode Episode}. */
export interface EpisodeOptions {
  /**
   * Time source: timestamps, health intervals, cooldowns.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Called with every event as it is logged. It must not throw.
   *
   * @default {undefined}
   */
  onEvent?: (event: EpisodeEvent) => void;
  /**
   * `"background"` runs each agent's health check on its interval;
   * `"manual"` runs none by itself, only {@linkcode Episode.checkAgent}
   * (for callers with their own loop, and for tests).
   *
   * @default {"background"}
   */
  healthChecks?: "background" | "manual";
  /**
   * The recovery manager for agent recoveries.
   *
   * @default {a manager on the episode's root}
   */
  recovery?: RecoveryManager;
}

/** What {@linkcode Episode.stats} returns. */
export interface EpisodeStats {
  /** The episode's id. */
  id: string;
  /** Where it stands. */
  status: EpisodeStatus;
  /** Milliseconds since it started (to its end, once ended). */
  elapsedMs: number;
  /** Errors recorded. */
  errors: number;
  /** Agents registered. */
  agents: number;
  /** Agents not healthy. */
  unhealthyAgents: string[];
  /** Recoveries made, by agent. */
  recoveries: Record<string, number>;
  /** Tasks recorded as failed. */
  failedTasks: number;
  /** Tasks recorded as recovered. */
  recoveredTasks: number;
}

function newRunId(now: number): string {
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return `run-${
    new Date(now).toISOString().replace(/[-:.]/g, "").slice(0, 15)
  }-${Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * An episode's lifecycle: start (taking the episode's lock, so two copies
 * never run), errors counted against the threshold, agents with health
 * checks recovered within the cooldown and recovery limits, and an end
 * with a status. State and events persist under `<root>/episodes/<id>/`.
 *
 * @example Start, record, end
 * ```ts
 * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const config = defineEpisode({ version: 1, episode: "nightly", root });
 * {
 *   await using episode = new Episode(config);
 *   await episode.start();
 *   const { thresholdReached } = await episode.error(new Error("one bad page"));
 *   assert.equal(thresholdReached, false);
 *   await episode.recordRecoveredTask("fetch-1");
 *   await episode.end("completed");
 *   assert.equal(episode.stats().errors, 1);
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class Episode implements AsyncDisposable {
  readonly #config: EpisodeConfig;
  readonly #clock: Clock;
  readonly #onEvent: EpisodeOptions["onEvent"];
  readonly #dir: string;
  readonly #controller = new AbortController();
  readonly #monitors = new Map<string, AgentMonitor>();
  readonly #registrations = new Map<string, AgentRegistration>();
  readonly #background: boolean;
  #recovery: RecoveryManager | undefined;
  #state: EpisodeState | undefined;
  #lock: Lock | null = null;
  #writes: Promise<void> = Promise.resolve();

  /**
   * Creates an episode; nothing happens until {@linkcode Episode.start}.
   *
   * @param config A validated config (`loadEpisode`, `parseEpisode`,
   *   `defineEpisode`).
   * @param options Clock, event hook, recovery manager.
   */
  constructor(config: EpisodeConfig, options: EpisodeOptions = {}) {
    validateName(config.id, "episode id");
    this.#config = config;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent;
    this.#recovery = options.recovery;
    this.#background = (options.healthChecks ?? "background") === "background";
    this.#dir = join(config.root, "episodes", config.id);
  }

  /** The episode's id. */
  get id(): string {
    return this.#config.id;
  }

  /** Where it stands. */
  get status(): EpisodeStatus {
    return this.#state?.status ?? "created";
  }

  /** This run's id, once started. */
  get runId(): string | undefined {
    return this.#state?.runId;
  }

  /**
   * Aborted when the episode stops (its end, the error threshold, an
   * interrupt); pass it to the work the episode runs.
   */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The folder holding `state.json` and `events.jsonl`. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * Starts the episode: takes its lock, reads the previous run's state
   * (counting a run that never ended as a crash), writes `running`, and
   * starts the agents' health checks.
   *
   * @returns The previous run's state, if any, and the worst-case budget
   *   line.
   * @throws {EpisodeError} Code `episode_busy` when another process runs
   *   it, `crash_loop` when it started more than `maxRecoveryAttempts`
   *   times in a row without ending, `already_started`.
   *
   * @example Two copies cannot run
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const config = defineEpisode({ version: 1, episode: "solo", root });
   * await using first = new Episode(config);
   * await first.start();
   * await assert.rejects(new Episode(config).start(), /already running/);
   * await first.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async start(): Promise<{ previous?: EpisodeState; budget: string }> {
    if (this.#state) {
      throw new EpisodeError(`Episode "${this.id}" was already started`, {
        code: "already_started",
        operation: "start",
      });
    }
    await ensureDir(this.#dir);
    const lockName = `episode.${this.id}`.slice(0, 128);
    const lockOptions = {
      root: this.#config.root,
      purpose: `episode ${this.id}`,
    };
    this.#lock = await tryAcquireLock(lockName, lockOptions);
    // A lock a killed run left half-made turns stale after lock/'s short
    // grace: wait that out; a live holder means another copy runs.
    if (
      !this.#lock &&
      (await inspectLock(lockName, { root: this.#config.root }))?.holder !==
        "alive"
    ) {
      this.#lock = await tryAcquireLock(lockName, {
        ...lockOptions,
        timeout: 5_000,
      });
    }
    if (!this.#lock) {
      throw new EpisodeError(
        `Episode "${this.id}" is already running in another process (lock ${this.#config.root}/locks/); see "sturdy episode status ${this.id}"`,
        { code: "episode_busy", operation: "start" },
      );
    }
    try {
      const previous = await this.#readState();
      const now = this.#clock.now();
      const crashed = previous !== undefined &&
        (previous.status === "running" || previous.status === "stopping");
      const crashLoop = crashed
        ? {
          count: previous.crashLoop.count + 1,
          firstAt: previous.crashLoop.firstAt ?? previous.startedAt,
        }
        : { count: 0 };
      const limit = this.#config.limits.maxRecoveryAttempts;
      const agents: Record<string, AgentState> = {};
      const ids = new Set([
        ...this.#config.agents.map((a) => a.id),
        ...this.#registrations.keys(),
      ]);
      for (const id of ids) {
        agents[id] = {
          health: "healthy",
          lastHeartbeatAt: now,
          recoveries: previous?.agents[id]?.recoveries ?? 0,
        };
      }
      this.#state = {
        format: "sturdy.episode/1",
        id: this.id,
        runId: newRunId(now),
        status: "running",
        configHash: this.#config.hash,
        pid: Deno.pid,
        host: hostname(),
        startedAt: now,
        updatedAt: now,
        errorCount: 0,
        errorTimes: [],
        agents,
        failedTasks: [],
        recoveredTasks: [],
        crashLoop,
      };
      if (crashLoop.count > limit) {
        this.#state.status = "escalated";
        this.#state.reason =
          `crash loop: started ${crashLoop.count} times in a row without ending (limit ${limit})`;
        this.#state.endedAt = now;
        await this.#save();
        await this.#event("crash_loop", { detail: this.#state.reason });
        throw new EpisodeError(
          `Episode "${this.id}" ${this.#state.reason}; find out why it dies (see ${this.#dir}/events.jsonl), then start it again: the next start is allowed`,
          { code: "crash_loop", operation: "start" },
        );
      }
      await this.#save();
      const budget = worstCaseBudget(this.#config).line;
      await this.#event("started", {
        detail: `${budget}${
          crashed
            ? `; the previous run (${previous.runId}) did not end (crash ${crashLoop.count} of at most ${limit} in a row)`
            : ""
        }`,
      });
      for (const id of ids) this.#monitor(id);
      return { ...(previous ? { previous } : {}), budget };
    } catch (err) {
      if (this.#state?.status !== "escalated") this.#state = undefined;
      await this.#lock.release().catch(() => {});
      this.#lock = null;
      throw err;
    }
  }

  /**
   * Ends the episode: stops health checks, aborts {@linkcode Episode.signal},
   * writes the final status, releases the lock. Ending twice keeps the
   * first status.
   *
   * @param status How it ended.
   * @param reason Why, in words.
   * @returns The final state.
   *
   * @example End as failed
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * const state = await episode.end("failed", "the import step failed");
   * assert.equal(state.status, "failed");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async end(
    status: EpisodeEndStatus = "completed",
    reason?: string,
  ): Promise<EpisodeState> {
    const state = this.#started("end");
    if (this.#lock === null) return state; // already ended
    state.status = status;
    if (reason !== undefined) state.reason = redactSecrets(reason);
    state.endedAt = this.#clock.now();
    state.crashLoop = { count: 0 };
    await Promise.all([...this.#monitors.values()].map((m) => m.stop()));
    this.#monitors.clear();
    if (!this.#controller.signal.aborted) {
      this.#controller.abort(
        new EpisodeError(`Episode "${this.id}" ended ${status}`, {
          code: "episode_ended",
        }),
      );
    }
    await this.#save();
    await this.#event("ended", {
      detail: `${status} after ${
        formatDuration(state.endedAt - state.startedAt)
      }${reason ? `: ${reason}` : ""}`,
    });
    await this.#writes;
    const lock = this.#lock;
    this.#lock = null;
    await lock.release().catch(() => {});
    return structuredClone(state);
  }

  /**
   * Marks the episode as stopping (the first SIGINT/SIGTERM): aborts
   * {@linkcode Episode.signal} so running work stops; end it with
   * `"interrupted"` once flushed.
   *
   * @param reason Why, e.g. `"SIGTERM"`.
   * @returns Resolves once recorded.
   *
   * @example Stop on a signal
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * await episode.stop("SIGTERM");
   * assert.ok(episode.signal.aborted);
   * assert.equal((await episode.end("interrupted")).status, "interrupted");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async stop(reason: string): Promise<void> {
    const state = this.#started("stop");
    if (state.status !== "running") return;
    state.status = "stopping";
    state.reason = reason;
    this.#controller.abort(
      new EpisodeError(`Episode "${this.id}" is stopping: ${reason}`, {
        code: "episode_stopping",
      }),
    );
    await this.#save();
    await this.#event("stopping", { detail: reason });
  }

  /**
   * Records an error. Each counts toward the error threshold (within its
   * window); reaching it aborts {@linkcode Episode.signal} and ends the
   * episode `aborted` (or `escalated`, per `limits.onThreshold`).
   *
   * @param err The error.
   * @param where The agent or task it concerns.
   * @returns The count and whether the threshold was reached.
   *
   * @example Reach the threshold
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * const episode = new Episode(defineEpisode({
   *   version: 1, episode: "e", root, limits: { errorThreshold: 2 },
   * }));
   * await episode.start();
   * await episode.error(new Error("a"));
   * assert.equal((await episode.error(new Error("b"))).thresholdReached, true);
   * assert.equal(episode.status, "aborted");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async error(
    err: unknown,
    where: { agent?: string; task?: string } = {},
  ): Promise<{ count: number; thresholdReached: boolean }> {
    const state = this.#started("error");
    const now = this.#clock.now();
    const policy = this.#config.limits.errorThreshold;
    state.errorCount++;
    state.errorTimes = pruneErrorTimes(policy, [...state.errorTimes, now], now);
    state.lastError = redactSecrets(
      err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    );
    await this.#save();
    await this.#event("error", { ...where, detail: state.lastError });
    const reached = state.status === "running" &&
      thresholdReached(policy, state.errorTimes, now);
    if (reached) {
      const how = this.#config.limits.onThreshold === "escalate"
        ? "escalated"
        : "aborted";
      const reason = `${state.errorTimes.length} errors${
        policy.windowMs === undefined
          ? ""
          : ` within ${formatDuration(policy.windowMs)}`
      } reached the threshold of ${policy.count}`;
      await this.end(how, reason);
    }
    return { count: state.errorCount, thresholdReached: reached };
  }

  /**
   * Registers an agent (or adds code to one declared in the YAML): its
   * health check runs on the configured interval once the episode runs.
   *
   * @param id The agent's id.
   * @param registration Its check, heartbeat timeout and recovery.
   *
   * @example A watchdog agent
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * episode.registerAgent("crawler", { heartbeatTimeout: 60_000 });
   * episode.heartbeat("crawler");
   * assert.equal(episode.stats().agents, 1);
   * episode.unregisterAgent("crawler");
   * await episode.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  registerAgent(id: string, registration: AgentRegistration = {}): void {
    validateName(id, "agent id");
    this.#registrations.set(id, registration);
    const state = this.#state;
    if (state && !state.agents[id]) {
      state.agents[id] = {
        health: "healthy",
        lastHeartbeatAt: this.#clock.now(),
        recoveries: 0,
      };
      this.#queueSave();
    }
    if (state?.status === "running") {
      this.#monitors.get(id)?.stop();
      this.#monitors.delete(id);
      this.#monitor(id);
    }
  }

  /**
   * Stops watching an agent.
   *
   * @param id The agent's id.
   *
   * @example Unregister
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * episode.registerAgent("a");
   * episode.unregisterAgent("a");
   * assert.equal(episode.stats().agents, 0);
   * await episode.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  unregisterAgent(id: string): void {
    this.#registrations.delete(id);
    const monitor = this.#monitors.get(id);
    this.#monitors.delete(id);
    monitor?.stop();
    if (this.#state?.agents[id]) {
      delete this.#state.agents[id];
      this.#queueSave();
    }
  }

  /**
   * Runs an agent's health check now (as its interval would), and recovers
   * it when this makes it unhealthy.
   *
   * @param id The agent's id.
   * @returns The check's result, or `undefined` if the agent has no check.
   *
   * @example Check now
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(
   *   defineEpisode({ version: 1, episode: "e", root }),
   *   { healthChecks: "manual" },
   * );
   * await episode.start();
   * episode.registerAgent("db", { healthCheck: () => true });
   * assert.equal((await episode.checkAgent("db"))?.healthy, true);
   * await episode.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async checkAgent(
    id: string,
  ): Promise<{ healthy: boolean; detail: string } | undefined> {
    return await this.#monitors.get(id)?.check();
  }

  /**
   * Records that an agent is alive (feeds its heartbeat watchdog).
   *
   * @param id The agent's id.
   *
   * @example Beat
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * episode.registerAgent("a", { heartbeatTimeout: 1_000 });
   * episode.heartbeat("a");
   * await episode.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  heartbeat(id: string): void {
    const agent = this.#state?.agents[id];
    if (agent) agent.lastHeartbeatAt = this.#clock.now();
  }

  /**
   * Records a task that failed for good.
   *
   * @param taskId The task's id.
   * @param err Its error, if any (counted as an episode error).
   * @returns Resolves once recorded.
   *
   * @example Record a failure
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * await episode.recordFailedTask("import", new Error("bad row"));
   * assert.equal(episode.stats().failedTasks, 1);
   * assert.equal(episode.stats().errors, 1);
   * await episode.end("failed");
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async recordFailedTask(taskId: string, err?: unknown): Promise<void> {
    const state = this.#started("recordFailedTask");
    if (!state.failedTasks.includes(taskId)) state.failedTasks.push(taskId);
    await this.#event("task_failed", { task: taskId });
    if (err !== undefined) await this.error(err, { task: taskId });
    else await this.#save();
  }

  /**
   * Records a task that succeeded after failing.
   *
   * @param taskId The task's id.
   * @returns Resolves once recorded.
   *
   * @example Record a recovery
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const root = await Deno.makeTempDir();
   * await using episode = new Episode(defineEpisode({ version: 1, episode: "e", root }));
   * await episode.start();
   * await episode.recordRecoveredTask("fetch");
   * assert.equal(episode.stats().recoveredTasks, 1);
   * await episode.end();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async recordRecoveredTask(taskId: string): Promise<void> {
    const state = this.#started("recordRecoveredTask");
    if (!state.recoveredTasks.includes(taskId)) {
      state.recoveredTasks.push(taskId);
    }
    await this.#save();
    await this.#event("task_recovered", { task: taskId });
  }

  /**
   * The episode's figures so far.
   *
   * @returns Status, elapsed time, errors, agents, tasks.
   *
   * @example Before start
   * ```ts
   * import { defineEpisode, Episode } from "@sturdy/sturdy/episode";
   * import assert from "node:assert/strict";
   *
   * const episode = new Episode(defineEpisode({ version: 1, episode: "e" }));
   * assert.equal(episode.stats().status, "created");
   * ```
   */
  stats(): EpisodeStats {
    const s = this.#state;
    const agents = Object.entries(s?.agents ?? {});
    return {
      id: this.id,
      status: this.status,
      elapsedMs: s ? (s.endedAt ?? this.#clock.now()) - s.startedAt : 0,
      errors: s?.errorCount ?? 0,
      agents: agents.length,
      unhealthyAgents: agents.filter(([, a]) => a.health !== "healthy").map((
        [id],
      ) => id),
      recoveries: Object.fromEntries(
        agents.map(([id, a]) => [id, a.recoveries]),
      ),
      failedTasks: s?.failedTasks.length ?? 0,
      recoveredTasks: s?.recoveredTasks.length ?? 0,
    };
  }

  /**
   * Ends a running episode as `completed` (call `end()` yourself for
   * another status).
   *
   * @returns Resolves once ended.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#lock !== null && this.#state) await this.end("completed");
  }

  /**
   * Logs an event for this episode (the runner's task events go here too).
   *
   * @param event What happened.
   * @param fields The agent, task, detail.
   * @returns Resolves once appended.
   */
  async record(
    event: string,
    fields: { agent?: string; task?: string; detail?: string } = {},
  ): Promise<void> {
    this.#started("record");
    await this.#event(event, fields);
  }

  // ------------------------------------------------------------ internals

  #started(operation: string): EpisodeState {
    if (!this.#state) {
      throw new EpisodeError(
        `Cannot ${operation}: episode "${this.id}" has not been started; call start() first`,
        { code: "not_started", operation },
      );
    }
    return this.#state;
  }

  async #readState(): Promise<EpisodeState | undefined> {
    try {
      return await readJson<EpisodeState>(join(this.#dir, "state.json"));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new EpisodeError(
        `Cannot read the state of episode "${this.id}" from ${this.#dir}/state.json: ${
          (err as Error).message
        }; fix or remove the file`,
        {
          code: "corrupt_state",
          path: join(this.#dir, "state.json"),
          cause: err,
        },
      );
    }
  }

  #save(): Promise<void> {
    const state = this.#state!;
    state.updatedAt = this.#clock.now();
    const snapshot = structuredClone(state);
    // Writes are chained so the file always ends with the newest state.
    const write = this.#writes.then(() =>
      writeJson(join(this.#dir, "state.json"), snapshot)
    );
    this.#writes = write.catch(() => {});
    return write;
  }

  #queueSave(): void {
    this.#save().catch(() => {});
  }

  async #event(
    event: string,
    fields: { agent?: string; task?: string; detail?: string },
  ): Promise<void> {
    const now = this.#clock.now();
    const record: EpisodeEvent = {
      v: 1,
      at: now,
      ts: new Date(now).toISOString(),
      episode: this.id,
      runId: this.#state?.runId ?? "",
      event,
      ...fields,
      ...(fields.detail !== undefined
        ? { detail: redactSecrets(fields.detail) }
        : {}),
      status: this.status,
    };
    await appendJsonl(join(this.#dir, "events.jsonl"), record, {
      durability: event === "ended" || event === "started" ? "durable" : "none",
    });
    try {
      this.#onEvent?.(record);
    } catch {
      // A hook may not break the episode it observes.
    }
  }

  #monitor(id: string): void {
    const config = this.#config.agents.find((a) => a.id === id)?.health;
    const reg = this.#registrations.get(id);
    const timing = {
      intervalMs: config?.intervalMs ??
        this.#config.limits.agentHealthCheckIntervalMs,
      timeoutMs: config?.timeoutMs ?? 5_000,
      failureThreshold: config?.failureThreshold ?? 3,
      startPeriodMs: config?.startPeriodMs ?? 0,
    };
    let probe;
    if (reg?.healthCheck) {
      const check = reg.healthCheck;
      probe = async (signal: AbortSignal): Promise<HealthResult> =>
        (await check(signal))
          ? { healthy: true, detail: "check passed" }
          : { healthy: false, detail: "check returned false" };
    } else if (
      reg?.heartbeatTimeout !== undefined || config?.check === "heartbeat"
    ) {
      const timeout = reg?.heartbeatTimeout ??
        (config as { heartbeatTimeoutMs: number }).heartbeatTimeoutMs;
      probe = heartbeatProbe(
        () => this.#state?.agents[id]?.lastHeartbeatAt ?? this.#clock.now(),
        () => this.#clock.now(),
        timeout,
      );
    } else if (config?.check === "command") {
      probe = commandProbe(config.command, this.#config.baseDir);
    } else {
      return; // nothing to check
    }
    const monitor = new AgentMonitor(probe, timing, this.#clock, {
      onCheck: (result) => {
        const agent = this.#state?.agents[id];
        if (!agent) return;
        agent.lastCheck = {
          at: this.#clock.now(),
          healthy: result.healthy,
          detail: result.detail,
        };
        if (result.healthy && agent.health === "unhealthy") {
          agent.health = "healthy";
        }
        // Healthy long enough: the cooldown and the count start over.
        if (
          agent.recoveries > 0 &&
          shouldResetCooldown(
            this.#config.limits.recoveryCooldown,
            monitor.healthySince,
            this.#clock.now(),
          )
        ) {
          agent.recoveries = 0;
        }
        this.#queueSave();
      },
      onUnhealthy: (result) => this.#recoverAgent(id, result),
    });
    this.#monitors.set(id, monitor);
    if (this.#background) monitor.start();
  }

  async #recoverAgent(id: string, result: HealthResult): Promise<void> {
    const state = this.#state;
    const agent = state?.agents[id];
    if (!state || !agent || state.status !== "running") return;
    agent.health = "unhealthy";
    await this.#event("agent_unhealthy", { agent: id, detail: result.detail });
    const limits = this.#config.limits;
    if (agent.recoveries >= limits.maxRecoveryAttempts) {
      agent.health = "failed";
      await this.#event("agent_failed", {
        agent: id,
        detail:
          `${agent.recoveries} recoveries spent (maxRecoveryAttempts ${limits.maxRecoveryAttempts})`,
      });
      await this.error(
        new EpisodeError(
          `Agent "${id}" stayed unhealthy after ${agent.recoveries} recoveries: ${result.detail}`,
          { code: "agent_failed" },
        ),
        { agent: id },
      );
      return;
    }
    // Counted (and persisted) before the wait, so a crash loop counts too.
    agent.recoveries++;
    agent.health = "recovering";
    await this.#save();
    const delay = cooldownDelay(limits.recoveryCooldown, agent.recoveries);
    await this.#event("agent_recovering", {
      agent: id,
      detail:
        `recovery ${agent.recoveries} of ${limits.maxRecoveryAttempts} after a ${
          formatDuration(delay)
        } cooldown`,
    });
    try {
      await this.#clock.sleep(delay, this.signal);
    } catch {
      return; // the episode stopped
    }
    const recover = this.#registrations.get(id)?.recover;
    if (recover) {
      this.#recovery ??= new RecoveryManager({ root: this.#config.root });
      const result = await this.#recovery.execute(
        `${this.id}.${id}.recover-${state.runId.slice(-8)}-${agent.recoveries}`
          .slice(0, 128),
        () => recover(),
        { strategy: "retry", signal: this.signal },
      ).catch((err) => ({ ok: false, error: { message: String(err) } }));
      if (!result.ok) {
        await this.error(
          new EpisodeError(
            `Recovering agent "${id}" failed: ${result.error?.message}`,
            { code: "agent_recovery_failed" },
          ),
          { agent: id },
        );
        return;
      }
    }
    agent.health = "healthy";
    agent.lastHeartbeatAt = this.#clock.now();
    await this.#save();
    await this.#event("agent_recovered", { agent: id });
  }
}
