import type { EpisodeConfig } from "./config.ts";
import {
  type AgentRegistration,
  Episode,
  type EpisodeEndStatus,
  type EpisodeOptions,
  type EpisodeState,
  type EpisodeStats,
} from "./episode.ts";

/**
 * The seeds' function-style episode hooks, as plain functions over one
 * {@linkcode Episode} object (no global state: make as many as you need).
 */
export interface EpisodeHooks {
  /** The episode the hooks drive. */
  readonly episode: Episode;
  /** Starts the episode (see {@linkcode Episode.start}). */
  onEpisodeStart(): Promise<{ previous?: EpisodeState; budget: string }>;
  /** Ends it (see {@linkcode Episode.end}). */
  onEpisodeEnd(
    status?: EpisodeEndStatus,
    reason?: string,
  ): Promise<EpisodeState>;
  /** Records an error (see {@linkcode Episode.error}). */
  onEpisodeError(
    err: unknown,
  ): Promise<{ count: number; thresholdReached: boolean }>;
  /** Registers an agent (see {@linkcode Episode.registerAgent}). */
  registerAgent(id: string, registration?: AgentRegistration): void;
  /** Unregisters an agent. */
  unregisterAgent(id: string): void;
  /** Records an agent's heartbeat. */
  heartbeat(id: string): void;
  /** Records a task that failed for good. */
  recordFailedTask(taskId: string, err?: unknown): Promise<void>;
  /** Records a task that recovered. */
  recordRecoveredTask(taskId: string): Promise<void>;
  /** The episode's figures. */
  stats(): EpisodeStats;
}

/**
 * Makes the function-style hooks of the seeds (`onEpisodeStart`,
 * `onEpisodeEnd`, `onEpisodeError`, `registerAgent`, …) over a new
 * {@linkcode Episode}: a thin layer for scripts written against that
 * style, with every call going to one episode object.
 *
 * @param config The episode's config.
 * @param options As for {@linkcode Episode}.
 * @returns The hooks, and the episode behind them.
 *
 * @example Seeds-style hooks
 * ```ts
 * import { createEpisodeHooks, defineEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const hooks = createEpisodeHooks(defineEpisode({ version: 1, episode: "seed", root }));
 * await hooks.onEpisodeStart();
 * hooks.registerAgent("planner");
 * hooks.heartbeat("planner");
 * await hooks.onEpisodeError(new Error("tool call failed"));
 * await hooks.recordRecoveredTask("plan-1");
 * const state = await hooks.onEpisodeEnd("completed");
 * assert.equal(state.errorCount, 1);
 * assert.equal(hooks.stats().recoveredTasks, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function createEpisodeHooks(
  config: EpisodeConfig,
  options?: EpisodeOptions,
): EpisodeHooks {
  const episode = new Episode(config, options);
  return {
    episode,
    onEpisodeStart: () => episode.start(),
    onEpisodeEnd: (status, reason) => episode.end(status, reason),
    onEpisodeError: (err) => episode.error(err),
    registerAgent: (id, registration) =>
      episode.registerAgent(id, registration),
    unregisterAgent: (id) => episode.unregisterAgent(id),
    heartbeat: (id) => episode.heartbeat(id),
    recordFailedTask: (taskId, err) => episode.recordFailedTask(taskId, err),
    recordRecoveredTask: (taskId) => episode.recordRecoveredTask(taskId),
    stats: () => episode.stats(),
  };
}
