// Two processes create checkpoints for the same agent at the same time:
// sequence numbers are allocated under the agent's lock, so they must be
// distinct, increase within each process, leave no gap, and every
// checkpoint must hold exactly the state its creator acknowledged.

import assert from "node:assert/strict";
import { openCheckpoints } from "../../checkpoint/mod.ts";
import { checkState } from "./_crash_state.ts";

const CHILD = new URL("./_create_child.ts", import.meta.url).pathname;
const PER_CHILD = 15;

/** Starts a child creating `count` versions from `from`; resolves to its acks. */
async function burst(
  root: string,
  from: number,
  count: number,
): Promise<Array<{ version: number; seq: number }>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      "--allow-run",
      "--no-check",
      CHILD,
      root,
      "burst",
      String(from),
      String(count),
    ],
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
