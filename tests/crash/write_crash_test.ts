// Crash harness for writeJson: a child writes versioned, checksummed
// payloads to one file and dies by SIGKILL, at random times and at every
// step of the write recipe. After each kill the file must parse as one
// complete version no older than the last acknowledged one, and the next
// start's recoverDir must leave no temp behind.
//
// STURDY_TORTURE=1 multiplies the number of kills.

import assert from "node:assert/strict";
import { denoFileSystem, writeJson } from "../../fs/mod.ts";
import { faultFs } from "../_helpers/fault_fs.ts";
import { sha256 } from "../_helpers/sha256.ts";

const CHILD = new URL("./_write_child.ts", import.meta.url).pathname;
const TORTURE = Deno.env.get("STURDY_TORTURE") === "1";
const RANDOM_KILLS = TORTURE ? 3_000 : 480;
const STEP_ROUNDS = TORTURE ? 10 : 1;
const WORKERS = 3;

interface Outcome {
  lastAck: number;
  killed: boolean;
  removed: number;
  left: number;
}

// Runs the child; `killAfterMs` kills it that long after it is ready.
async function runChild(
  dir: string,
  args: string[],
  killAfterMs?: number,
): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    // No --allow-all: /proc is closed to the child, so only the kernel
    // locks of temps can prove their writers dead.
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--no-check",
      CHILD,
      dir,
      ...args,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const outcome: Outcome = { lastAck: 0, killed: false, removed: 0, left: 0 };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let buffered = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) !== -1) {
      const [word, a, b] = buffered.slice(0, nl).split(" ");
      buffered = buffered.slice(nl + 1);
      if (word === "ready") {
        outcome.removed = Number(a);
        outcome.left = Number(b);
        if (killAfterMs !== undefined) {
          timer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* already gone */ }
          }, killAfterMs);
        }
      } else if (word === "ack") outcome.lastAck = Number(a);
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  outcome.killed = status.signal === "SIGKILL";
  return outcome;
}

// The target holds one complete version, at least `minVersion`.
async function checkTarget(dir: string, minVersion: number): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/state.json`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && minVersion === 0) return 0;
    throw err;
  }
  const value = JSON.parse(text) as {
    version: number;
    sha256: string;
    body: string;
  };
  assert.equal(await sha256(value.body), value.sha256, "torn payload");
  assert.ok(
    value.version >= minVersion,
    `version ${value.version} is older than acknowledged ${minVersion}`,
  );
  return value.version;
}

// Kills a child repeatedly in one directory; each start recovers the last.
async function worker(dir: string, kills: number, seed: number) {
  let acked = 0;
  let killed = 0;
  for (let i = 0; i < kills; i++) {
    const delay = ((seed + i) * 7) % 25; // 0–24 ms after ready
    const out = await runChild(dir, ["random"], delay);
    assert.equal(out.left, 0, "recoverDir left a temp behind");
    if (out.killed) killed++;
    acked = Math.max(acked, out.lastAck);
    acked = Math.max(acked, await checkTarget(dir, acked));
  }
  return killed;
}

Deno.test({
  name: "writeJson() survives SIGKILL at random times",
  sanitizeResources: false, // child stdio closes after the test's ops
}, async () => {
  const dirs = await Promise.all(
    Array.from({ length: WORKERS }, () => Deno.makeTempDir()),
  );
  try {
    const per = Math.ceil(RANDOM_KILLS / WORKERS);
    const killed = await Promise.all(
      dirs.map((d, i) => worker(d, per, i * 13)),
    );
    const total = killed.reduce((a, b) => a + b, 0);
    // Nearly every run is killed mid-stream (a few may be killed before
    // the first write or, rarely, be slow to start).
    assert.ok(total >= per * WORKERS * 0.9, `only ${total} kills`);
    for (const dir of dirs) {
      const final = await runChild(dir, ["recover"]);
      assert.equal(final.left, 0);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.deepEqual(names, ["state.json"]);
    }
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});

// The fs calls two writes make in a fresh process, as (op, nth) pairs.
async function recipeSteps(): Promise<Array<[string, number]>> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/state.json`, "{}");
    const fs = faultFs(denoFileSystem, []);
    await writeJson(`${dir}/state.json`, { version: 1 }, { fs });
    await writeJson(`${dir}/state.json`, { version: 2 }, { fs });
    const seen = new Map<string, number>();
    return fs.calls.map((call) => {
      const op = call.split(" ")[0]!;
      const nth = (seen.get(op) ?? 0) + 1;
      seen.set(op, nth);
      return [op, nth];
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "writeJson() survives SIGKILL at every step of the write recipe",
  sanitizeResources: false,
}, async () => {
  const steps = await recipeSteps();
  const ops = new Set(steps.map(([op]) => op));
  for (const op of ["open", "write", "syncData", "rename", "sync", "close"]) {
    assert.ok(ops.has(op), `the recipe has no ${op}`);
  }
  const dirs = await Promise.all(
    Array.from({ length: WORKERS }, () => Deno.makeTempDir()),
  );
  let kills = 0;
  try {
    // Every child then replaces an existing file, as the recipe assumes.
    for (const dir of dirs) {
      await writeJson(`${dir}/state.json`, {
        version: 0,
        sha256: await sha256(""),
        body: "",
      });
    }
    const jobs = Array.from({ length: STEP_ROUNDS }, () => steps).flat();
    await Promise.all(dirs.map(async (dir, w) => {
      let acked = 0;
      for (let i = w; i < jobs.length; i += WORKERS) {
        const [op, nth] = jobs[i]!;
        const out = await runChild(dir, ["step", op, String(nth)]);
        assert.equal(out.left, 0, "recoverDir left a temp behind");
        assert.ok(out.killed, `no kill at ${op} #${nth}`);
        kills++;
        acked = Math.max(acked, out.lastAck);
        acked = Math.max(acked, await checkTarget(dir, acked));
      }
      const final = await runChild(dir, ["recover"]);
      assert.equal(final.left, 0);
    }));
    assert.equal(kills, steps.length * STEP_ROUNDS);
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});
