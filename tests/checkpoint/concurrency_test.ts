// Two processes create checkpoints for the same agent at the same time:
// sequence numbers are allocated under the agent's lock, so they must be
// distinct, increase within each process, leave no gap, and every
// checkpoint must hold exactly the state its creator acknowledged.

import assert from "node:assert/strict";
import { openCheckpoints } from "../../checkpoint/mod.ts";
import { listLocks } from "../../lock/mod.ts";
import { checkState, createChildArgs } from "./_crash_state.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const PER_CHILD = 15;

/** Starts a child creating `count` versions from `from`; resolves to its acks. */
async function burst(
  root: string,
  from: number,
  count: number,
): Promise<Array<{ version: number; seq: number }>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: createChildArgs(root, ["burst", String(from), String(count)]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `child failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((line) => line.startsWith("ack "))
    .map((line) => {
      const [, version, seq] = line.split(" ");
      return { version: Number(version), seq: Number(seq) };
    });
}

Deno.test("create() from two processes at once gets distinct, ordered sequence numbers and loses nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "sturdy-ckpt-concurrent-" });
  try {
    const [a, b] = await Promise.all([
      burst(root, 1_000, PER_CHILD),
      burst(root, 2_000, PER_CHILD),
    ]);
    assert.equal(a.length, PER_CHILD);
    assert.equal(b.length, PER_CHILD);
    for (const acks of [a, b]) {
      for (let i = 1; i < acks.length; i++) {
        assert.ok(
          acks[i]!.seq > acks[i - 1]!.seq,
          `seq ${acks[i]!.seq} after ${acks[i - 1]!.seq} in one process`,
        );
      }
    }
    const all = [...a, ...b].sort((x, y) => x.seq - y.seq);
    assert.deepEqual(
      all.map((x) => x.seq),
      Array.from({ length: 2 * PER_CHILD }, (_, i) => i + 1),
      "sequence numbers must be distinct and leave no gap",
    );
    // The two really interleaved (else the test proves little).
    const owners = all.map((x) => (x.version >= 2_000 ? "b" : "a")).join("");
    assert.ok(/ab|ba/.test(owners), owners);

    await using checkpoints = await openCheckpoints<unknown>({
      agentId: "crash",
      root,
      retention: { auto: false },
    });
    const report = await checkpoints.verify();
    assert.deepEqual(report, {
      ok: true,
      checked: 2 * PER_CHILD,
      problems: [],
    });
    const refs = await checkpoints.list();
    assert.deepEqual(
      refs.map((r) => r.seq),
      all.map((x) => x.seq).reverse(),
    );
    // Created in sequence order: each createdAt at or after the one before.
    const times = refs.map((r) => Date.parse(r.createdAt)).reverse();
    for (let i = 1; i < times.length; i++) {
      assert.ok(
        times[i]! >= times[i - 1]!,
        `seq ${i + 1} created before seq ${i}`,
      );
    }
    for (const ack of all) {
      const { state, ref } = await checkpoints.restore(String(ack.seq));
      assert.equal(ref.seq, ack.seq);
      assert.equal((await checkState(state)).version, ack.version);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// A manager whose last create was the last hold of the agent lock writes
// its next file before taking the lock, predicting its seq and fence;
// these check that prediction against every way it can fail in one
// process (the two-process case is the test above).

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (at: string, prefix: string) => {
    for (const entry of Deno.readDirSync(at)) {
      if (entry.isDirectory) {
        walk(`${at}/${entry.name}`, `${prefix}${entry.name}/`);
      } else found.push(`${prefix}${entry.name}`);
    }
  };
  walk(dir, "");
  return found.sort();
}

Deno.test("creates in one process, on one manager or two, interleave without waiting on each other and keep seqs distinct", async () => {
  await inTempDir(async (root) => {
    await using one = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { auto: false },
      lockTimeout: 5_000,
    });
    await using two = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { auto: false },
      lockTimeout: 5_000,
    });
    await one.create("routine", { state: 0 }); // `one` predicts from here
    const started = Date.now();
    const refs = await Promise.all([
      one.create("routine", { state: 1 }),
      one.create("routine", { state: 2 }),
      two.create("routine", { state: 3 }),
      one.create("recovery", { state: 4 }),
      two.create("routine", { state: 5 }),
    ]);
    // A create that waited for the lock inside its own write, behind a
    // write of the same file, would wait out the lock timeout.
    assert.ok(Date.now() - started < 4_000, "a create waited on another");
    assert.deepEqual(
      refs.map((r) => r.seq).sort((x, y) => x - y),
      [2, 3, 4, 5, 6],
    );
    for (const ref of refs) {
      const { state } = await one.restore(ref);
      assert.equal(state, [1, 2, 3, 4, 5][refs.indexOf(ref)]);
    }
    // Then alternately: each manager's prediction fails after the other
    // created, and it writes again under the lock.
    for (let i = 0; i < 4; i++) {
      const a = await one.create("routine", { state: 10 + i });
      const b = await two.create("routine", { state: 20 + i });
      assert.equal(b.seq, a.seq + 1);
      assert.equal((await two.restore(a)).state, 10 + i);
      assert.equal((await one.restore(b)).state, 20 + i);
    }
    // Nothing left behind: no temp file, no lock held.
    const dir = `${root}/checkpoints/a`;
    assert.deepEqual(
      filesUnder(dir).filter((f) =>
        !/^(routine|recovery)\/\d{12}\.ckpt$/.test(f)
      ),
      ["journal.jsonl", "restores.json", "restores.jsonl"],
    );
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/locks`)].map((e) => e.name).filter((n) =>
        !n.endsWith(".fence")
      ),
      [],
      "the agent lock is free",
    );
    assert.deepEqual((await one.verify()).problems, []);
    const creates = (await one.journal()).filter((e) => e.event === "create");
    assert.deepEqual(
      creates.map((e) => e.seq),
      Array.from({ length: 14 }, (_, i) => i + 1),
      "one create line per checkpoint, in seq order",
    );
  });
});

Deno.test("a refused state on a manager's second create writes nothing and leaves the lock free", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<unknown>({ agentId: "a", root });
    await cp.create("routine", { state: 1 });
    const before = filesUnder(root);
    // The check runs while the payload is written, which may take the
    // lock for that moment (bumping the fence): what matters is that
    // nothing is left and the lock is free again.
    const err = await cp.create("routine", { state: { f: () => 1 } })
      .catch((e) => e);
    assert.equal(err.code, "invalid_state");
    assert.match(err.message, /"\/f" is a function/);
    assert.deepEqual(filesUnder(root), before);
    assert.equal((await listLocks({ root })).length, 0, "the lock is free");
    // The prediction still holds for the next create.
    assert.equal((await cp.create("routine", { state: 2 })).seq, 2);
  });
});
