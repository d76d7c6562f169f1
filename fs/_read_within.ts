import { FileReadError } from "./errors.ts";
import type { IoOptions } from "./io_options.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";
import type { FileSystem } from "./file_system.ts";

/**
 * Reads a whole file of at most `maxBytes` as the call `operation`, into
 * `into` when it fits there with a byte to spare.
 */
export function readWithin(
  operation: string,
  path: string,
  maxBytes: number,
  options: IoOptions | undefined,
  into?: Uint8Array,
): Promise<Uint8Array> {
  checkPath("read", operation, path);
  return runIo("read", operation, path, options, async ({ fs, signal }) => {
    const info = await fs.stat(path);
    if (info.isDirectory) {
      throw new FileReadError(
        `Cannot read "${path}": it is a directory, not a file; pass the path of a file inside it`,
        { code: "is_a_directory", path, operation },
      );
    }
    const tooLarge = (size: number) =>
      new FileReadError(
        `Cannot read "${path}": it holds ${size} bytes, more than maxBytes (${maxBytes}); raise maxBytes if that is expected`,
        { code: "too_large", path, operation },
      );
    if (info.size > maxBytes) throw tooLarge(info.size);
    if (into && info.size < into.byteLength) {
      const n = await readInto(fs, path, into, maxBytes);
      if (n !== undefined) {
        if (n > maxBytes) throw tooLarge(n); // it grew
        return into.subarray(0, n);
      }
      // It grew past the buffer: read it as usual.
    }
    const bytes = await fs.readFile(path, { signal });
    if (bytes.length > maxBytes) throw tooLarge(bytes.length); // it grew
    return bytes;
  });
}

/**
 * Reads the file at `path` into `buffer`; its length, or `undefined` when
 * it does not fit (it grew since it was sized). The read that finds the
 * end asks for a few bytes only, so the default file system makes it
 * synchronously instead of as one more thread-pool round trip.
 */
async function readInto(
  fs: FileSystem,
  path: string,
  buffer: Uint8Array,
  maxBytes: number,
): Promise<number | undefined> {
  const file = await fs.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    // One byte past maxBytes is enough to know the file is too large.
    const cap = Math.min(buffer.byteLength, maxBytes + 1);
    let filled = 0;
    for (;;) {
      if (filled >= cap) return filled > maxBytes ? filled : undefined;
      // Up to the size fstat gave, then a small probe for the end.
      const end = Math.min(cap, filled < size ? size : filled + 8);
      const n = await file.read(buffer.subarray(filled, end));
      if (n === null || n === 0) return filled;
      filled += n;
    }
  } finally {
    file.close();
  }
}
