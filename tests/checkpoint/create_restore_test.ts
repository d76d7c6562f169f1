import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CheckpointError,
  CheckpointManager,
  NoValidCheckpointError,
  openCheckpoints,
} from "../../checkpoint/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import {
  editHeader,
  exists,
  flipByte,
  quarantineReason,
  replacePayload,
  truncateBy,
} from "./_fixture.ts";

type State = { step: number; notes?: string };

Deno.test("create() writes a verified file and restore() returns the same state", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(Date.parse("2026-03-01T00:00:00Z"));
    await using cp = await openCheckpoints<State>({
      agentId: "planner",
      root,
      clock,
    });
    const ref = await cp.create("routine", {
      state: { step: 1, notes: "héllo" },
      label: "l",
      meta: { k: 1 },
    });
    assert.equal(ref.id, "000000000001.routine");
    assert.equal(
      ref.path,
      join(root, "checkpoints", "planner", "routine", "000000000001.ckpt"),
    );
    assert.equal(ref.createdAt, "2026-03-01T00:00:00.000Z");
    assert.equal(
      ref.stateBytes,
      JSON.stringify({ step: 1, notes: "héllo" }).length + 1,
    );
    assert.deepEqual(ref.meta, { k: 1 });
    const text = await Deno.readTextFile(ref.path);
    const [head, payload] = text.split("\n");
    assert.equal(JSON.parse(head!).format, "sturdy.checkpoint/1");
    assert.equal(payload, JSON.stringify({ step: 1, notes: "héllo" }));
    const restored = await cp.restore();
    assert.deepEqual(restored, {
      state: { step: 1, notes: "héllo" },
      ref,
      skipped: [],
    });
  });
});

Deno.test("create() refuses functions, cycles and non-finite numbers and writes nothing", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<unknown>({ agentId: "a", root });
    const loop: Record<string, unknown> = {};
    loop.me = loop;
    for (
      const [state, message] of [
        [{ run: () => {} }, /"\/run" is a function/],
        [loop, /"\/me" refers back/],
        [{ n: [0, Infinity] }, /"\/n\/1" is Infinity/],
      ] as const
    ) {
      const err = await cp.create("routine", { state }).catch((e) => e);
      assert.ok(err instanceof CheckpointError);
      assert.equal(err.code, "invalid_state");
      assert.match(err.message, message);
      assert.match(err.message, /agent "a"/);
    }
    assert.deepEqual(await cp.list(), []);
  });
});

Deno.test("create() refuses a state the validator or schema rejects", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      validate: (s) => s.step >= 0 || "step must not be negative",
    });
    await assert.rejects(cp.create("routine", { state: { step: -1 } }), {
      code: "invalid_state",
      message: /fails validation: step must not be negative/,
    });
    await using schemaCp = await openCheckpoints<State>({
      agentId: "b",
      root,
      schema: {
        "~standard": {
          version: 1,
          vendor: "test",
          validate: (v) =>
            typeof (v as State).step === "number"
              ? { value: v as State }
              : { issues: [{ message: "expected a number", path: ["step"] }] },
        },
      },
    });
    await assert.rejects(
      schemaCp.create("routine", { state: { step: "x" } as unknown as State }),
      {
        message: /\/step: expected a number/,
      },
    );
  });
});

Deno.test("create() refuses a state above maxBytes with code too_large", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints({
      agentId: "a",
      root,
      maxBytes: 100,
    });
    await assert.rejects(
      cp.create("routine", { state: { blob: "x".repeat(2_000_000) } }),
      {
        code: "too_large",
        message: /"blob"/,
      },
    );
  });
});

Deno.test("a state past 8 MiB of JSON is written as it is serialised, its header filled in at the end", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<unknown>({
      agentId: "big",
      root,
      maxBytes: 32 << 20,
    });
    // ~12 MiB of JSON, with multi-byte characters across chunk edges.
    const items = Array.from({ length: 120_000 }, (_, i) => ({
      i,
      s: "é".repeat(40) + i,
    }));
    const state = { step: 1, items };
    const ref = await cp.create("routine", { state });
    assert.equal(
      ref.stateBytes,
      new TextEncoder().encode(JSON.stringify(state)).length,
    );
    assert.ok(ref.bytes > 8 << 20);
    const bytes = await Deno.readFile(ref.path);
    const end = bytes.indexOf(10);
    const line = new TextDecoder().decode(bytes.subarray(0, end));
    // The header line keeps the room it was given: spaces after the JSON.
    assert.match(line, /\} +$/);
    assert.equal(JSON.parse(line).sha256, ref.sha256);
    assert.equal(bytes.length - end - 1, ref.bytes);
    assert.deepEqual((await cp.verify()).problems, []);
    const restored = await cp.restore();
    assert.equal(JSON.stringify(restored.state), JSON.stringify(state));
    // A flipped payload byte is still caught.
    await flipByte(ref.path, 1_000_000);
    const after = await cp.restore().catch((e) => e);
    assert.ok(after instanceof NoValidCheckpointError);
    assert.match(after.message, /checksum mismatch/);
  });
});

Deno.test("a state past 8 MiB that is refused or too large leaves nothing behind", async () => {
  await inTempDir(async (root) => {
    const items = Array.from({ length: 120_000 }, (_, i) => ({
      i,
      s: "x".repeat(80),
    }));
    await using cp = await openCheckpoints<unknown>({
      agentId: "big",
      root,
      maxBytes: 32 << 20,
    });
    const first = await cp.create("routine", { state: { items } });
    // A function at the very end: found only once everything is written.
    const err = await cp.create("routine", {
      state: { items, tail: { f: () => 1 } },
    }).catch((e) => e);
    assert.ok(err instanceof CheckpointError);
    assert.equal(err.code, "invalid_state");
    assert.match(err.message, /"\/tail\/f" is a function/);
    const opErr = await cp.beginOperation("op", {
      items,
      tail: { n: NaN },
    }).catch((e) => e);
    assert.equal(opErr.code, "invalid_state");
    assert.deepEqual(await cp.listOperations(), []);
    await using small = await openCheckpoints<unknown>({
      agentId: "big",
      root,
      maxBytes: 10 << 20,
    });
    await assert.rejects(small.create("routine", { state: { items } }), {
      code: "too_large",
    });
    assert.deepEqual((await cp.list()).map((r) => r.id), [first.id]);
    assert.deepEqual(
      [...Deno.readDirSync(join(cp.dir, "routine"))].map((e) => e.name),
      ["000000000001.ckpt"],
      "no temp file is left",
    );
    assert.equal(
      (await cp.create("routine", { state: { items } })).seq,
      2,
    );
  });
});

Deno.test("create() takes the state from collect() when none is given", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints({
      agentId: "a",
      root,
      collect: () => ({ step: 9 }),
    });
    await cp.create("routine");
    assert.deepEqual((await cp.restore()).state, { step: 9 });
    await using bare = await openCheckpoints({ agentId: "b", root });
    await assert.rejects(bare.create("routine"), {
      code: "invalid_option",
      message: /no collect\(\)/,
    });
    await assert.rejects(bare.create("nightly" as "routine", { state: 1 }), {
      code: "invalid_option",
    });
  });
});

Deno.test("gzip and auto encodings round-trip through restore", async () => {
  await inTempDir(async (root) => {
    const state = { log: "line of text\n".repeat(200_000) };
    await using gz = await openCheckpoints({
      agentId: "gz",
      root,
      encoding: "gzip",
    });
    const ref = await gz.create("routine", { state });
    assert.equal(ref.encoding, "gzip");
    assert.ok(ref.bytes < ref.stateBytes / 20);
    assert.deepEqual((await gz.restore()).state, state);
    await using auto = await openCheckpoints({
      agentId: "auto",
      root,
      encoding: "auto",
      autoGzipBytes: 1000,
    });
    assert.equal(
      (await auto.create("routine", { state: { small: 1 } })).encoding,
      "json",
    );
    assert.equal((await auto.create("routine", { state })).encoding, "gzip");
    assert.deepEqual((await auto.restore()).state, state);
    assert.deepEqual(await auto.verify(), {
      ok: true,
      checked: 2,
      problems: [],
    });
  });
});

Deno.test("agent ids with ../, /, NUL or too many characters are refused", () => {
  for (
    const agentId of [
      "../x",
      "a/b",
      "/abs",
      "a\0b",
      "",
      ".",
      "..",
      "a b",
      "x".repeat(118),
    ]
  ) {
    assert.throws(
      () => new CheckpointManager({ agentId, root: "/nonexistent" }),
      {
        code: "invalid_name",
      },
      JSON.stringify(agentId),
    );
  }
  new CheckpointManager({ agentId: "x".repeat(117), root: "/nonexistent" });
});

// The corruption matrix: each damage makes restore fall back to the older
// checkpoint, say why, and quarantine the file with a reason.
const DAMAGES: Array<{
  name: string;
  damage: (path: string) => Promise<void>;
  reason: RegExp;
  check: string;
}> = [
  {
    name: "a truncated file",
    damage: (p) => truncateBy(p, 5),
    reason: /^truncated/,
    check: "truncated",
  },
  {
    name: "a flipped payload byte",
    damage: (p) => flipByte(p),
    reason: /^checksum mismatch/,
    check: "checksum",
  },
  {
    name: "a wrong format version",
    damage: (p) => editHeader(p, (h) => (h.format = "other.format/9")),
    reason: /^unsupported format "other.format\/9"/,
    check: "format",
  },
  {
    name: "a flipped header byte",
    damage: (p) => editHeader(p, (h) => (h.seq = 99)),
    reason: /header names agent "a" checkpoint/,
    check: "mismatch",
  },
  {
    name: "invalid JSON with a matching checksum",
    damage: (p) => replacePayload(p, '{"step": 2,'),
    reason: /^invalid JSON in the payload/,
    check: "json",
  },
  {
    name: "an empty file",
    damage: (p) => Deno.writeFile(p, new Uint8Array()),
    reason: /^empty file/,
    check: "header",
  },
];

for (const { name, damage, reason, check } of DAMAGES) {
  Deno.test(`restore() falls back past ${name}, quarantines it and says why`, async () => {
    await inTempDir(async (root) => {
      await using cp = await openCheckpoints<State>({ agentId: "a", root });
      const good = await cp.create("routine", { state: { step: 1 } });
      const bad = await cp.create("routine", { state: { step: 2 } });
      await damage(bad.path);
      const before = await Deno.readFile(bad.path);
      const result = await cp.restore();
      assert.deepEqual(result.state, { step: 1 });
      assert.equal(result.ref.id, good.id);
      assert.equal(result.skipped.length, 1);
      assert.equal(result.skipped[0]!.id, bad.id);
      assert.equal(result.skipped[0]!.quarantined, true);
      assert.match(result.skipped[0]!.reason, reason);
      assert.equal(await exists(bad.path), false);
      const moved = join(cp.dir, "quarantine", `${bad.id}.ckpt`);
      assert.deepEqual(
        await Deno.readFile(moved),
        before,
        "evidence kept byte for byte",
      );
      const why = await quarantineReason(cp.dir, bad.id);
      assert.equal(why.check, check);
      assert.match(why.reason, reason);
      const events = (await cp.journal()).map((e) => e.event);
      assert.deepEqual(events.slice(-3), ["quarantine", "fallback", "restore"]);
    });
  });
}

Deno.test("restore() falls back past a state the validator now rejects", async () => {
  await inTempDir(async (root) => {
    let strict = false;
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      validate: (s) => !strict || s.step < 2 || `step ${s.step} is too far`,
    });
    await cp.create("routine", { state: { step: 1 } });
    await cp.create("routine", { state: { step: 2 } });
    strict = true;
    const result = await cp.restore();
    assert.equal(result.state.step, 1);
    assert.match(
      result.skipped[0]!.reason,
      /^fails validation: step 2 is too far/,
    );
    assert.equal(result.skipped[0]!.quarantined, true);
  });
});

Deno.test("restore() migrates an older stateVersion and falls back when migration fails", async () => {
  await inTempDir(async (root) => {
    await using v1 = await openCheckpoints<unknown>({ agentId: "a", root });
    await v1.create("routine", { state: { count: 1 } });
    await v1.create("routine", { state: { count: "broken" } });
    const calls: number[] = [];
    await using v2 = await openCheckpoints<State>({
      agentId: "a",
      root,
      stateVersion: 2,
      migrate: (old, from) => {
        calls.push(from);
        const count = (old as { count: unknown }).count;
        if (typeof count !== "number") {
          throw new Error(`count is ${JSON.stringify(count)}`);
        }
        return { step: count };
      },
    });
    const result = await v2.restore();
    assert.deepEqual(result.state, { step: 1 });
    assert.deepEqual(calls, [1, 1]);
    assert.match(
      result.skipped[0]!.reason,
      /^migration from stateVersion 1 to 2 failed: count is "broken"/,
    );
    assert.equal(result.skipped[0]!.quarantined, true);
    const fresh = await v2.create("routine", { state: { step: 5 } });
    assert.equal(fresh.stateVersion, 2);
    assert.deepEqual((await v2.restore()).state, { step: 5 });
  });
});

Deno.test("restore() skips without quarantine what this program cannot read", async () => {
  await inTempDir(async (root) => {
    await using v3 = await openCheckpoints({
      agentId: "a",
      root,
      stateVersion: 3,
    });
    const newer = await v3.create("routine", { state: 3 });
    await using v2 = await openCheckpoints({
      agentId: "a",
      root,
      stateVersion: 2,
    });
    const err = await v2.restore().catch((e) => e);
    assert.ok(err instanceof NoValidCheckpointError);
    assert.match(err.message, /newer than this program's 2/);
    assert.ok(await exists(newer.path), "left in place for the newer program");
    await using v4 = await openCheckpoints({
      agentId: "a",
      root,
      stateVersion: 4,
    });
    await assert.rejects(v4.restore(), /no migrate\(\) to upgrade it/);
    assert.ok(await exists(newer.path));
  });
});

Deno.test("NoValidCheckpointError names every file tried and why", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints({
      agentId: "a",
      root,
      retention: { auto: false },
    });
    const a = await cp.create("routine", { state: 1 });
    const b = await cp.create("recovery", { state: 2 });
    await truncateBy(a.path, 1);
    await flipByte(b.path, 1);
    const err = await cp.restore().catch((e) => e);
    assert.ok(err instanceof NoValidCheckpointError);
    assert.equal(err.code, "no_valid_checkpoint");
    assert.deepEqual(err.tried.map((t) => t.id), [b.id, a.id]);
    assert.deepEqual(err.tried.map((t) => t.path), [
      join(cp.dir, "quarantine", `${b.id}.ckpt`),
      join(cp.dir, "quarantine", `${a.id}.ckpt`),
    ]);
    assert.match(err.message, /checksum mismatch/);
    assert.match(err.message, /truncated/);
    assert.match(err.message, /tried 2/);
  });
});

Deno.test("restore(ref) starts at the given checkpoint, by ref, id or sequence number", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { auto: false },
    });
    const one = await cp.create("routine", { state: 1 });
    const two = await cp.create("recovery", { state: 2 });
    await cp.create("routine", { state: 3 });
    assert.equal((await cp.restore(two)).state, 2);
    assert.equal((await cp.restore(two.id)).state, 2);
    assert.equal((await cp.restore("1")).state, 1);
    await flipByte(two.path);
    const fallback = await cp.restore(two.id);
    assert.equal(fallback.ref.id, one.id);
    await assert.rejects(cp.restore("000000000099.routine"), {
      code: "not_found",
    });
    await assert.rejects(cp.restore("../etc/passwd"), { code: "invalid_id" });
    assert.equal((await cp.restore(undefined, { type: "routine" })).state, 3);
  });
});

Deno.test("restore() calls apply with the state and its ref", async () => {
  await inTempDir(async (root) => {
    const seen: unknown[] = [];
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      apply: (state, ref) => {
        seen.push([state, ref.seq]);
      },
    });
    await cp.create("routine", { state: 41 });
    await cp.restore();
    assert.deepEqual(seen, [[41, 1]]);
  });
});

Deno.test("concurrent create() in one process gets distinct, ordered sequence numbers", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { auto: false },
    });
    const refs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => cp.create("routine", { state: i })),
    );
    const seqs = refs.map((r) => r.seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: 12 }, (_, i) => i + 1));
    const listed = await cp.list();
    assert.deepEqual(listed.map((r) => r.seq), seqs.slice().reverse());
    // Creation times follow sequence order.
    const times = listed.map((r) => Date.parse(r.createdAt)).reverse();
    assert.deepEqual(times, times.slice().sort((x, y) => x - y));
    // A second manager on the same directory continues the sequence.
    await using other = await openCheckpoints<number>({ agentId: "a", root });
    assert.equal((await other.create("routine", { state: 0 })).seq, 13);
  });
});

Deno.test("sequence numbers are never reused after trash, purge or quarantine", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { routineKeepLast: 1 },
    });
    await cp.create("routine", { state: 1 });
    await cp.create("routine", { state: 2 }); // 1 goes to the trash
    assert.deepEqual(await cp.purge(), ["000000000001.routine"]);
    const three = await cp.create("routine", { state: 3 }); // 2 goes to the trash
    assert.equal(three.seq, 3);
    await flipByte(three.path, 1);
    await assert.rejects(cp.restore(), NoValidCheckpointError); // 3 is quarantined
    assert.equal((await cp.create("routine", { state: 4 })).seq, 4);
  });
});

Deno.test("list(), latest() and verify() read the live checkpoints", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { auto: false },
    });
    assert.deepEqual(await cp.list(), []);
    assert.equal(await cp.latest(), undefined);
    await cp.create("routine", { state: 1 });
    const rec = await cp.create("recovery", { state: 2 });
    const last = await cp.create("routine", { state: 3 });
    assert.equal((await cp.latest())?.id, last.id);
    assert.equal((await cp.latest("recovery"))?.id, rec.id);
    assert.deepEqual((await cp.list({ type: "routine" })).map((r) => r.seq), [
      3,
      1,
    ]);
    assert.deepEqual((await cp.list({ limit: 1 })).map((r) => r.seq), [3]);
    await flipByte(rec.path);
    const report = await cp.verify();
    assert.equal(report.ok, false);
    assert.equal(report.checked, 3);
    assert.deepEqual(report.problems.map((p) => p.id), [rec.id]);
    assert.ok(await exists(rec.path), "verify() changes nothing");
  });
});

Deno.test("nothing is written outside <root>/checkpoints/<agent>/ and <root>/locks/", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints({ agentId: "a", root });
    await cp.create("routine", { state: 1 });
    await cp.restore();
    await cp.recordMetric("m", 1);
    const top = [];
    for await (const e of Deno.readDir(root)) top.push(e.name);
    assert.deepEqual(top.sort(), ["checkpoints", "locks"]);
    const agents = [];
    for await (const e of Deno.readDir(join(root, "checkpoints"))) {
      agents.push(e.name);
    }
    assert.deepEqual(agents, ["a"]);
  });
});

Deno.test("read() runs every check restore runs but changes nothing: no quarantine, no restore count, no journal line, no apply", async () => {
  await inTempDir(async (root) => {
    const applied: unknown[] = [];
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      poisonAfter: 1,
      stateVersion: 2,
      migrate: (old, from) => ({ ...(old as State), notes: `from ${from}` }),
      validate: (s) => s.step >= 0 || "step is negative",
      apply: (s) => void applied.push(s),
    });
    const ref = await cp.create("routine", { state: { step: 1 } });
    const journal = await Deno.readTextFile(cp.journalPath);
    // Read twice with poisonAfter 1: no count, so never poisoned.
    assert.deepEqual(await cp.read(ref), { ref, state: { step: 1 } });
    assert.deepEqual((await cp.read("1")).state, { step: 1 });
    assert.deepEqual(applied, []);
    assert.equal(await Deno.readTextFile(cp.journalPath), journal);
    assert.equal(await exists(join(cp.dir, "restores.json")), false);
    assert.equal(await exists(join(cp.dir, "restores.jsonl")), false);

    const failures: Array<[string, (path: string) => Promise<void>, RegExp]> = [
      ["corrupt_checkpoint", (p) => truncateBy(p, 2), /truncated/],
      ["corrupt_checkpoint", (p) => flipByte(p), /checksum mismatch/],
      ["corrupt_checkpoint", (p) => replacePayload(p, "{no"), /invalid JSON/],
      [
        "unsupported_format",
        (p) => editHeader(p, (h) => (h.format = "sturdy.checkpoint/9")),
        /unsupported format/,
      ],
      [
        "invalid_state",
        (p) => replacePayload(p, '{"step":-1}'),
        /step is negative/,
      ],
    ];
    for (const [code, damage, reason] of failures) {
      const bad = await cp.create("routine", { state: { step: 2 } });
      await damage(bad.path);
      const err = await cp.read(bad.id).catch((e) => e);
      assert.ok(err instanceof CheckpointError, String(err));
      assert.equal(err.code, code);
      assert.match(err.message, reason);
      assert.ok(err.message.includes(bad.path), err.message);
      assert.equal(await exists(bad.path), true);
      await Deno.remove(bad.path);
    }
    // An old stateVersion is migrated, as restore would.
    const old = await cp.create("routine", { state: { step: 3 } });
    await editHeader(old.path, (h) => (h.stateVersion = 1));
    assert.deepEqual((await cp.read(old.id)).state, {
      step: 3,
      notes: "from 1",
    });
    assert.equal(await exists(join(cp.dir, "quarantine")), false);
    const missing = await cp.read("99").catch((e) => e);
    assert.equal(missing.code, "not_found");
  });
});

Deno.test("restores of growing and shrinking states, between creates, each get their own state", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<{ text: string; n: number }>({
      agentId: "a",
      root,
    });
    // Sizes around the buffer a manager keeps for reads and writes.
    const sizes = [10, 200_000, 3_000_000, 50, 1_100_000, 9_000_000, 5];
    const restored: Array<{ text: string; n: number }> = [];
    for (const [n, size] of sizes.entries()) {
      const state = { text: String.fromCharCode(97 + n).repeat(size), n };
      await cp.create("routine", { state });
      const first = await cp.restore();
      const second = await cp.restore();
      assert.deepEqual(first.state, state, `size ${size}`);
      assert.deepEqual(second.state, state, `size ${size}, again`);
      restored.push(first.state);
    }
    // No state changed under a later read.
    for (const [n, size] of sizes.entries()) {
      assert.equal(restored[n]!.text.length, size);
      assert.equal(restored[n]!.text[0], String.fromCharCode(97 + n));
    }
    assert.deepEqual((await cp.verify()).problems, []);
  });
});
