// Crash harness for transactions: a child process runs versioned,
// checksummed transactions over 4 files in two directories (plus a marker
// file created and removed by alternate versions) and is SIGKILLed
//   - just before every file system call of the protocol, in turn (the
//     calls are listed by a dry run in this process),
//   - just before every call of a recovery that itself runs after a kill,
//   - at random times.
// After each kill this process runs recoverTransactions and checks that
// every target holds the same complete version (all old or all new) and
// that no temp, backup, journal or ref is left.
// STURDY_TORTURE=1 adds more versions and many more random kills.

import { join } from "node:path";
import assert from "node:assert/strict";
import { recoverTransactions } from "../../fs/recover_transactions.ts";
import {
  checkVersion,
  forkingFs,
  type KillAt,
  killingFs,
  runWorkload,
  targets,
} from "./_transaction_child.ts";

const CHILD = new URL("./_transaction_child.ts", import.meta.url).pathname;
const TORTURE = Deno.env.get("STURDY_TORTURE") === "1";
const VERSIONS = TORTURE ? 3 : 2;
const RANDOM_KILLS = TORTURE ? 400 : 40;
const POOL = 4;

/** Turns a recorded call list into one kill point per call. */
function killPoints(calls: string[]): KillAt[] {
  const seen = new Map<string, number>();
  return calls.map((call) => {
    const op = call.split(" ")[0]!;
    const nth = (seen.get(op) ?? 0) + 1;
    seen.set(op, nth);
    return { op, nth };
  });
}

async function runChild(
  args: string[],
  killAfterMs?: number,
  startWhen?: string,
): Promise<{ killed: boolean; stderr: string; code: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Under load a child may take long to start; count the delay from its
  // first commit (startWhen exists) so most kills land mid-workload.
  if (startWhen !== undefined) {
    for (let waited = 0; waited < 30_000; waited += 5) {
      if (await Deno.stat(startWhen).then(() => true, () => false)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }, killAfterMs);
  const out = await child.output();
  clearTimeout(timer);
  return {
    killed: out.signal === "SIGKILL",
    stderr: new TextDecoder().decode(out.stderr),
    code: out.code,
  };
}

/** Every leftover the protocol may never leave after recovery. */
async function leftovers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (entry.name === ".sturdy-tx") {
        for await (const e of Deno.readDir(path)) {
          found.push(join(path, e.name));
        }
      } else found.push(...await leftovers(path));
    } else if (/\.sturdy-(tmp|bak)$/.test(entry.name)) found.push(path);
  }
  return found;
}

async function recoverAndCheck(
  dir: string,
  versions?: number[],
): Promise<number> {
  // As under load, a child spawned by this process (the pool runs several)
  // may hold a copy of every descriptor a recovery closes: a lock a probe
  // took must not outlive the probe (it made one backup look live once).
  const fs = forkingFs();
  for (const d of ["a", "b"]) {
    // The children ran without --allow-all, so /proc told nothing about
    // them: their kernel locks alone prove them dead (maxAge is default).
    await recoverTransactions(join(dir, d), { fs }).catch((err) => {
      if (!(err?.cause instanceof Deno.errors.NotFound)) throw err;
    }).finally(() => fs.flush());
  }
  const version = await checkVersion(dir);
  if (versions) {
    assert.ok(versions.includes(version), `unexpected version ${version}`);
  }
  assert.deepEqual(await leftovers(dir), []);
  return version;
}

/** Runs `jobs` with at most POOL at a time. */
async function inPool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: POOL }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  }));
  return results;
}

/** The calls the workload makes, from a dry run in this process. */
async function dryRunCalls(): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-tx-dry-" });
  try {
    const fs = killingFs([]);
    await runWorkload(fs, dir, 0, VERSIONS);
    return fs.calls;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the workload in a child killed at `kill`; returns the dir. */
async function crashAt(
  kill: KillAt,
): Promise<{ dir: string; killed: boolean }> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-tx-crash-" });
  const out = await runChild([
    dir,
    "run",
    "0",
    String(VERSIONS),
    JSON.stringify([kill]),
  ]);
  assert.ok(out.killed || out.code === 0, `child failed: ${out.stderr}`);
  return { dir, killed: out.killed };
}

const versions = Array.from({ length: VERSIONS + 1 }, (_, i) => i);

Deno.test("a transaction killed before any step of its commit recovers all-old or all-new", async () => {
  const points = killPoints(await dryRunCalls());
  assert.ok(points.length > 100, `only ${points.length} calls`);
  const results = await inPool(points.map((kill) => async () => {
    const { dir, killed } = await crashAt(kill);
    try {
      const version = await recoverAndCheck(dir, versions);
      return { killed, version };
    } catch (err) {
      throw new Error(`after a kill at ${kill.op} #${kill.nth}: ${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));
  const kills = results.filter((r) => r.killed).length;
  assert.ok(
    kills >= points.length * 0.9,
    `only ${kills} of ${points.length} kills hit`,
  );
  // Both outcomes occur: kills before the commit point roll back, kills
  // after it keep the new version.
  assert.ok(new Set(results.map((r) => r.version)).size >= 3);
});

Deno.test("a recovery killed at any step is finished by the next recovery", async () => {
  // Crash mid-switch of the last transaction, mid-switch of the first,
  // and just before the commit point.
  const calls = await dryRunCalls();
  const points = killPoints(calls);
  const renames = points.filter((p, i) =>
    p.op === "rename" && !calls[i]!.includes(".sturdy-tx")
  );
  const removes = points.filter((p, i) =>
    p.op === "remove" && calls[i]!.endsWith(".json") &&
    calls[i]!.includes(".sturdy-tx")
  );
  const scenarios = [renames[1]!, renames.at(-2)!, removes.at(-1)!];
  let kills = 0;
  for (const scenario of scenarios) {
    const { dir } = await crashAt(scenario);
    try {
      // List the recovery's calls on a copy (cp -a keeps the hard links).
      const copy = `${dir}-copy`;
      await new Deno.Command("cp", { args: ["-a", dir, copy] }).output();
      const fs = killingFs([]);
      for (const d of ["a", "b"]) {
        await recoverTransactions(join(copy, d), { fs });
      }
      await Deno.remove(copy, { recursive: true });
      const recoveryPoints = killPoints(fs.calls);
      assert.ok(recoveryPoints.length > 5);
      const results = await inPool(recoveryPoints.map((kill, i) => async () => {
        const state = `${dir}-r${i}`;
        await new Deno.Command("cp", { args: ["-a", dir, state] }).output();
        try {
          const out = await runChild([
            state,
            "recover",
            JSON.stringify([kill]),
          ]);
          assert.ok(out.killed || out.code === 0, out.stderr);
          await recoverAndCheck(state, versions);
          return out.killed;
        } catch (err) {
          throw new Error(`recovery killed at ${kill.op} #${kill.nth}: ${err}`);
        } finally {
          await Deno.remove(state, { recursive: true });
        }
      }));
      kills += results.filter(Boolean).length;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  assert.ok(kills >= 20, `only ${kills} recovery kills`);
});

Deno.test("transactions killed at random times recover all-old or all-new", async () => {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const delays = Array.from(
    { length: RANDOM_KILLS },
    () => random() * 400,
  );
  const results = await inPool(delays.map((delay) => async () => {
    const dir = await Deno.makeTempDir({ prefix: "sturdy-tx-random-" });
    try {
      const out = await runChild(
        [dir, "run", "0", "1000000", "[]"],
        delay,
        targets(dir)[0],
      );
      assert.ok(out.killed, `child was not killed: ${out.stderr}`);
      return await recoverAndCheck(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));
  // Most kills land after the child has committed something.
  assert.ok(results.filter((v) => v > 0).length >= RANDOM_KILLS / 2);
});
