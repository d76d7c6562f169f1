/**
 * An agent run described in one `episode.yaml`: validated config (safe
 * YAML: size limit, no aliases, unknown keys refused with "did you mean"),
 * an episode lifecycle with an error threshold, agents with health checks
 * recovered within a cooldown and a persisted recovery limit, graceful
 * signals, and a resumable task runner that sends every task through
 * recovery/ and never redoes finished work.
 *
 * @example Run an episode's tasks
 * ```ts
 * import { defineEpisode, runEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const config = defineEpisode({
 *   version: 1,
 *   episode: "demo",
 *   root,
 *   tasks: [
 *     { id: "hello", sh: "echo hello > hello.txt" },
 *     { id: "optional", sh: "exit 1", strategy: "skip", optional: true },
 *   ],
 * }, { baseDir: root });
 * const summary = await runEpisode(config, { checkpoints: false, stdout: "null" });
 * assert.equal(summary.status, "completed");
 * assert.equal(summary.totals.skipped, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./define.ts";
export * from "./episode.ts";
export * from "./errors.ts";
export * from "./hooks.ts";
export * from "./limits.ts";
export * from "./run_episode.ts";
// Referenced by the types above; re-exported so this entry point is whole.
export type { Clock, SturdyError, SturdyErrorOptions } from "../retry/mod.ts";
