// Multi-file transactions: all staged files change, or none does.
//
// Invariant: after a crash at any instant, recovery (which the next
// transaction in any touched directory runs) leaves every target with its
// complete old content, or every target with its complete new content.
// The journal's existence decides which: while it exists, recovery rolls
// back; once it is deleted, the transaction has committed.
//
// Commit protocol (the steps the crash harness kills at):
//   0. own: create and lock `.sturdy-tx/<id>.lock` in every target
//      directory, held until step 7 is done, so recovery in any process
//      can tell this commit's files from a dead one's; the id's `-l` flag
//      says every one was made, so a missing one means a dead owner
//      (fs/_tx_owner.ts);
//   1. stage: each new content goes to a synced temp next to its target;
//   2. back up: hard-link each existing target to its backup name (a
//      synced copy where links are unavailable);
//   3. journal: write the refs, then the journal (temp, sync, rename), and
//      sync every involved directory, so the journal, backups and temps
//      are all on disk before any target changes;
//   4. switch: rename each temp over its target (remove for a removal);
//      a failure here rolls back at once from the journal;
//   5. sync the target directories;
//   6. COMMIT POINT: delete the journal and sync its directory;
//   7. clean up: delete the backups, then the refs (leftovers are swept
//      later: a backup only once no journal or ref of its transaction is
//      left in its directory, so a sweep can never take a backup that a
//      hot journal elsewhere still needs; see fs/_journal.ts).

import { resolve } from "node:path";
import {
  classifyError,
  retryPresets,
  SturdyError,
  systemClock,
} from "../retry/mod.ts";
import { denoFileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import { type Durability, guardAttempts } from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { commitStaged, retryCause, type Staged } from "./_commit.ts";
import { runIo } from "./_run_io.ts";
import { toJson } from "./_to_json.ts";
import { writeFailure } from "./_write_error.ts";
import { sweepThrottle, writeQueue } from "./_write_queue.ts";
import { recoverDirectory } from "./recover_transactions.ts";

/** Options of {@linkcode transaction}. */
export interface TransactionOptions extends IoOptions {
  /**
   * `"durable"`: once the call returns, the new contents survive a power
   * loss, and a power loss during the commit leaves all old or all new.
   * `"none"`: nothing is synced, all-or-nothing holds against a process
   * crash only. `"atomic"` behaves as `"durable"`: a multi-file commit
   * cannot stay all-or-nothing across a power loss without the directory
   * syncs, so there is nothing it could skip.
   *
   * The `timeout` and `signal` options bound the commit (staging to
   * journal deletion), not your callback; an abort before the switch
   * leaves every file untouched.
   *
   * @default {"durable"}
   */
  durability?: Durability;
}

/** Options of a staged write. */
export interface StageOptions {
  /**
   * The file's mode.
   *
   * @default {undefined} (the existing file's mode, or 0o666 less the
   * umask for a new file)
   */
  mode?: number;
}

/** Options of {@linkcode Transaction.writeJson}. */
export interface StageJsonOptions extends StageOptions {
  /**
   * Indentation, as for `JSON.stringify`.
   *
   * @default {2}
   */
  space?: number | string;
}

/** Stages changes; they happen together when the callback returns. */
export interface Transaction {
  /**
   * Stages new bytes for `path`. Staging a path again replaces what was
   * staged before (the last one wins).
   *
   * @param path The file to write; its directory must exist.
   * @param data The new content.
   * @param options The file's mode.
   * @returns Resolves once staged.
   */
  writeBytes(
    path: string,
    data: Uint8Array,
    options?: StageOptions,
  ): Promise<void>;
  /**
   * Stages text (UTF-8) for `path`.
   *
   * @param path The file to write.
   * @param text The new content.
   * @param options The file's mode.
   * @returns Resolves once staged.
   */
  writeText(path: string, text: string, options?: StageOptions): Promise<void>;
  /**
   * Stages a value as JSON (and a final newline) for `path`. A value JSON
   * cannot hold is refused with code `invalid_data`.
   *
   * @param path The file to write.
   * @param value The value.
   * @param options Indentation and mode.
   * @returns Resolves once staged.
   */
  writeJson(
    path: string,
    value: unknown,
    options?: StageJsonOptions,
  ): Promise<void>;
  /**
   * Stages the removal of `path` (nothing happens if it does not exist).
   *
   * @param path The file to remove.
   * @returns Resolves once staged.
   */
  remove(path: string): Promise<void>;
}

/**
 * Runs `fn` to stage writes and removals of several files, then commits
 * them all or none: after a crash at any instant, the next transaction in
 * any touched directory (or {@linkcode recoverTransactions}) leaves every
 * target all old or all new. If `fn` throws, nothing is written and its
 * error is rethrown unchanged. A failure during the commit rolls every
 * target back before the call rejects with a typed error. Transactions
 * and writes from this process that share a target run one at a time.
 *
 * @param fn Stages changes through its `tx` argument; its result is
 *   returned.
 * @param options Durability, retry, timeout, signal, fs, reporter.
 * @returns What `fn` returned, once everything is committed.
 *
 * @example Update two files together
 * ```ts
 * import { transaction } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await transaction(async (tx) => {
 *   await tx.writeText(`${dir}/a.txt`, "A1");
 *   await tx.writeJson(`${dir}/b.json`, { version: 1 });
 * });
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "A1");
 * // A callback that throws writes nothing.
 * await assert.rejects(transaction(async (tx) => {
 *   await tx.writeText(`${dir}/a.txt`, "A2");
 *   throw new Error("changed my mind");
 * }), { message: "changed my mind" });
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "A1");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function transaction<T>(
  fn: (tx: Transaction) => Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  const staged = new Map<string, Staged>();
  let open = true;
  const stage = (
    operation: string,
    path: string,
    data: () => Uint8Array | null,
    mode?: number,
  ): Promise<void> => {
    try {
      checkPath("write", operation, path);
      if (!open) {
        throw writeFailure(
          "transaction_closed",
          operation,
          path,
          "the transaction has already ended; stage changes inside its callback and await them",
        );
      }
      options?.signal?.throwIfAborted();
      const key = resolve(path);
      staged.delete(key); // re-staging moves it to the end: last one wins
      staged.set(key, {
        path,
        data: data(),
        ...(mode === undefined ? {} : { mode }),
      });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  };
  const tx: Transaction = {
    writeBytes: (path, data, o) =>
      stage("writeBytes", path, () => data.slice(), o?.mode),
    writeText: (path, text, o) =>
      stage(
        "writeText",
        path,
        () => new TextEncoder().encode(text),
        o?.mode,
      ),
    writeJson: (path, value, o) =>
      stage("writeJson", path, () => {
        const text = toJson(value, o?.space ?? 2, "writeJson", path);
        return new TextEncoder().encode(text + "\n");
      }, o?.mode),
    remove: (path) => stage("remove", path, () => null),
  };
  let value: T;
  try {
    value = await fn(tx);
  } finally {
    open = false;
  }
  if (staged.size === 0) return value;
  await commit(staged, options);
  return value;
}

async function commit(
  staged: Map<string, Staged>,
  options: TransactionOptions | undefined,
): Promise<void> {
  const fs = options?.fs ?? denoFileSystem;
  const clock = options?.clock ?? systemClock;
  const durable = (options?.durability ?? "durable") !== "none";
  // Rolls back abandoned transactions in every directory about to be used;
  // the full sweep of orphan files runs at most once a minute per
  // directory, like the one writes do.
  const recover = async (dirs: string[]) => {
    const now = clock.now();
    for (const dir of dirs) {
      const sweep = sweepThrottle.due(dir, now);
      await recoverDirectory(fs, dir, { sweep, maxAgeMs: 3_600_000, now });
    }
  };
  const keys = [...staged.keys()].sort();
  const merged = { ...retryPresets.fileIo, ...options?.retry };
  const classify = merged.classify ?? classifyError;
  const retry = options?.retry === false
    ? false
    : { ...merged, classify: (err: unknown) => classify(retryCause(err)) };
  const run = () =>
    runIo(
      "write",
      "transaction",
      staged.get(keys[0]!)!.path,
      { ...options, retry },
      guardAttempts(
        (attempt) => commitStaged(attempt, staged, { durable, recover }),
        (err) =>
          err instanceof SturdyError &&
          (err.code === "corrupt_journal" || err.code === "rollback_failed"),
      ),
    );
  // Hold every target's write queue, in sorted order so two transactions
  // never wait on each other, for the whole commit.
  const hold = (i: number): Promise<void> =>
    i === keys.length
      ? run()
      : writeQueue.run(keys[i]!, () => hold(i + 1), false);
  await hold(0);
}
