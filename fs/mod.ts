/**
 * Resilient reads and durable atomic writes: after a crash at any instant,
 * every file Sturdy wrote holds its complete old content or its complete
 * new content, never a mix, never empty, and no temp files are left behind.
 * Reads and directory walks are retried and bounded by timeouts.
 *
 * @example Write JSON durably and read it back
 * ```ts
 * import { readJson, writeJson } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeJson(`${dir}/state.json`, { step: 3 });
 * assert.deepEqual(await readJson(`${dir}/state.json`), { step: 3 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./ensure_dir.ts";
export * from "./error_reporter.ts";
export * from "./errors.ts";
export * from "./file_system.ts";
export * from "./io_options.ts";
export * from "./json_problem.ts";
export * from "./jsonl.ts";
export * from "./list_dir.ts";
export * from "./move.ts";
export * from "./read.ts";
export * from "./recover_dir.ts";
export * from "./recover_transactions.ts";
export * from "./remove.ts";
export * from "./scan_dir.ts";
export * from "./transaction.ts";
export * from "./write.ts";
