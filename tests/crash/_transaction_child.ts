// The workload of transaction_crash_test.ts, run in a child process that
// the test kills: each transaction writes version N to every target (in two
// directories, each file checksummed) and creates or removes a marker file
// (present with version N for odd N, absent for even N).
//
// Usage: deno run --allow-read --allow-write _transaction_child.ts \
//   <dir> run <from> <to> <faults-json>
//   <dir> recover <faults-json>
// where faults-json is `[{ "op": "rename", "nth": 3 }, …]`: SIGKILL this
// process just before that call.

import { dirname, join } from "node:path";
import {
  denoFileSystem,
  type FileHandle,
  type FileSystem,
} from "../../fs/file_system.ts";
import { recoverTransactions } from "../../fs/recover_transactions.ts";
import { transaction } from "../../fs/transaction.ts";
import { faultFs } from "../_helpers/fault_fs.ts";
import { sha256 } from "../_helpers/sha256.ts";

/** How many versioned targets a workload writes. */
export const TARGETS = 4;

/** A kill point: the nth call of op. */
export interface KillAt {
  op: string;
  nth: number;
}

/** The targets under `dir`: alternating between two directories. */
export function targets(dir: string): string[] {
  return Array.from(
    { length: TARGETS },
    (_, i) => join(dir, i % 2 === 0 ? "a" : "b", `file-${i}.json`),
  );
}

/** The marker file, removed and re-created by alternate versions. */
export function marker(dir: string): string {
  return join(dir, "a", "marker.txt");
}

/** The content of target `i` at `version`; sizes vary so a torn file shows. */
export async function payload(version: number, i: number): Promise<string> {
  const body = `${version}:${i}:` +
    "x".repeat(100 + ((version * 7 + i * 13) % 5000));
  return JSON.stringify({ version, file: i, body, sha256: await sha256(body) });
}

/**
 * The version every target holds, or an error describing the mix or the
 * torn file. Version 0 means nothing was ever committed.
 */
export async function checkVersion(dir: string): Promise<number> {
  const versions: number[] = [];
  for (const [i, path] of targets(dir).entries()) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        versions.push(0);
        continue;
      }
      throw err;
    }
    const value = JSON.parse(text);
    if (value.file !== i || value.sha256 !== await sha256(value.body)) {
      throw new Error(`${path} is torn or foreign: ${text.slice(0, 80)}`);
    }
    versions.push(value.version);
  }
  if (new Set(versions).size !== 1) {
    throw new Error(`targets hold a mix of versions: ${versions.join(", ")}`);
  }
  const version = versions[0]!;
  let mark: string | undefined;
  try {
    mark = await Deno.readTextFile(marker(dir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const expected = version % 2 === 1 ? String(version) : undefined;
  if (mark !== expected) {
    throw new Error(`marker is ${mark} at version ${version}`);
  }
  return version;
}

/** Runs the transactions for versions `from + 1` to `to`. */
export async function runWorkload(
  fs: FileSystem,
  dir: string,
  from: number,
  to: number,
): Promise<void> {
  for (const d of new Set(targets(dir).map((t) => dirname(t)))) {
    await Deno.mkdir(d, { recursive: true });
  }
  for (let version = from + 1; version <= to; version++) {
    const texts = await Promise.all(
      targets(dir).map((_, i) => payload(version, i)),
    );
    await transaction(async (tx) => {
      for (const [i, path] of targets(dir).entries()) {
        await tx.writeText(path, texts[i]!);
      }
      if (version % 2 === 1) await tx.writeText(marker(dir), String(version));
      else await tx.remove(marker(dir));
    }, { fs });
  }
}

/** A faultFs over the real file system that SIGKILLs at `kills`. */
export function killingFs(kills: KillAt[]): FileSystem & { calls: string[] } {
  return faultFs(denoFileSystem, kills.map((k) => ({ ...k, kill: true })));
}

/**
 * The real file system as seen by a process that spawns children all the
 * time: every file it closes stays open a while longer (until `flush`), as
 * a child spawned meanwhile holds a copy of each descriptor until it
 * execs. A kernel lock taken on such a file stays taken unless released
 * explicitly (unlock), as it would be in that window.
 */
export function forkingFs(): FileSystem & { flush(): void } {
  const pending: Deno.FsFile[] = [];
  return {
    ...denoFileSystem,
    async open(path, options): Promise<FileHandle> {
      const file = await Deno.open(path, options);
      return {
        write: (p) => file.write(p),
        read: (p) => file.read(p),
        syncData: () => file.syncData(),
        sync: () => file.sync(),
        stat: () => file.stat(),
        lock: (exclusive) => file.lock(exclusive),
        tryLock: (exclusive) => file.tryLock(exclusive),
        unlock: () => file.unlock(),
        close: () => void pending.push(file),
      };
    },
    flush() {
      for (const file of pending.splice(0)) file.close();
    },
  };
}

if (import.meta.main) {
  const [dir, mode, ...rest] = Deno.args;
  if (dir === undefined || (mode !== "run" && mode !== "recover")) {
    throw new Error("Usage: _transaction_child.ts <dir> run|recover …");
  }
  if (mode === "run") {
    const fs = killingFs(JSON.parse(rest[2] ?? "[]"));
    await runWorkload(fs, dir, Number(rest[0]), Number(rest[1]));
  } else {
    const fs = killingFs(JSON.parse(rest[0] ?? "[]"));
    for (const d of ["a", "b"]) {
      await recoverTransactions(join(dir, d), { fs });
    }
  }
}
