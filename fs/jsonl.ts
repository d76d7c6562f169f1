// JSONL logs: one JSON value per line, appended and synced.
//
// Invariant: every complete line in the file is one whole record. A line is
// written with a single append (looping only on a short write) and synced
// before the call returns, so a crash can leave at most one torn line, at
// the end; readers report it instead of failing, and the next append cuts
// it off before writing so it never glues onto a new record.

import { resolve } from "node:path";
import type { IoOptions } from "./io_options.ts";
import { FileReadError } from "./errors.ts";
import type { FileHandle } from "./file_system.ts";
import { guardAttempts } from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { decodeUtf8, parseJson } from "./_decode.ts";
import { readWithin } from "./_read_within.ts";
import { runIo } from "./_run_io.ts";
import { writeAll } from "./_stream_io.ts";
import { toJson } from "./_to_json.ts";
import { writeFailure } from "./_write_error.ts";
import { writeQueue } from "./_write_queue.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** Options of {@linkcode appendJsonl}. */
export interface AppendJsonlOptions extends IoOptions {
  /**
   * `"durable"` (or `"atomic"`) syncs the line to the device before
   * returning; `"none"` leaves it to the OS.
   *
   * @default {"durable"}
   */
  durability?: "durable" | "atomic" | "none";
  /**
   * The mode of a file created by the append.
   *
   * @default {0o666} (less the umask)
   */
  mode?: number;
}

/** Options of {@linkcode readJsonl}. */
export interface ReadJsonlOptions extends IoOptions {
  /**
   * What to do with a line that is not valid JSON before the last one:
   * `"error"` fails with code `invalid_json` naming the line; `"skip"`
   * leaves it out and lists it in `skipped`.
   *
   * @default {"error"}
   */
  onCorrupt?: "error" | "skip";
  /**
   * The largest file to read, in bytes.
   *
   * @default {268_435_456} (256 MiB)
   */
  maxBytes?: number;
}

/** A line {@linkcode readJsonl} left out. */
export interface JsonlProblem {
  /** The 1-based line number. */
  line: number;
  /** Its length in bytes (without the newline). */
  bytes: number;
  /** Why it was left out. */
  reason: string;
}

/** What {@linkcode readJsonl} found. */
export interface JsonlContent<T = unknown> {
  /** The records, in file order. */
  records: T[];
  /**
   * The last line, if it was torn: not ended by a newline (a crash during
   * an append) or not valid JSON. It is not in `records`.
   */
  torn?: JsonlProblem;
  /** Corrupt lines before the last, with `onCorrupt: "skip"`. */
  skipped: JsonlProblem[];
}

interface Truncatable extends FileHandle {
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
  truncate(len?: number): Promise<void>;
}

function canTruncate(handle: FileHandle): handle is Truncatable {
  const h = handle as Partial<Truncatable>;
  return typeof h.seek === "function" && typeof h.truncate === "function";
}

const NEWLINE = 0x0a;

// Cuts off a torn last line (no final newline), found by reading back from
// the end. A handle that cannot seek (a custom FileSystem) is left as is.
async function cutTornTail(handle: FileHandle): Promise<void> {
  if (!canTruncate(handle)) return;
  let end = (await handle.stat()).size;
  if (end === 0) return;
  // The common case: the file ends with a newline. One byte tells.
  const last = new Uint8Array(1);
  await handle.seek(end - 1, Deno.SeekMode.Start);
  if ((await handle.read(last)) === 1 && last[0] === NEWLINE) return;
  const buf = new Uint8Array(1 << 16);
  let first = true;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    await handle.seek(start, Deno.SeekMode.Start);
    const chunk = buf.subarray(0, end - start);
    let got = 0;
    while (got < chunk.length) {
      const n = await handle.read(chunk.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (first && chunk[chunk.length - 1] === NEWLINE) return; // not torn
    first = false;
    const at = chunk.lastIndexOf(NEWLINE);
    if (at !== -1) return await handle.truncate(start + at + 1);
    end = start;
  }
  await handle.truncate(0);
}

/**
 * Appends one record as a line of JSON and syncs it, so once the call
 * returns the line survives a crash. Appends to the same path from this
 * process run one at a time, so lines never interleave; a torn last line
 * left by a crash is cut off first. Between processes, a line is written
 * with one append, which local file systems do not interleave; use a lock
 * for anything stronger.
 *
 * @param path The log file; created if missing (its directory must exist).
 * @param record The record; anything JSON can hold.
 * @param options Durability, mode, retry, timeout, signal.
 * @returns Resolves once the line is written (and synced).
 *
 * @example Append and read back
 * ```ts
 * import { appendJsonl, readJsonl } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await appendJsonl(`${dir}/log.jsonl`, { event: "start" });
 * await appendJsonl(`${dir}/log.jsonl`, { event: "stop" });
 * const { records } = await readJsonl(`${dir}/log.jsonl`);
 * assert.deepEqual(records, [{ event: "start" }, { event: "stop" }]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function appendJsonl(
  path: string,
  record: unknown,
  options?: AppendJsonlOptions,
): Promise<void> {
  return appendLines("appendJsonl", path, [record], options);
}

/**
 * Appends several records, one line each, with a single write (and one
 * sync): the lines land together or, after a crash, as whole lines up to
 * a torn last one that the next append cuts off. Otherwise as
 * {@linkcode appendJsonl}. An empty list writes nothing.
 *
 * @param path The log file; created if missing (its directory must exist).
 * @param records The records, in order; anything JSON can hold.
 * @param options Durability, mode, retry, timeout, signal.
 * @returns Resolves once the lines are written (and synced).
 *
 * @example Append a batch
 * ```ts
 * import { appendJsonlBatch, readJsonl } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await appendJsonlBatch(`${dir}/log.jsonl`, [{ n: 1 }, { n: 2 }]);
 * assert.deepEqual((await readJsonl(`${dir}/log.jsonl`)).records, [
 *   { n: 1 },
 *   { n: 2 },
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function appendJsonlBatch(
  path: string,
  records: readonly unknown[],
  options?: AppendJsonlOptions,
): Promise<void> {
  if (records.length === 0) return Promise.resolve();
  return appendLines("appendJsonlBatch", path, records, options);
}

function appendLines(
  operation: string,
  path: string,
  records: readonly unknown[],
  options: AppendJsonlOptions | undefined,
): Promise<void> {
  let lines: Uint8Array;
  try {
    checkPath("write", operation, path);
    // JSON never holds a raw newline, so each record is exactly one line.
    lines = new TextEncoder().encode(
      records.map((r) => toJson(r, undefined, operation, path)).join("\n") +
        "\n",
    );
  } catch (err) {
    return Promise.reject(err);
  }
  const site = { operation, path };
  return writeQueue.run(
    resolve(path),
    () =>
      runIo(
        "write",
        operation,
        path,
        options,
        guardAttempts(async ({ fs, signal }) => {
          signal.throwIfAborted();
          const handle = await fs.open(path, {
            read: true,
            append: true,
            create: true,
            mode: options?.mode ?? 0o666,
          });
          try {
            await cutTornTail(handle);
            await writeAll(handle, lines, site);
            if (options?.durability === "none") return;
            try {
              await handle.syncData();
            } catch (err) {
              throw writeFailure(
                "sync_failed",
                operation,
                path,
                `flushing the appended lines to the device failed (${
                  osCodeOf(err) ?? "fsync error"
                }); they may be lost after a crash, and the append is not retried, since a failed fsync may have dropped the data (check the device)`,
                err,
              );
            }
          } finally {
            handle.close();
          }
        }),
      ),
    false,
  );
}

/**
 * Reads a JSONL log. A torn last line (a crash during an append) is left
 * out and reported in `torn` instead of failing the read; a corrupt line
 * before it fails with code `invalid_json` naming the line, or with
 * `onCorrupt: "skip"` is left out and listed in `skipped`. Blank lines are
 * ignored. A missing file fails with code `not_found`.
 *
 * @typeParam T The record type (not checked).
 * @param path The log file.
 * @param options What to do with corrupt lines, size limit, retry, timeout.
 * @returns The records and what was left out.
 *
 * @example Read a log whose last append was cut short
 * ```ts
 * import { readJsonl } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/log.jsonl`, '{"n":1}\n{"n":2}\n{"n":');
 * const { records, torn } = await readJsonl(`${dir}/log.jsonl`);
 * assert.deepEqual(records, [{ n: 1 }, { n: 2 }]);
 * assert.equal(torn?.line, 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJsonl<T = unknown>(
  path: string,
  options?: ReadJsonlOptions,
): Promise<JsonlContent<T>> {
  const bytes = await readWithin(
    "readJsonl",
    path,
    options?.maxBytes ?? 268_435_456,
    options,
  );
  const records: T[] = [];
  const skipped: JsonlProblem[] = [];
  let torn: JsonlProblem | undefined;
  let start = 0;
  for (let line = 1; start < bytes.length; line++) {
    const nl = bytes.indexOf(NEWLINE, start);
    const end = nl === -1 ? bytes.length : nl;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const last = start >= bytes.length;
    if (nl === -1) {
      torn = { line, bytes: raw.length, reason: "no newline at the end" };
      break;
    }
    let record: unknown;
    try {
      const text = decodeUtf8(raw, "readJsonl", path).trim();
      if (text === "") continue;
      record = parseJson(text, "readJsonl", path, line - 1);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (last) {
        torn = { line, bytes: raw.length, reason };
      } else if (options?.onCorrupt === "skip") {
        skipped.push({ line, bytes: raw.length, reason });
      } else {
        throw new FileReadError(
          `Cannot read "${path}": line ${line} is not valid JSON and is not the last line, so it is not a torn append but damage; pass onCorrupt: "skip" to read past it`,
          { code: "invalid_json", path, operation: "readJsonl", cause: err },
        );
      }
      continue;
    }
    records.push(record as T);
  }
  return { records, skipped, ...(torn ? { torn } : {}) };
}
