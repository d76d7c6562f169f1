import type { IoOptions } from "./io_options.ts";
import { FileReadError } from "./errors.ts";
import { decodeUtf8, parseJson } from "./_decode.ts";
import { readWithin } from "./_read_within.ts";

/** Options of {@linkcode readBytes} and {@linkcode readText}. */
export interface ReadOptions extends IoOptions {
  /**
   * The largest file to read, in bytes; a bigger one fails with code
   * `too_large` before it is loaded.
   *
   * @default {Infinity}
   */
  maxBytes?: number;
}

/** Options of {@linkcode readBytes}. */
export interface ReadBytesOptions extends ReadOptions {
  /**
   * Read into this buffer instead of a new one, when the file fits in it
   * with a byte to spare, and return a view of it; a bigger file is read
   * into a new buffer as usual. For a file read again and again (a
   * checkpoint restored in a loop): a fresh buffer of a few MiB costs more
   * in allocation and page faults than the read itself. The view is only
   * valid until the buffer is reused.
   *
   * @default {undefined} (a new buffer per call)
   */
  into?: Uint8Array;
}

/** Options of {@linkcode readJson}. */
export interface ReadJsonOptions extends ReadOptions {
  /**
   * Checks the parsed value: return `false` or throw to reject it (code
   * `invalid_data`). A type guard `(value) => value is T` fits.
   *
   * @default {undefined} (no check)
   */
  validate?: (value: unknown) => boolean | void;
  /**
   * The largest file to read, in bytes.
   *
   * @default {268_435_456} (256 MiB)
   */
  maxBytes?: number;
}

/**
 * Reads a whole file as bytes, retrying transient failures (EBUSY, EIO,
 * EMFILE…) under the `fileIo` preset.
 *
 * @param path The file to read.
 * @param options Size limit, a buffer to read into, retry, timeout,
 *   signal.
 * @returns The file's bytes (a view of `into` when it was used).
 *
 * @example Read bytes
 * ```ts
 * import { readBytes } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.bin`, new Uint8Array([7, 8]));
 * assert.deepEqual(await readBytes(`${dir}/a.bin`), new Uint8Array([7, 8]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example Read into a buffer kept between calls
 * ```ts
 * import { readBytes } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.bin`, new Uint8Array([7, 8]));
 * const buffer = new Uint8Array(1024);
 * const bytes = await readBytes(`${dir}/a.bin`, { into: buffer });
 * assert.equal(bytes.buffer, buffer.buffer); // no new buffer
 * assert.deepEqual(bytes, new Uint8Array([7, 8]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readBytes(
  path: string,
  options?: ReadBytesOptions,
): Promise<Uint8Array> {
  return readWithin(
    "readBytes",
    path,
    options?.maxBytes ?? Infinity,
    options,
    options?.into,
  );
}

/**
 * Reads a whole file as UTF-8 text. A byte order mark is dropped; bytes
 * that are not valid UTF-8 fail with code `invalid_data` naming the first
 * bad byte's offset, instead of turning into U+FFFD silently.
 *
 * @param path The file to read.
 * @param options Size limit, retry, timeout, signal.
 * @returns The text.
 *
 * @example Read text
 * ```ts
 * import { readText } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.txt`, new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]));
 * assert.equal(await readText(`${dir}/a.txt`), "hi"); // BOM dropped
 * await Deno.writeFile(`${dir}/b.txt`, new Uint8Array([0x68, 0xff]));
 * await assert.rejects(readText(`${dir}/b.txt`), { code: "invalid_data" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readText(
  path: string,
  options?: ReadOptions,
): Promise<string> {
  const bytes = await readWithin(
    "readText",
    path,
    options?.maxBytes ?? Infinity,
    options,
  );
  return decodeUtf8(bytes, "readText", path);
}

/**
 * Reads and parses a JSON file (a byte order mark is dropped). Bad JSON
 * fails with code `invalid_json` naming the line and column; a value the
 * validator rejects fails with code `invalid_data`; a file over `maxBytes`
 * fails with code `too_large` without being loaded.
 *
 * @typeParam T The type the validator proves.
 * @param path The file to read.
 * @param options Validator, size limit, retry, timeout, signal.
 * @returns The parsed value.
 *
 * @example Read and validate JSON
 * ```ts
 * import { readJson } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, '{"step": 2}');
 * const isState = (v: unknown): v is { step: number } =>
 *   typeof (v as { step?: unknown }).step === "number";
 * const state = await readJson<{ step: number }>(`${dir}/a.json`, { validate: isState });
 * assert.equal(state.step, 2);
 * await Deno.writeTextFile(`${dir}/bad.json`, '{\n  "step": 2,\n}');
 * await assert.rejects(readJson(`${dir}/bad.json`), {
 *   code: "invalid_json",
 *   message: /line 3, column 1/,
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJson<T = unknown>(
  path: string,
  options?: ReadJsonOptions,
): Promise<T> {
  const bytes = await readWithin(
    "readJson",
    path,
    options?.maxBytes ?? 268_435_456,
    options,
  );
  const value = parseJson(
    decodeUtf8(bytes, "readJson", path),
    "readJson",
    path,
  );
  if (options?.validate) {
    let verdict: boolean | void;
    try {
      verdict = options.validate(value);
    } catch (err) {
      throw new FileReadError(
        `Cannot read "${path}": its content failed validation: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { code: "invalid_data", path, operation: "readJson", cause: err },
      );
    }
    if (verdict === false) {
      throw new FileReadError(
        `Cannot read "${path}": its content failed validation; check the file against the expected shape`,
        { code: "invalid_data", path, operation: "readJson" },
      );
    }
  }
  return value as T;
}
