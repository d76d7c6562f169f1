// The state file a circuit breaker shares with other processes.
//
// Invariants:
// - After a crash the file holds the old or the new JSON document, never a
//   mix: every write goes to a fresh temp file in the same directory, is
//   synced, and is renamed over the target; the directory is synced after.
// - No update is lost between processes: every read-modify-write runs while
//   holding an exclusive kernel lock on the sidecar `<file>.lock`, which the
//   kernel releases if the holder dies. The sidecar is never deleted (deleting
//   a lock file lets two processes lock two different inodes).
// - Readers need no lock: rename replaces the file in one step.

import { SturdyError } from "./sturdy_error.ts";

const encoder = new TextEncoder();

/**
 * One JSON state file, read and updated with the invariants above. Updates
 * from one object are queued so a process keeps at most one blocking lock
 * call per store in flight.
 */
export class JsonStateFile {
  readonly path: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** The parsed document, or `undefined` when the file does not exist. */
  async read(): Promise<unknown> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw ioError(`read`, this.path, err);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw corruptStateError(this.path, "it is not valid JSON", err);
    }
  }

  /**
   * Reads the document under the lock, passes it to `fn` and writes what
   * `fn` returns (nothing is written when it returns `undefined`). An error
   * from `fn` is rethrown after the lock is released, and nothing is written.
   */
  update(fn: (current: unknown) => unknown): Promise<void> {
    const run = this.#queue.then(() => this.#update(fn));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #update(fn: (current: unknown) => unknown): Promise<void> {
    const lockPath = this.path + ".lock";
    let lock: Deno.FsFile;
    try {
      lock = await Deno.open(lockPath, {
        read: true,
        write: true,
        create: true,
      });
    } catch (err) {
      throw ioError("open the lock file", lockPath, err);
    }
    try {
      await lock.lock(true);
      const next = fn(await this.read());
      if (next !== undefined) {
        await writeAtomic(this.path, JSON.stringify(next, null, 2) + "\n");
      }
    } finally {
      // Closing the handle releases the lock.
      lock.close();
    }
  }
}

/** Builds the error for a state file or snapshot that cannot be used. */
export function corruptStateError(
  path: string | undefined,
  why: string,
  cause?: unknown,
): SturdyError {
  const message = path === undefined
    ? `Cannot restore the circuit breaker snapshot: ${why}; pass a value returned by toJSON()`
    : `Cannot use circuit breaker state file ${
      JSON.stringify(path)
    }: ${why}; delete the file to reset the breaker`;
  return new SturdyError(message, {
    code: "corrupt_state",
    operation: "restore",
    ...(path === undefined ? {} : { path }),
    ...(cause === undefined ? {} : { cause }),
  });
}

function ioError(action: string, path: string, cause: unknown): SturdyError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new SturdyError(
    `Cannot ${action} circuit breaker state ${
      JSON.stringify(path)
    }: ${why}; check the path and its permissions`,
    { code: "state_io", path, operation: "write", cause },
  );
}

function split(path: string): [dir: string, base: string] {
  let i = path.lastIndexOf("/");
  if (Deno.build.os === "windows") i = Math.max(i, path.lastIndexOf("\\"));
  if (i < 0) return [".", path];
  return [i === 0 ? path.slice(0, 1) : path.slice(0, i), path.slice(i + 1)];
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const [dir, base] = split(path);
  const bytes = encoder.encode(text);
  let mode: number | undefined;
  try {
    mode = (await Deno.stat(path)).mode ?? undefined;
  } catch {
    // A new file gets the default mode.
  }
  const temp = `${dir}/.${base}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(temp, {
      write: true,
      createNew: true,
      ...(mode === undefined ? {} : { mode: mode & 0o777 }),
    });
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    await file.syncData();
    file.close();
    file = undefined;
    await Deno.rename(temp, path);
  } catch (err) {
    file?.close();
    await Deno.remove(temp).catch(() => {});
    throw ioError("write", path, err);
  }
  // Make the rename itself durable. Windows cannot open a directory.
  if (Deno.build.os !== "windows") {
    try {
      using handle = await Deno.open(dir, { read: true });
      await handle.sync();
    } catch (err) {
      throw ioError("sync the directory of", path, err);
    }
  }
}
