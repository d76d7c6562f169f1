// Contended locking across processes: Sturdy's lock (dir and flock kinds)
// against proper-lockfile, and what each does when a holder is paused past
// its lease. deno bench runs in one process, so this is a script:
//
//   deno run -A bench/lock_contention.ts [--increments 200] [--procs 2,4,8]
//
// Throughput: P processes each do N increments of one counter file (read,
// add one, write) under the lock; ops/s over the span from the first
// acquisition to the last release. Lost updates = P*N - final value; an
// overlap is two processes' hold intervals intersecting.
//
// Paused holder: a holder reads the counter under the lock, is stopped
// (SIGSTOP) past the lease, a second process takes the lock over and
// increments, then the first continues and writes what it computed before
// the pause. proper-lockfile has no fence, so that write lands and one
// increment is lost; Sturdy's holder looks remote (another host identity,
// so only its heartbeat proves it alive), is taken over too, and its fenced
// updateJson is refused: nothing is lost.
//
// Target: contended throughput at least proper-lockfile's, zero lost
// updates.

import lockfile from "proper-lockfile";
import { acquireLock, type Lock, updateJson } from "../lock/mod.ts";

type Lib = "sturdy-dir" | "sturdy-flock" | "proper-lockfile";
const LIBS: Lib[] = ["sturdy-dir", "sturdy-flock", "proper-lockfile"];
const SELF = new URL(import.meta.url).pathname;

/** High-resolution wall time, comparable across processes on one host. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(path: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!await exists(path)) {
    if (Date.now() > until) throw new Error(`Timed out waiting for ${path}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// ---------------------------------------------------------------- workers

/** Takes the lock for one increment; returns the release function. */
async function lockOnce(
  lib: Lib,
  dir: string,
): Promise<() => Promise<void>> {
  if (lib === "proper-lockfile") {
    return await lockfile.lock(`${dir}/counter`, {
      realpath: false,
      // Retry quickly and for long (the default gives up at once). Not
      // more: node-retry builds and sorts an array of every delay on
      // each call, so a million retries would cost 200 ms per lock.
      retries: {
        retries: 5_000,
        factor: 1.2,
        minTimeout: 1,
        maxTimeout: 25,
        randomize: true,
      },
      onCompromised: () => {},
    });
  }
  const lock = await acquireLock("counter", {
    root: dir,
    timeout: 120_000,
    kind: lib === "sturdy-flock" ? "flock" : "dir",
  });
  return () => lock.release();
}

async function counterWorker(
  lib: Lib,
  dir: string,
  id: string,
  n: number,
): Promise<void> {
  const counter = `${dir}/counter`;
  await Deno.writeTextFile(`${dir}/ready-${id}`, "");
  await waitFor(`${dir}/go`);
  const intervals: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const release = await lockOnce(lib, dir);
    const start = now();
    const value = Number(await Deno.readTextFile(counter));
    await Deno.writeTextFile(counter, String(value + 1));
    intervals.push([start, now()]);
    await release();
  }
  await Deno.writeTextFile(
    `${dir}/intervals-${id}.json`,
    JSON.stringify(intervals),
  );
}

/** The paused holder: reads under the lock, signals, sleeps, writes. */
async function pausedHolder(lib: Lib, dir: string): Promise<void> {
  const counter = `${dir}/counter`;
  let outcome: string;
  if (lib === "proper-lockfile") {
    let compromised = false;
    const release = await lockfile.lock(counter, {
      realpath: false,
      stale: 2_000, // the smallest it allows
      onCompromised: () => void (compromised = true),
    });
    const value = Number(await Deno.readTextFile(counter));
    await Deno.writeTextFile(`${dir}/read`, "");
    await new Promise((r) => setTimeout(r, 500)); // stopped in here
    await Deno.writeTextFile(counter, String(value + 1));
    outcome = compromised ? "wrote (compromise noticed)" : "wrote";
    await release().catch(() => {});
  } else {
    const lock: Lock = await acquireLock("counter", {
      root: dir,
      ttl: 1_000,
      host: "elsewhere.invalid", // looks remote: only the heartbeat proves it alive
    });
    try {
      await updateJson<number>(counter, async (value) => {
        await Deno.writeTextFile(`${dir}/read`, "");
        await new Promise((r) => setTimeout(r, 500)); // stopped in here
        return (value ?? 0) + 1;
      }, { root: dir, lock });
      outcome = "wrote";
    } catch (err) {
      outcome = `refused (${(err as { code?: string }).code})`;
    }
    await lock.release().catch(() => {});
  }
  await Deno.writeTextFile(`${dir}/outcome`, outcome);
}

/** The waiter that takes over from the paused holder and increments. */
async function takeover(lib: Lib, dir: string): Promise<void> {
  const counter = `${dir}/counter`;
  const started = now();
  if (lib === "proper-lockfile") {
    const release = await lockfile.lock(counter, {
      realpath: false,
      stale: 2_000,
      retries: { retries: 1_000, factor: 1, minTimeout: 50, maxTimeout: 50 },
      onCompromised: () => {},
    });
    const value = Number(await Deno.readTextFile(counter));
    await Deno.writeTextFile(counter, String(value + 1));
    await release();
  } else {
    const lock = await acquireLock("counter", {
      root: dir,
      ttl: 1_000,
      timeout: 30_000,
    });
    try {
      await updateJson<number>(counter, (v) => (v ?? 0) + 1, {
        root: dir,
        lock,
      });
    } finally {
      await lock.release();
    }
  }
  await Deno.writeTextFile(`${dir}/took-over`, String(now() - started));
}

// ----------------------------------------------------------------- parent

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
}

interface RunResult {
  lib: Lib;
  procs: number;
  opsPerSec: number;
  lost: number;
  overlaps: number;
}

async function contended(lib: Lib, procs: number, n: number) {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-contention-" });
  try {
    await Deno.writeTextFile(`${dir}/counter`, "0");
    const children = Array.from(
      { length: procs },
      (_, i) => spawn(["--worker", lib, dir, String(i), String(n)]),
    );
    for (let i = 0; i < procs; i++) await waitFor(`${dir}/ready-${i}`);
    await Deno.writeTextFile(`${dir}/go`, "");
    for (const child of children) {
      const status = await child.status;
      if (!status.success) throw new Error(`${lib} worker failed`);
    }
    const intervals: Array<[number, number]> = [];
    for (let i = 0; i < procs; i++) {
      intervals.push(
        ...JSON.parse(await Deno.readTextFile(`${dir}/intervals-${i}.json`)),
      );
    }
    intervals.sort((a, b) => a[0] - b[0]);
    let overlaps = 0;
    let end = -Infinity;
    for (const [s, e] of intervals) {
      if (s < end) overlaps++;
      end = Math.max(end, e);
    }
    const span = end - intervals[0]![0];
    const final = Number(await Deno.readTextFile(`${dir}/counter`));
    const result: RunResult = {
      lib,
      procs,
      opsPerSec: (procs * n) / (span / 1000),
      lost: procs * n - final,
      overlaps,
    };
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function paused(lib: Lib) {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-paused-" });
  try {
    await Deno.writeTextFile(`${dir}/counter`, "0");
    const holder = spawn(["--paused-holder", lib, dir]);
    await waitFor(`${dir}/read`);
    Deno.kill(holder.pid, "SIGSTOP");
    const waiter = spawn(["--takeover", lib, dir]);
    const waited = await Promise.race([
      waiter.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 15_000)),
    ]);
    Deno.kill(holder.pid, "SIGCONT");
    await holder.status;
    if (!waited) await waiter.status;
    const final = Number(await Deno.readTextFile(`${dir}/counter`));
    const outcome = await Deno.readTextFile(`${dir}/outcome`);
    // The waiter's increment always counts; the holder's only if admitted.
    const expected = outcome.startsWith("refused") ? 1 : 2;
    return {
      lib,
      takeoverMs: Math.round(
        Number(await Deno.readTextFile(`${dir}/took-over`)),
      ),
      pausedHolder: outcome,
      final,
      lost: expected - final,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function parent(args: string[]): Promise<void> {
  const flag = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? fallback : args[i + 1]!;
  };
  const n = Number(flag("increments", "200"));
  const procs = flag("procs", "2,4,8").split(",").map(Number);
  const libs = flag("libs", LIBS.join(",")).split(",") as Lib[];
  console.log(
    `Contended: P processes x ${n} increments of one counter file under the lock`,
  );
  const results: RunResult[] = [];
  for (const p of procs) {
    for (const lib of libs) {
      const r = await contended(lib, p, n);
      results.push(r);
      console.log(
        `  ${lib.padEnd(16)} P=${p}  ${
          r.opsPerSec.toFixed(0).padStart(6)
        } ops/s  lost ${r.lost}  overlaps ${r.overlaps}`,
      );
    }
    const base = results.find((r) =>
      r.procs === p && r.lib === "proper-lockfile"
    );
    if (base) {
      for (const r of results.filter((r) => r.procs === p && r !== base)) {
        console.log(
          `    ${r.lib} / proper-lockfile = ${
            (r.opsPerSec / base.opsPerSec).toFixed(2)
          }x`,
        );
      }
    }
  }
  if (!args.includes("--no-paused")) {
    console.log(
      "\nPaused holder: holder reads, is SIGSTOPped past its lease, a waiter takes over and increments, the holder continues and writes",
    );
    for (const lib of ["sturdy-dir", "proper-lockfile"] as const) {
      const r = await paused(lib);
      console.log(
        `  ${
          lib.padEnd(16)
        } takeover after ${r.takeoverMs} ms; paused holder ${r.pausedHolder}; final ${r.final}; lost updates ${r.lost}`,
      );
    }
  }
}

const [mode, ...rest] = Deno.args;
if (mode === "--worker") {
  await counterWorker(rest[0] as Lib, rest[1]!, rest[2]!, Number(rest[3]));
} else if (mode === "--paused-holder") {
  await pausedHolder(rest[0] as Lib, rest[1]!);
} else if (mode === "--takeover") {
  await takeover(rest[0] as Lib, rest[1]!);
} else {
  await parent(Deno.args);
}
