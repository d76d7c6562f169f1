// Crash harness for CheckpointManager.create(): a child creates
// checkpoints of versioned, checksummed states and dies by SIGKILL, just
// before every file-system step of a create (lock, store, journal,
// retention: _create_child.ts wraps Deno's API), of a manager's first
// create (which takes the lock first) and of its second (which writes its
// file first), and at random times. After each kill:
// - no checkpoint verifies while holding wrong data: every state that
//   passes the manager's checks is exactly the state written for its
//   version (checked against an independent checksum in the state);
// - the previous checkpoint is never lost: restore() returns a state at
//   least as new as the last version the child acknowledged;
// - sequence numbers keep increasing across crashes.
//
// STURDY_TORTURE=1 multiplies the number of kills.

import assert from "node:assert/strict";
import { openCheckpoints } from "../../checkpoint/mod.ts";
import { checkState, createChildArgs } from "./_crash_state.ts";

const TORTURE = Deno.env.get("STURDY_TORTURE") === "1";
const RANDOM_KILLS = TORTURE ? 300 : 28;

interface Outcome {
  acks: Array<{ version: number; seq: number }>;
  killed: boolean;
  steps?: number;
  stderr: string;
}

/** Runs the child; `killAfterMs` kills it that long after it is ready. */
async function runChild(
  root: string,
  args: string[],
  killAfterMs?: number,
): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    args: createChildArgs(root, args),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const outcome: Outcome = { acks: [], killed: false, stderr: "" };
  const stderr = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let buffered = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) !== -1) {
      const [word, a, b] = buffered.slice(0, nl).split(" ");
      buffered = buffered.slice(nl + 1);
      if (word === "ready" && killAfterMs !== undefined) {
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        }, killAfterMs);
      } else if (word === "ack") {
        outcome.acks.push({ version: Number(a), seq: Number(b) });
      } else if (word === "steps") outcome.steps = Number(a);
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  outcome.stderr = await stderr;
  outcome.killed = status.signal === "SIGKILL";
  if (!outcome.killed && !status.success) {
    throw new Error(`child failed (exit ${status.code}): ${outcome.stderr}`);
  }
  return outcome;
}

/**
 * The invariants after a kill. Returns the newest seq on disk so the
 * caller can check that seqs keep increasing.
 */
async function check(
  root: string,
  lastAck: { version: number; seq: number } | undefined,
): Promise<number> {
  await using checkpoints = await openCheckpoints<unknown>({
    agentId: "crash",
    root,
  });
  // verify() runs every check without changing anything; whatever passes
  // must hold exactly the data written for it.
  const report = await checkpoints.verify();
  const refs = await checkpoints.list();
  const bad = new Set(report.problems.map((p) => p.id));
  assert.deepEqual(
    report.problems,
    [],
    "a kill must never leave a live checkpoint that fails verification",
  );
  for (const ref of refs) {
    if (bad.has(ref.id)) continue;
    const { state, ref: got } = await checkpoints.restore(ref.id);
    assert.equal(
      got.id,
      ref.id,
      `checkpoint ${ref.id} verified but did not restore`,
    );
    await checkState(state);
  }
  if (lastAck) {
    const { state, ref } = await checkpoints.restore();
    const restored = await checkState(state);
    assert.ok(
      restored.version >= lastAck.version,
      `restore gave version ${restored.version} (seq ${ref.seq}), older than acknowledged ${lastAck.version} (seq ${lastAck.seq})`,
    );
    assert.ok(ref.seq >= lastAck.seq);
  }
  // As the agent would after restoring: this keeps the checks' own
  // restores from counting towards poison.
  if (refs.length > 0) await checkpoints.markHealthy();
  return refs[0]?.seq ?? 0;
}

/**
 * Kills a child before step n of a create, for each n in `ns`, in one
 * root; with `warm`, of the child's second create (see _create_child.ts).
 */
async function stepWorker(ns: number[], warm = false): Promise<number> {
  const root = await Deno.makeTempDir({ prefix: "sturdy-ckpt-crash-" });
  try {
    // Two checkpoints first, so retention and the previous-one check
    // have something to work on.
    let version = 1;
    let last = (await runChild(root, ["burst", String(version), "2"])).acks
      .at(-1);
    version += 2;
    let kills = 0;
    let seq = await check(root, last);
    for (const n of ns) {
      const out = await runChild(root, [
        "step",
        String(version),
        String(n),
        ...(warm ? ["warm"] : []),
      ]);
      version += warm ? 2 : 1;
      if (out.killed) kills++;
      // Not killed only when this create took fewer than n steps.
      else assert.ok(out.steps! < n, `survived step ${n} of ${out.steps}`);
      last = out.acks.at(-1) ?? last;
      const newest = await check(root, last);
      assert.ok(newest >= seq, `seq went back from ${seq} to ${newest}`);
      seq = newest;
    }
    return kills;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Kills a child at varied times after it is ready, `kills` times, in one root. */
async function randomWorker(kills: number, offset: number): Promise<number> {
  const root = await Deno.makeTempDir({ prefix: "sturdy-ckpt-crash-" });
  try {
    let version = 1;
    let last: { version: number; seq: number } | undefined;
    let killed = 0;
    let seq = 0;
    for (let i = 0; i < kills; i++) {
      const delay = ((i + offset) * 37) % 60; // 0–59 ms after ready
      const out = await runChild(root, ["random", String(version)], delay);
      if (out.killed) killed++;
      last = out.acks.at(-1) ?? last;
      // An unacknowledged version may have been written too; writing it
      // again is fine (same state), as long as nothing older wins.
      if (last) version = last.version + 1;
      const newest = await check(root, last);
      assert.ok(newest >= seq, `seq went back from ${seq} to ${newest}`);
      seq = newest;
    }
    return killed;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test({
  name:
    "create() survives SIGKILL before every file-system step and at random times, never losing the previous checkpoint",
  sanitizeResources: false, // child stdio closes after the test's ops
}, async () => {
  // How many steps a create takes (16 or so: lock, temp file, write,
  // fsync, rename, directory fsync, journal, retention, unlock), counted
  // with checkpoints already there so retention has work to do: a first
  // create (lock first) and a second one (file first, see
  // _create_child.ts).
  const probe = await Deno.makeTempDir({ prefix: "sturdy-ckpt-crash-" });
  await runChild(probe, ["burst", "1", "3"]);
  const { steps } = await runChild(probe, ["count", "4"]);
  const { steps: warmSteps } = await runChild(probe, ["count", "5", "warm"]);
  await Deno.remove(probe, { recursive: true });
  assert.ok(steps! >= 5, `only ${steps} file-system steps counted`);
  assert.ok(warmSteps! >= 5, `only ${warmSteps} file-system steps counted`);
  // Step counts differ a little between creates: go a few past. Four
  // roots share the sweeps and three more take random kills, all at once:
  // the children mostly wait on fsync.
  const upTo = (n: number) => Array.from({ length: n + 3 }, (_, i) => i + 1);
  const cold = upTo(steps!);
  const warm = upTo(warmSteps!);
  const [odd, even, warmOdd, warmEven, ...random] = await Promise.all([
    stepWorker(cold.filter((n) => n % 2 === 1)),
    stepWorker(cold.filter((n) => n % 2 === 0)),
    stepWorker(warm.filter((n) => n % 2 === 1), true),
    stepWorker(warm.filter((n) => n % 2 === 0), true),
    ...[0, 1, 2].map((w) => randomWorker(RANDOM_KILLS, w * 20)),
  ]);
  const stepKills = odd! + even! + warmOdd! + warmEven!;
  const randomKills = random.reduce((a, b) => a + b, 0);
  assert.equal(randomKills, 3 * RANDOM_KILLS);
  assert.ok(
    stepKills + randomKills >= 100,
    `only ${stepKills + randomKills} kills`,
  );
});
