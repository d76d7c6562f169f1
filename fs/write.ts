import { dirname, resolve } from "node:path";
import { systemClock } from "../retry/mod.ts";
import { denoFileSystem, type FileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import {
  atomicWrite,
  type Durability,
  guardAttempts,
  type SymlinkPolicy,
  type WriteData,
} from "./_atomic_write.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";
import { sweepOrphans } from "./_sweep_orphans.ts";
import { toJson } from "./_to_json.ts";
import { writeFailure } from "./_write_error.ts";
import { sweepThrottle, writeQueue } from "./_write_queue.ts";

export type { Durability, SymlinkPolicy } from "./_atomic_write.ts";

/** Options of {@linkcode writeBytes}, {@linkcode writeText} and friends. */
export interface WriteOptions extends IoOptions {
  /**
   * `"durable"`: the new content survives a crash or power loss once the
   * call returns (file and directory synced). `"atomic"`: the file is
   * synced but not its directory, so after a power loss the path may still
   * hold the old content (never a mix). `"none"`: no sync; atomic against a
   * process crash only.
   *
   * @default {"durable"}
   */
  durability?: Durability;
  /**
   * When the path is a symbolic link: `"follow"` writes the file it points
   * to and keeps the link, `"replace"` replaces the link with a regular
   * file, `"reject"` fails with code `symlink_rejected`.
   *
   * @default {"follow"}
   */
  symlinks?: SymlinkPolicy;
  /**
   * Keep the previous content as `<name>.bak`, itself replaced atomically.
   *
   * @default {false}
   */
  backup?: boolean;
  /**
   * The file's mode (e.g. `0o600`).
   *
   * @default {undefined} (the existing file's mode; for a new file the
   * usual default of 0o666 less the umask)
   */
  mode?: number;
  /**
   * Collapse a burst of writes to the same path into one: a write still
   * waiting behind a running one is dropped in favour of the newest, and
   * its caller resolves when the newest lands. Without it every write
   * runs, one after another.
   *
   * @default {false}
   */
  coalesce?: boolean;
  /**
   * A last step before the new content replaces the file (a check, or
   * taking a lock the replace must happen under): it runs once every
   * byte is in the temp file, while that file is synced, so work that
   * takes about as long as the fsync costs no time; the replace waits for
   * both. If it throws, the file is left unchanged, the temp removed, and
   * the call rejects with its error (a `SturdyError` as it is, anything
   * else as the cause of a `FileWriteError`), without retrying; the call
   * never settles before it has. An attempt that is retried for another
   * reason runs it again. It runs inside the write, so it must not wait
   * for another write to the same path from this process.
   *
   * @default {undefined} (nothing)
   */
  beforeCommit?: () => void | Promise<void>;
  /**
   * Work that must finish before the new content replaces the file but
   * needs none of it written (a check of the data, taking a lock): it
   * starts once the temp file exists, as the data is written, and runs
   * alongside the write and the sync. Otherwise as `beforeCommit`: if it
   * throws, the file is left unchanged, the temp removed and the call
   * rejects with its error without retrying; the call never settles
   * before it has; an attempt retried for another reason runs it again;
   * it must not wait for another write to the same path from this
   * process.
   *
   * @default {undefined} (nothing)
   */
  whileWriting?: () => void | Promise<void>;
  /**
   * Bytes that overwrite the start of the file once all of the data is
   * written, before it is synced: for a header only known at the end,
   * such as a length or a checksum of what follows, so the data can be
   * streamed as it is made. Called once per attempt, after the last
   * chunk; the bytes must not be more than were written (the rest is
   * kept). Needs a file system whose files can seek (Deno's can);
   * otherwise the call fails with code `invalid_data`.
   *
   * @default {undefined} (the data as given)
   */
  rewriteStart?: () => Uint8Array | Promise<Uint8Array>;
}

/** Options of {@linkcode writeJson}. */
export interface WriteJsonOptions extends WriteOptions {
  /**
   * Indentation, as for `JSON.stringify`.
   *
   * @default {2}
   */
  space?: number | string;
}

const SWEEP_MAX_AGE_MS = 3_600_000;

// A write also removes orphan temps from its directory, at most once a
// minute per directory, and never lets that change the write's outcome.
async function sweepIfDue(fs: FileSystem, dir: string, now: number) {
  if (!sweepThrottle.due(dir, now)) return;
  try {
    await sweepOrphans(fs, dir, { maxAgeMs: SWEEP_MAX_AGE_MS, now });
  } catch { /* cleaning is best effort */ }
}

async function write(
  operation: string,
  path: string,
  data: () => WriteData,
  options: WriteOptions | undefined,
  alsoFatal?: (err: unknown) => boolean,
): Promise<void> {
  checkPath("write", operation, path);
  const key = resolve(path);
  const fs = options?.fs ?? denoFileSystem;
  const now = (options?.clock ?? systemClock).now();
  // A refusal is final: remembered here, so no retry policy retries it.
  const refusals = new WeakSet<object>();
  const refusing = (step: (() => void | Promise<void>) | undefined) =>
    step &&
    (async () => {
      try {
        await step();
      } catch (err) {
        if (err !== null && typeof err === "object") refusals.add(err);
        throw err;
      }
    });
  const beforeCommit = refusing(options?.beforeCommit);
  const whileWriting = refusing(options?.whileWriting);
  const atomic = {
    operation,
    durability: options?.durability ?? "durable",
    symlinks: options?.symlinks ?? "follow",
    backup: options?.backup ?? false,
    ...(options?.mode === undefined ? {} : { mode: options.mode }),
    ...(options?.rewriteStart ? { rewriteStart: options.rewriteStart } : {}),
    ...(beforeCommit ? { beforeCommit } : {}),
    ...(whileWriting ? { whileWriting } : {}),
  };
  await writeQueue.run(key, async () => {
    await sweepIfDue(fs, dirname(key), now);
    await runIo(
      "write",
      operation,
      path,
      options,
      guardAttempts(
        (attempt) => atomicWrite(attempt, path, data(), atomic),
        (err) =>
          (err !== null && typeof err === "object" && refusals.has(err)) ||
          (alsoFatal?.(err) ?? false),
      ),
    );
  }, options?.coalesce ?? false);
}

/**
 * Replaces a file's content atomically: after a crash at any instant the
 * file holds its complete old or its complete new content, and by default
 * (`durability: "durable"`) the new content survives a power loss once the
 * call returns. Writes to the same path from this process run one at a
 * time (the last one wins). A failed fsync is never retried.
 *
 * @param path The file to write; its directory must exist.
 * @param data The new content.
 * @param options Durability, symlinks, backup, mode, coalesce, retry,
 *   timeout, signal.
 * @returns Resolves once the content is in place.
 *
 * @example Write bytes and keep a backup
 * ```ts
 * import { writeBytes } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeBytes(`${dir}/data.bin`, new Uint8Array([1, 2]));
 * await writeBytes(`${dir}/data.bin`, new Uint8Array([3]), { backup: true });
 * assert.deepEqual(await Deno.readFile(`${dir}/data.bin`), new Uint8Array([3]));
 * assert.deepEqual(await Deno.readFile(`${dir}/data.bin.bak`), new Uint8Array([1, 2]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeBytes(
  path: string,
  data: Uint8Array,
  options?: WriteOptions,
): Promise<void> {
  if (!(data instanceof Uint8Array)) {
    return Promise.reject(
      writeFailure(
        "invalid_data",
        "writeBytes",
        String(path),
        `the data is a ${typeof data}, not a Uint8Array; use writeText for strings`,
      ),
    );
  }
  return write("writeBytes", path, () => data, options);
}

/**
 * Replaces a file's content with UTF-8 text, atomically and durably (see
 * {@linkcode writeBytes}).
 *
 * @param path The file to write.
 * @param text The new content.
 * @param options As for {@linkcode writeBytes}.
 * @returns Resolves once the content is in place.
 *
 * @example Write text with a private mode
 * ```ts
 * import { writeText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeText(`${dir}/token.txt`, "secret", { mode: 0o600 });
 * assert.equal(await Deno.readTextFile(`${dir}/token.txt`), "secret");
 * assert.equal((await Deno.stat(`${dir}/token.txt`)).mode! & 0o777, 0o600);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeText(
  path: string,
  text: string,
  options?: WriteOptions,
): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  return write("writeText", path, () => bytes, options);
}

/**
 * Replaces a file's content with a value as JSON (and a final newline),
 * atomically and durably (see {@linkcode writeBytes}). A value JSON cannot
 * hold (a function, symbol, bigint, `NaN`, `Infinity`, a cycle) is refused
 * with code `invalid_data` naming where it is, and the file is untouched.
 *
 * @param path The file to write.
 * @param value The value to store.
 * @param options Indentation, and as for {@linkcode writeBytes}.
 * @returns Resolves once the content is in place.
 *
 * @example Write JSON; a cycle is refused
 * ```ts
 * import { writeJson } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeJson(`${dir}/a.json`, { step: 1 });
 * assert.equal(await Deno.readTextFile(`${dir}/a.json`), '{\n  "step": 1\n}\n');
 * const loop: Record<string, unknown> = {};
 * loop.self = loop;
 * await assert.rejects(writeJson(`${dir}/a.json`, loop), { code: "invalid_data" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeJson(
  path: string,
  value: unknown,
  options?: WriteJsonOptions,
): Promise<void> {
  let bytes: Uint8Array;
  try {
    checkPath("write", "writeJson", path);
    const text = toJson(value, options?.space ?? 2, "writeJson", path);
    bytes = new TextEncoder().encode(text + "\n");
  } catch (err) {
    return Promise.reject(err);
  }
  return write("writeJson", path, () => bytes, options);
}

/**
 * Replaces a file's content with everything a stream yields, atomically
 * and durably (see {@linkcode writeBytes}), one chunk at a time so memory
 * stays flat however big the file. A stream can be read only once, so a
 * failed attempt is retried only if it failed before the first chunk was
 * read (e.g. the temp file could not be created); after that the first
 * error is final. If the call fails, the stream is cancelled.
 *
 * @param path The file to write.
 * @param stream The new content.
 * @param options As for {@linkcode writeBytes}.
 * @returns Resolves once the content is in place.
 *
 * @example Stream a file into place
 * ```ts
 * import { writeStream } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const body = new Blob(["hello ", "world"]).stream();
 * await writeStream(`${dir}/out.txt`, body);
 * assert.equal(await Deno.readTextFile(`${dir}/out.txt`), "hello world");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeStream(
  path: string,
  stream: ReadableStream<Uint8Array>,
  options?: WriteOptions,
): Promise<void> {
  const reader = stream.getReader();
  let consumed = false;
  // Pulls only when the write asks, so "consumed" means a chunk was taken.
  const tracked = new ReadableStream<Uint8Array>({
    async pull(controller) {
      consumed = true;
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  try {
    await write("writeStream", path, () => tracked, options, () => consumed);
  } catch (err) {
    await tracked.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
}
