import { type EpisodeConfig, parseEpisode } from "./config.ts";

/** Options of {@linkcode defineEpisode}. */
export interface DefineEpisodeOptions {
  /**
   * The directory relative paths (`root`, task `cwd`) resolve against.
   *
   * @default {the current directory}
   */
  baseDir?: string;
}

/**
 * Builds an episode config from a plain object written in code, with the
 * same keys, defaults and validation as `episode.yaml` (it is read as that
 * file would be).
 *
 * @param definition The episode, as the YAML would hold it.
 * @param options Where relative paths start.
 * @returns The validated config.
 * @throws {EpisodeConfigError} Listing every problem.
 *
 * @example An episode in code
 * ```ts
 * import { defineEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const config = defineEpisode({
 *   version: 1,
 *   episode: "nightly",
 *   limits: { errorThreshold: { count: 5, window: "60s" } },
 *   tasks: [{ id: "sync", run: ["./sync.sh"], retry: 5 }],
 * });
 * assert.equal(config.limits.errorThreshold.windowMs, 60_000);
 * assert.equal(config.tasks[0]!.retry.attempts, 5);
 * ```
 */
export function defineEpisode(
  definition: Record<string, unknown>,
  options: DefineEpisodeOptions = {},
): EpisodeConfig {
  return parseEpisode(JSON.stringify(definition), {
    file: "defineEpisode()",
    ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}),
  });
}
