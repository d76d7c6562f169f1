// Moving bytes between memory, streams and open files, whole or not at all.

import type { FileHandle } from "./file_system.ts";
import { writeFailure } from "./_write_error.ts";

const CHUNK = 1 << 16;

/** Where a write goes, for error messages. */
export interface WriteSite {
  /** The public call. */
  operation: string;
  /** The path the caller asked for. */
  path: string;
}

/**
 * Writes every byte of `bytes`, looping on short writes; a write that
 * makes no progress is an error (the file system refuses the data).
 */
export async function writeAll(
  handle: FileHandle,
  bytes: Uint8Array,
  site: WriteSite,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const n = await handle.write(bytes.subarray(offset));
    if (n <= 0) {
      throw writeFailure(
        "short_write",
        site.operation,
        site.path,
        `the file system accepted only ${offset} of ${bytes.length} bytes; the target was left unchanged (check free space and quotas)`,
      );
    }
    offset += n;
  }
}

/**
 * Writes a whole stream, one chunk at a time so memory stays flat, and
 * returns how many bytes it held. On failure the stream is cancelled.
 */
export async function copyStream(
  handle: FileHandle,
  stream: ReadableStream<Uint8Array>,
  site: WriteSite,
  signal?: AbortSignal,
): Promise<number> {
  const reader = stream.getReader();
  let total = 0;
  try {
    while (true) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) return total;
      if (!(value instanceof Uint8Array)) {
        throw writeFailure(
          "invalid_data",
          site.operation,
          site.path,
          `the stream yielded a ${typeof value} instead of a Uint8Array; pipe text through a TextEncoderStream first`,
        );
      }
      await writeAll(handle, value, site);
      total += value.length;
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
}

/** A stream of an open file's content; the file is closed at its end. */
export function fileStream(handle: FileHandle): ReadableStream<Uint8Array> {
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      handle.close();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buf = new Uint8Array(CHUNK);
        const n = await handle.read(buf);
        if (n === null) {
          close();
          controller.close();
        } else controller.enqueue(buf.subarray(0, n));
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}
