/**
 * Verified, per-agent checkpoints: an agent can always get back to its
 * last good state. A checkpoint is written whole or not at all (durable
 * atomic replace) with a SHA-256 of its exact payload; every restore
 * checks length, checksum, format version, JSON, migration and validation,
 * moves a bad file to `quarantine/` with a reason, and falls back to the
 * next older one. A checkpoint restored again and again without the agent
 * proving healthy is treated as poisoned and skipped. Retention is a pure,
 * explainable plan (routine: last 3; recovery: 7 days; pre_operation: while
 * its operation is open) that never trashes the newest valid checkpoint.
 * Operations pin their checkpoint; `guard()` rolls back on a throw; drift
 * rules compare the latest state with the one before it.
 *
 * Files live under `<root>/checkpoints/<agentId>/`: `<type>/<seq>.ckpt`,
 * `trash/`, `quarantine/`, `journal.jsonl`, `operations.json`,
 * `restores.json` with `restores.jsonl` (restore counts) and `metrics.jsonl`.
 *
 * @example Save, damage, and restore past the damage
 * ```ts
 * import { openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using checkpoints = await openCheckpoints<{ step: number }>({ agentId: "planner", root });
 * await checkpoints.create("routine", { state: { step: 1 } });
 * const newest = await checkpoints.create("routine", { state: { step: 2 } });
 * const { size } = await Deno.stat(newest.path);
 * await Deno.truncate(newest.path, size - 1); // cut the file short
 *
 * const { state, ref, skipped } = await checkpoints.restore();
 * assert.equal(state.step, 1);
 * assert.equal(ref.seq, 1);
 * assert.match(skipped[0]!.reason, /^truncated/);
 * assert.equal(skipped[0]!.quarantined, true);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./errors.ts";
export * from "./options.ts";
export * from "./drift.ts";
export * from "./manager.ts";
export * from "./operation.ts";
export * from "./retention.ts";
export * from "./store.ts";
export type { JournalEvent, JournalEventKind } from "./_journal.ts";
// Referenced by the types above; re-exported so this entry point is whole.
export { type Clock, SturdyError } from "../retry/mod.ts";
export type { LockKind } from "../lock/mod.ts";
