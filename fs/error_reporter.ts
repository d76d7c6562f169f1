// Persisted I/O error reports: one JSON object per line under
// `<dir>/reports/io/`, in numbered files `io-00000001.jsonl`, … The highest
// number is the file being appended to; when a line would push it past
// `maxBytes` the next number starts, and the oldest files are deleted so at
// most `maxFiles` remain.
//
// Invariants: `report` never throws and never rejects (a report that cannot
// be written is dropped and counted), it never goes through a call that
// reports (so a failing disk cannot make it recurse), and the reports of
// one reporter are written one at a time, each line in a single write, so
// lines never interleave.

import { join, resolve } from "node:path";
import { type Clock, systemClock } from "../retry/mod.ts";
import {
  denoFileSystem,
  type FileHandle,
  type FileSystem,
} from "./file_system.ts";
import type { IoErrorSink, IoFailure } from "./io_options.ts";
import { osCodeOf } from "./_to_fs_error.ts";

/** One persisted report, as stored and as returned by `list`. */
export interface IoReport {
  /** Format tag of the record. */
  format: "sturdy.io-report/1";
  /** When the failure was reported (ISO 8601). */
  timestamp: string;
  /** The call that failed, e.g. `"writeJson"`. */
  operation: string;
  /** The path it worked on. */
  path: string;
  /** The error's class name, e.g. `"FileWriteError"`. */
  errorType: string;
  /** The error's code, e.g. `"no_space"`, or `"unknown"`. */
  code: string;
  /** The error's message. */
  message: string;
  /** What the caller passed as `context`, if anything. */
  context?: Record<string, unknown>;
  /** How many attempts were made. */
  attempts: number;
}

/** Options of {@linkcode ErrorReporter}. */
export interface ErrorReporterOptions {
  /**
   * The Sturdy root; reports go to `<dir>/reports/io/`.
   *
   * @default {".sturdy"}
   */
  dir?: string;
  /**
   * Size in bytes after which a new report file is started.
   *
   * @default {1_048_576} (1 MiB)
   */
  maxBytes?: number;
  /**
   * How many report files to keep; the oldest are deleted.
   *
   * @default {5}
   */
  maxFiles?: number;
  /**
   * Time source for timestamps.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * The file system to write through. It is called directly, never through
   * a reporting fs/ call.
   *
   * @default {denoFileSystem}
   */
  fs?: FileSystem;
  /**
   * Called with the error when a report could not be written (it is
   * dropped). Whatever it throws is ignored.
   *
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

/** Filters of {@linkcode ErrorReporter.list}. */
export interface ListReportsOptions {
  /**
   * Only reports of this call.
   *
   * @default {undefined} (every call)
   */
  operation?: string;
  /**
   * Only reports on this path or on paths inside this directory.
   *
   * @default {undefined} (every path)
   */
  path?: string;
  /**
   * Only reports at or after this time (a `Date` or epoch milliseconds).
   *
   * @default {undefined} (all)
   */
  since?: Date | number;
  /**
   * At most this many reports (the newest).
   *
   * @default {Infinity}
   */
  limit?: number;
}

const FILE = /^io-(\d{8})\.jsonl$/;
const MAX_MESSAGE = 8_192;

function fileName(seq: number): string {
  return `io-${String(seq).padStart(8, "0")}.jsonl`;
}

/**
 * Persists failed fs/ calls as JSONL under `<dir>/reports/io/`, bounded on
 * disk by size and count. Pass it as the `reporter` option of any fs/ call.
 * It never throws and never reports its own failures through fs/ calls.
 *
 * @example Record a failed read and list it
 * ```ts
 * import { ErrorReporter, readText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const reporter = new ErrorReporter({ dir: root });
 * await readText(`${root}/missing.txt`, { reporter }).catch(() => {});
 * const [report] = await reporter.list({ operation: "readText" });
 * assert.equal(report?.code, "not_found");
 * assert.equal(report?.path, `${root}/missing.txt`);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class ErrorReporter implements IoErrorSink, AsyncDisposable {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #maxFiles: number;
  readonly #clock: Clock;
  readonly #fs: FileSystem;
  readonly #onError: ((error: unknown) => void) | undefined;
  #tail: Promise<void> = Promise.resolve();
  #seq: number | undefined;
  #tailChecked: number | undefined;
  #dropped = 0;

  /**
   * Creates a reporter; nothing touches the disk until the first report.
   *
   * @param options Root directory, size and count bounds, clock, fs.
   */
  constructor(options: ErrorReporterOptions = {}) {
    this.#dir = resolve(options.dir ?? ".sturdy", "reports", "io");
    this.#maxBytes = options.maxBytes ?? 1_048_576;
    this.#maxFiles = Math.max(1, options.maxFiles ?? 5);
    this.#clock = options.clock ?? systemClock;
    this.#fs = options.fs ?? denoFileSystem;
    this.#onError = options.onError;
  }

  /** The directory the report files are in. */
  get directory(): string {
    return this.#dir;
  }

  /** How many reports could not be written and were dropped. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Persists one failure. Never rejects: a report that cannot be written
   * is dropped, counted in `dropped` and passed to `onError`.
   *
   * @param failure The failed call.
   * @returns Resolves once the report is on disk (or dropped).
   */
  report(failure: IoFailure): Promise<void> {
    let line: string;
    try {
      line = this.#line(failure);
    } catch (err) {
      this.#drop(err);
      return this.#tail;
    }
    const run = this.#tail.then(() => this.#append(line))
      .catch((err) => this.#drop(err));
    this.#tail = run;
    return run;
  }

  /**
   * Waits until every report made so far is written or dropped.
   *
   * @returns Resolves when nothing is pending.
   */
  flush(): Promise<void> {
    return this.#tail;
  }

  /** Waits for pending reports, as {@linkcode ErrorReporter.flush}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.flush();
  }

  /**
   * Reads reports back, newest first, after waiting for pending ones. A
   * torn or unparseable line (e.g. from a crash mid-append) is skipped.
   *
   * @param options Filters by operation, path, time, and a limit.
   * @returns The matching reports, newest first.
   */
  async list(options: ListReportsOptions = {}): Promise<IoReport[]> {
    await this.flush();
    const since = options.since === undefined
      ? -Infinity
      : typeof options.since === "number"
      ? options.since
      : options.since.getTime();
    const limit = options.limit ?? Infinity;
    const dirPrefix = options.path?.endsWith("/")
      ? options.path
      : `${options.path}/`;
    const out: IoReport[] = [];
    const seqs = await this.#files().catch(() => [] as number[]);
    for (const seq of seqs.reverse()) {
      let text: string;
      try {
        text = new TextDecoder().decode(
          await this.#fs.readFile(join(this.#dir, fileName(seq))),
        );
      } catch {
        continue; // rotated away meanwhile
      }
      const lines = text.split("\n").reverse();
      for (const line of lines) {
        if (out.length >= limit) return out;
        const report = parse(line);
        if (!report) continue;
        if (options.operation && report.operation !== options.operation) {
          continue;
        }
        if (
          options.path !== undefined && report.path !== options.path &&
          !report.path.startsWith(dirPrefix)
        ) continue;
        if (Date.parse(report.timestamp) < since) continue;
        out.push(report);
      }
    }
    return out;
  }

  #line(failure: IoFailure): string {
    const error = failure.error;
    const report: IoReport = {
      format: "sturdy.io-report/1",
      timestamp: new Date(this.#clock.now()).toISOString(),
      operation: String(failure.operation),
      path: String(failure.path),
      errorType: error?.name ?? typeof error,
      code: typeof error?.code === "string" ? error.code : "unknown",
      message: String(error?.message ?? error).slice(0, MAX_MESSAGE),
      attempts: failure.attempts,
    };
    if (failure.context !== undefined) report.context = failure.context;
    try {
      return JSON.stringify(report) + "\n";
    } catch {
      // A context JSON cannot hold (a cycle, a bigint) must not lose the
      // report itself.
      report.context = { unserializable: true };
      return JSON.stringify(report) + "\n";
    }
  }

  #drop(err: unknown): void {
    this.#dropped++;
    try {
      this.#onError?.(err);
    } catch { /* a hook must not break reporting */ }
  }

  /** The sequence numbers of the report files, ascending. */
  async #files(): Promise<number[]> {
    const seqs: number[] = [];
    for await (const entry of this.#fs.readDir(this.#dir)) {
      const m = FILE.exec(entry.name);
      if (m && entry.isFile) seqs.push(Number(m[1]));
    }
    return seqs.sort((a, b) => a - b);
  }

  async #append(line: string): Promise<void> {
    let bytes = new TextEncoder().encode(line);
    if (this.#seq === undefined) {
      await this.#fs.mkdir(this.#dir, { recursive: true });
      this.#seq = (await this.#files()).at(-1) ?? 1;
    }
    let handle: FileHandle | undefined = await this.#open(this.#seq);
    try {
      const size = (await handle.stat()).size;
      if (size > 0 && size + bytes.length > this.#maxBytes) {
        handle.close();
        handle = undefined;
        // Another process may have rotated too: continue after the newest.
        const newest = (await this.#files()).at(-1) ?? 0;
        this.#seq = Math.max(this.#seq + 1, newest + 1);
        handle = await this.#open(this.#seq);
        await this.#prune();
      } else if (size > 0 && this.#tailChecked !== this.#seq) {
        // A crash may have left a torn last line; start on a fresh line
        // so this report is not glued to it. Checked once per file, since
        // every line this reporter writes ends with a newline.
        const text = await this.#fs.readFile(
          join(this.#dir, fileName(this.#seq)),
        );
        if (text.at(-1) !== 0x0a) bytes = new TextEncoder().encode("\n" + line);
      }
      this.#tailChecked = this.#seq;
      // One write per line: O_APPEND keeps it whole even if another
      // process appends to the same file.
      let offset = 0;
      while (offset < bytes.length) {
        const n = await handle.write(bytes.subarray(offset));
        if (n <= 0) throw new Error("the report file accepted no bytes");
        offset += n;
      }
      await handle.syncData();
    } finally {
      handle?.close();
    }
  }

  #open(seq: number): Promise<FileHandle> {
    return this.#fs.open(join(this.#dir, fileName(seq)), {
      append: true,
      create: true,
    });
  }

  async #prune(): Promise<void> {
    const seqs = await this.#files();
    for (
      const seq of seqs.slice(0, Math.max(0, seqs.length - this.#maxFiles))
    ) {
      await this.#fs.remove(join(this.#dir, fileName(seq))).catch((err) => {
        if (osCodeOf(err) !== "ENOENT") throw err;
      });
    }
  }
}

function parse(line: string): IoReport | undefined {
  if (line.trim() === "") return undefined;
  try {
    const value = JSON.parse(line);
    if (
      value?.format === "sturdy.io-report/1" &&
      typeof value.path === "string" && typeof value.timestamp === "string" &&
      typeof value.operation === "string"
    ) return value as IoReport;
  } catch { /* a torn line */ }
  return undefined;
}
