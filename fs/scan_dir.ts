// Walks a directory tree with a bounded number of directory reads in
// flight, yielding in a deterministic order.
//
// Order: the entries of one directory come together, sorted by name
// (unless `sort: false`); then each of its subdirectories is walked the
// same way, in name order, depth first. Reads of the next directories in
// that order are started ahead (up to `concurrency`) while the consumer
// handles the current ones, so the order costs nothing but the sort.
//
// Invariant for cleanup: when the walk ends (finished, broken off, failed
// or aborted) it waits for its own reads still in flight, except one that
// timed out, so no runtime operation outlives the iterator.

import { SturdyError } from "../retry/mod.ts";
import { DirectoryOperationError, IoTimeoutError } from "./errors.ts";
import { denoFileSystem } from "./file_system.ts";
import type { IoOptions } from "./io_options.ts";
import type { ListEntry } from "./list_dir.ts";
import { checkPath } from "./_check_path.ts";
import { byName, dirPrefix, readDirEntries, SEP } from "./_read_dir.ts";
import { runIo } from "./_run_io.ts";
import { compileScanFilter, type ScanFilter } from "./_scan_filter.ts";
import { identity, isLoop, loopError } from "./_scan_loop.ts";

/** One entry found by {@linkcode scanDir}. */
export interface ScanEntry extends ListEntry {
  /** The path below the root, `/`-separated on every system: `src/a.ts`. */
  relativePath: string;
  /** 1 for the root's own entries, 2 for theirs, and so on. */
  depth: number;
}

/** A directory {@linkcode scanDir} could not walk and went past. */
export interface ScanSkip {
  /** The directory's path (root joined with `relativePath`). */
  path: string;
  /** Its path below the root. */
  relativePath: string;
  /**
   * Why: code `symlink_loop` (a followed link leads back to a directory
   * being walked), `not_found` (it vanished mid-walk), `permission_denied`,
   * `missing_permission`, `io_timeout`, …
   */
  error: DirectoryOperationError | IoTimeoutError;
}

/** Options of {@linkcode scanDir}. */
export interface ScanDirOptions extends IoOptions {
  /**
   * Glob patterns an entry's relative path must match to be yielded
   * (`**\/*.ts`, `*.{ts,tsx}`, `src/**`, `?`, `[abc]`, `[[:digit:]]`); a
   * pattern starting with `!` excludes, exactly like `exclude`. Directories
   * nothing could match below are not read.
   *
   * @default {undefined} (everything)
   */
  include?: readonly string[];
  /**
   * Glob patterns of entries to leave out; a matching directory is pruned
   * and never read (`node_modules/**` prunes `node_modules`; use
   * `**\/node_modules/**` for every depth).
   *
   * @default {[]}
   */
  exclude?: readonly string[];
  /**
   * How deep to go: 1 yields the root's own entries only.
   *
   * @default {Infinity}
   */
  maxDepth?: number;
  /**
   * Follow symbolic links to directories (and report links as the kind
   * they point to, keeping `isSymlink`). A link that leads back to a
   * directory on the current path is a loop: skipped and reported.
   *
   * @default {false}
   */
  followSymlinks?: boolean;
  /**
   * Yield directories as well as files and links.
   *
   * @default {true}
   */
  includeDirs?: boolean;
  /**
   * Sort each directory's entries by name; `false` keeps the operating
   * system's order (still grouped per directory) and saves the sort.
   *
   * @default {true}
   */
  sort?: boolean;
  /**
   * Directory reads in flight at once.
   *
   * @default {8}
   */
  concurrency?: number;
  /**
   * Throw instead of skipping a directory below the root that cannot be
   * read (vanished, refused, timed out) or is a symlink loop.
   *
   * @default {false}
   */
  strict?: boolean;
  /** Called for each directory skipped when `strict` is off. */
  onSkip?: (skip: ScanSkip) => void;
}

interface DirNode {
  path: string;
  prefix: string;
  rel: string;
  depth: number;
  parent: DirNode | undefined;
  /** The directory's identity (dev:ino or real path) once known. */
  id: string | undefined;
  listing: Promise<Deno.DirEntry[]> | undefined;
  /** The raw reads of this directory, to wait for at the end. */
  reads: Set<Promise<unknown>>;
}

/**
 * Walks `root` recursively and yields its entries as an async iterable,
 * filtered by glob patterns. Excluded directories are pruned unread;
 * directory reads run concurrently (bounded) but the order is fixed: each
 * directory's entries together, sorted by name, then its subdirectories
 * depth first. `timeout` and `retry` apply to each directory read, not to
 * the whole walk, which goes at the consumer's pace. A directory below the
 * root that cannot be read is skipped and passed to `onSkip` (or thrown
 * with `strict`); a root that cannot be read always throws.
 *
 * @param root The directory to walk. Entry paths start with it as given.
 * @param options Patterns, depth, symlinks, concurrency, retry, timeout,
 *   signal, file system.
 * @returns The entries, lazily.
 * @throws {DirectoryOperationError} Code `invalid_path`, `invalid_glob` or
 *   `invalid_argument` at once; `not_found`, `not_a_directory`,
 *   `missing_permission`… for the root while iterating.
 *
 * @example Find TypeScript files outside node_modules
 * ```ts
 * import { scanDir } from "@sturdy/sturdy/fs";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/src/lib`, { recursive: true });
 * await Deno.mkdir(`${dir}/node_modules/x`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/src/lib/a.ts`, "");
 * await Deno.writeTextFile(`${dir}/src/b.js`, "");
 * await Deno.writeTextFile(`${dir}/node_modules/x/c.ts`, "");
 * const found: string[] = [];
 * for await (const entry of scanDir(dir, {
 *   include: ["**\/*.ts", "!node_modules/**"],
 * })) {
 *   found.push(entry.relativePath);
 * }
 * assert.deepEqual(found, ["src/lib/a.ts"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function scanDir(
  root: string,
  options: ScanDirOptions = {},
): AsyncIterableIterator<ScanEntry> {
  checkPath("directory", "scanDir", root);
  const filter = compileScanFilter(root, options.include, options.exclude);
  const maxDepth = options.maxDepth ?? Infinity;
  const concurrency = options.concurrency ?? 8;
  if (!(maxDepth >= 0)) {
    throw badOption(root, `maxDepth must be 0 or more, got ${maxDepth}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw badOption(
      root,
      `concurrency must be a whole number of 1 or more, got ${concurrency}`,
    );
  }
  return walk(root, options, filter, maxDepth, concurrency);
}

function badOption(root: string, why: string): DirectoryOperationError {
  return new DirectoryOperationError(
    `Cannot scan "${root}": ${why}; pass a valid value`,
    { code: "invalid_argument", path: root, operation: "scanDir" },
  );
}

async function* walk(
  root: string,
  options: ScanDirOptions,
  filter: ScanFilter,
  maxDepth: number,
  concurrency: number,
): AsyncGenerator<ScanEntry, void, undefined> {
  const fs = options.fs ?? denoFileSystem;
  const signal = options.signal;
  const strict = options.strict ?? false;
  const follow = options.followSymlinks ?? false;
  const includeDirs = options.includeDirs ?? true;
  const sort = options.sort ?? true;
  const { excluded, included } = filter;
  // Failures below the root are not failures of the call unless strict,
  // so only the root's (or a strict walk's) reach the reporter.
  const { reporter: _reporter, ...quiet } = options;
  const inFlight = new Set<Promise<unknown>>();
  let reading = 0;
  const stack: DirNode[] = [];

  const start = (node: DirNode): void => {
    reading++;
    const io = node.depth === 0 || strict ? options : quiet;
    node.listing = runIo("directory", "scanDir", node.path, io, (attempt) => {
      const read = readDirEntries(
        attempt.fs,
        node.path,
        "scanDir",
        attempt.attempt,
      );
      node.reads.add(read);
      inFlight.add(read);
      read.then(() => inFlight.delete(read), () => inFlight.delete(read));
      return read;
    });
    node.listing.then(onSettled, (err) => {
      // A hung read is abandoned: the walk must not wait for it.
      if (err instanceof IoTimeoutError) {
        for (const read of node.reads) inFlight.delete(read);
      }
      onSettled();
    });
  };
  const onSettled = (): void => {
    reading--;
    prefetch();
  };
  // Starts reads of the directories the walk will reach next.
  const prefetch = (): void => {
    const stop = Math.max(0, stack.length - 4 * concurrency);
    for (let i = stack.length - 1; i >= stop && reading < concurrency; i--) {
      if (!stack[i]!.listing) start(stack[i]!);
    }
  };
  const skip = (node: DirNode, error: SturdyError): void => {
    if (strict) throw error;
    // runIo types every failure of a directory read as one of the two.
    options.onSkip?.({
      path: node.path,
      relativePath: node.rel,
      error: error as DirectoryOperationError | IoTimeoutError,
    });
  };

  const rootNode = newNode(root, dirPrefix(root), "", 0, undefined);
  stack.push(rootNode);
  try {
    while (stack.length > 0) {
      signal?.throwIfAborted();
      const node = stack.pop()!;
      if (!node.listing) start(node);
      let entries: Deno.DirEntry[];
      try {
        entries = await node.listing!;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (node === rootNode || !(err instanceof SturdyError)) throw err;
        skip(node, err);
        continue;
      }
      const depth = node.depth + 1;
      if (depth > maxDepth) continue; // maxDepth 0: the root is only checked
      if (sort) entries.sort(byName);
      const found: ScanEntry[] = [];
      const subdirs: DirNode[] = [];
      for (const entry of entries) {
        const name = entry.name;
        const rel = node.rel === "" ? name : `${node.rel}/${name}`;
        const path = node.prefix + name;
        let isFile = entry.isFile;
        let isDirectory = entry.isDirectory;
        let linkId: string | undefined;
        if (entry.isSymlink && follow) {
          const info = await fs.stat(path).catch(() => undefined);
          // A broken link stays a plain link.
          if (info) {
            isFile = info.isFile;
            isDirectory = info.isDirectory;
            if (isDirectory) linkId = await identity(fs, path, info);
          }
        }
        if (excluded?.match(rel, isDirectory)) continue;
        if (
          isDirectory && depth < maxDepth &&
          (filter.anyDirMayMatch || included!.couldMatchBelow(rel.split("/")))
        ) {
          const child = newNode(path, path + SEP, rel, depth, node);
          if (linkId === undefined) subdirs.push(child);
          else if (await isLoop(fs, node, linkId)) {
            skip(child, loopError(path, rel));
          } else {
            child.id = linkId;
            subdirs.push(child);
          }
        }
        if (
          (includeDirs || !isDirectory) &&
          (included === undefined || included.match(rel, isDirectory))
        ) {
          found.push({
            name,
            path,
            relativePath: rel,
            depth,
            isFile,
            isDirectory,
            isSymlink: entry.isSymlink,
          });
        }
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
      prefetch();
      for (const entry of found) {
        if (signal?.aborted) throw signal.reason;
        yield entry;
      }
    }
  } finally {
    stack.length = 0; // nothing more to prefetch
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }
}

function newNode(
  path: string,
  prefix: string,
  rel: string,
  depth: number,
  parent: DirNode | undefined,
): DirNode {
  return {
    path,
    prefix,
    rel,
    depth,
    parent,
    id: undefined,
    listing: undefined,
    reads: new Set(),
  };
}
