/**
 * Runs tasks under recovery strategies — retry when transient, roll back
 * files and checkpoints when a task left things half-done, skip when
 * optional, ask or hand over to a person when needed — with task state
 * persisted on every transition (so a killed process resumes with the
 * right attempt count and never redoes finished work), a JSONL log per
 * task with secrets redacted, escalation files, and statistics computed
 * from the logs.
 *
 * @example Retry, then escalate
 * ```ts
 * import { RecoveryManager } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const recovery = new RecoveryManager({ root, retry: { minDelay: 1 } });
 * const result = await recovery.execute("sync-inbox", () => {
 *   throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
 * }, { strategy: ["retry", "escalate"] });
 * assert.equal(result.status, "escalated");
 * assert.equal(result.attempts, 3);
 * const [escalation] = await recovery.escalations({ status: "open" });
 * assert.match(escalation!.summary, /failed 3 runs/);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./command_task.ts";
export * from "./decide.ts";
export * from "./errors.ts";
export * from "./escalation.ts";
export * from "./log.ts";
export * from "./manager.ts";
export * from "./options.ts";
export * from "./recoverable.ts";
export * from "./redact.ts";
export * from "./rules.ts";
export * from "./stats.ts";
export * from "./types.ts";
// Referenced by the types above; re-exported so this entry point is whole.
export type {
  Clock,
  ErrorCategory,
  Jitter,
  SturdyError,
} from "../retry/mod.ts";
