import { FileReadError } from "./errors.ts";
import type { IoOptions } from "./io_options.ts";
import { checkPath } from "./_check_path.ts";
import { runIo } from "./_run_io.ts";

/** Reads a whole file of at most `maxBytes` as the call `operation`. */
export function readWithin(
  operation: string,
  path: string,
  maxBytes: number,
  options: IoOptions | undefined,
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
    const bytes = await fs.readFile(path, { signal });
    if (bytes.length > maxBytes) throw tooLarge(bytes.length); // it grew
    return bytes;
  });
}
