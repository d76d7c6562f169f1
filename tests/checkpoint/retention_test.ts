import assert from "node:assert/strict";
import {
  type CheckpointType,
  openCheckpoints,
  planRetention,
  resolveRetentionPolicy,
  type RetentionCandidate,
  type RetentionPolicy,
} from "../../checkpoint/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { flipByte } from "./_fixture.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** mulberry32: a small seeded PRNG so every failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomHistory(random: () => number): {
  history: RetentionCandidate[];
  policy: RetentionPolicy;
  now: number;
} {
  const types: CheckpointType[] = ["routine", "pre_operation", "recovery"];
  const statuses = ["open", "succeeded", "failed", "abandoned"] as const;
  const count = Math.floor(random() * 30);
  let t = Date.parse("2026-01-01T00:00:00Z");
  const history: RetentionCandidate[] = [];
  for (let seq = 1; seq <= count; seq++) {
    // Mostly forward in time, sometimes a big gap, sometimes skew backwards.
    const r = random();
    t += r < 0.1
      ? -Math.floor(random() * 3 * DAY)
      : r < 0.3
      ? Math.floor(random() * 10 * DAY)
      : Math.floor(random() * HOUR);
    const type = types[Math.floor(random() * types.length)]!;
    const candidate: RetentionCandidate = {
      id: `c${seq}`,
      seq,
      type,
      createdAt: random() < 0.5 ? t : new Date(t).toISOString(),
    };
    const v = random();
    if (v < 0.1) candidate.valid = false;
    else if (v < 0.3) candidate.valid = true;
    if (type === "pre_operation" && random() < 0.85) {
      candidate.operation = {
        id: `op-${seq}`,
        status: statuses[Math.floor(random() * statuses.length)]!,
      };
    }
    history.push(candidate);
  }
  // Shuffle: the plan must not depend on input order.
  for (let i = history.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [history[i], history[j]] = [history[j]!, history[i]!];
  }
  const policy: RetentionPolicy = {
    routineKeepLast: Math.floor(random() * 5),
    recoveryKeepWithinMs: Math.floor(random() * 10 * DAY),
    recoveryKeepAtLeast: Math.floor(random() * 3),
    relativeTo: random() < 0.8 ? "newest" : "now",
  };
  const now = t + Math.floor((random() - 0.2) * 365 * DAY);
  return { history, policy, now };
}

Deno.test("planRetention() keeps its invariants over 1000 random histories", () => {
  for (let seed = 1; seed <= 1000; seed++) {
    const random = prng(seed);
    const { history, policy, now } = randomHistory(random);
    const plan = planRetention(history, policy, now);
    const at = `seed ${seed}`;
    const bySeq = [...history].sort((a, b) => b.seq - a.seq);
    // Every checkpoint gets exactly one decision with at least one reason.
    assert.equal(plan.decisions.length, history.length, at);
    assert.deepEqual(
      plan.decisions.map((d) => d.seq),
      bySeq.map((c) => c.seq),
      at,
    );
    for (const d of plan.decisions) assert.ok(d.reasons.length > 0, at);
    assert.equal(plan.keep.length + plan.trash.length, history.length, at);
    const kept = new Set(plan.keep);
    // 1. The newest checkpoint not known invalid is kept.
    const newestValid = bySeq.find((c) => c.valid !== false);
    if (newestValid) {
      assert.ok(kept.has(newestValid.id), `${at}: newest valid trashed`);
    }
    // 2. Open operations' checkpoints are kept.
    for (const c of history) {
      if (c.operation?.status === "open") {
        assert.ok(kept.has(c.id), `${at}: open pin trashed`);
      }
    }
    // 3. At least recoveryKeepAtLeast recovery checkpoints stay.
    const recoveries = history.filter((c) => c.type === "recovery").length;
    const keptRecoveries = history.filter((c) =>
      c.type === "recovery" && kept.has(c.id)
    ).length;
    assert.ok(
      keptRecoveries >= Math.min(recoveries, policy.recoveryKeepAtLeast!),
      `${at}: recovery below keepAtLeast`,
    );
    // 4. With relativeTo "newest", the time of "now" does not matter.
    if (policy.relativeTo === "newest") {
      const later = planRetention(history, policy, now + 1000 * DAY);
      assert.deepEqual(later.keep, plan.keep, `${at}: depends on now`);
    }
    // 5. Applying the plan and planning again trashes nothing more.
    const remaining = history.filter((c) => kept.has(c.id));
    const again = planRetention(remaining, policy, now);
    assert.deepEqual(again.trash, [], `${at}: not idempotent`);
    // Routine checkpoints kept never exceed keepLast, except the newest valid.
    const keptRoutine = plan.decisions.filter((d) =>
      d.type === "routine" && d.action === "keep" && d.id !== newestValid?.id
    ).length;
    assert.ok(
      keptRoutine <= policy.routineKeepLast!,
      `${at}: too many routine kept`,
    );
  }
});

Deno.test("planRetention() explains every decision with the default policy", () => {
  const t = (days: number) => Date.parse("2026-01-10T00:00:00Z") + days * DAY;
  const plan = planRetention(
    [
      { id: "r1", seq: 1, type: "routine", createdAt: t(-30) },
      { id: "v2", seq: 2, type: "recovery", createdAt: t(-20) },
      { id: "v3", seq: 3, type: "recovery", createdAt: t(-8) },
      { id: "r4", seq: 4, type: "routine", createdAt: t(-3) },
      {
        id: "p5",
        seq: 5,
        type: "pre_operation",
        createdAt: t(-2),
        operation: { id: "op-5", name: "deploy", status: "failed" },
      },
      {
        id: "p6",
        seq: 6,
        type: "pre_operation",
        createdAt: t(-1),
        operation: { id: "op-6", status: "succeeded" },
      },
      { id: "r7", seq: 7, type: "routine", createdAt: t(0) },
      { id: "r8", seq: 8, type: "routine", createdAt: t(0), valid: false },
    ],
    undefined,
    t(400),
  );
  const reasons = Object.fromEntries(
    plan.decisions.map((d) => [d.id, [d.action, ...d.reasons]]),
  );
  assert.deepEqual(reasons, {
    r8: ["trash", "fails verification"],
    r7: ["keep", "newest valid checkpoint", "one of the last 3 routine (#1)"],
    p6: [
      "trash",
      "operation op-6 succeeded: its pre_operation checkpoint is no longer needed",
    ],
    p5: [
      "keep",
      "operation op-5 (deploy) failed: kept as a recovery checkpoint within 7d of newest (age 2d)",
    ],
    r4: ["keep", "one of the last 3 routine (#2)"],
    v3: ["keep", "one of the newest 1 recovery (keep at least 1)"],
    v2: ["trash", "recovery older than 7d (age 20d)"],
    r1: ["keep", "one of the last 3 routine (#3)"],
  });
  assert.equal(
    plan.reference,
    t(0),
    "measured from the newest valid checkpoint, not from now",
  );
});

Deno.test("planRetention() never ages out everything of an agent that stopped long ago", () => {
  const history: RetentionCandidate[] = Array.from({ length: 5 }, (_, i) => ({
    id: `v${i}`,
    seq: i + 1,
    type: "recovery",
    createdAt: i * HOUR,
  }));
  const plan = planRetention(
    history,
    { recoveryKeepAtLeast: 0 },
    10 * 365 * DAY,
  );
  assert.deepEqual(plan.trash, []);
  const erasure = planRetention(history, {
    recoveryKeepAtLeast: 0,
    relativeTo: "now",
  }, 10 * 365 * DAY);
  assert.deepEqual(erasure.keep, ["v4"], "even erasure keeps the newest valid");
});

Deno.test("resolveRetentionPolicy() refuses nonsense", () => {
  assert.throws(() => resolveRetentionPolicy({ routineKeepLast: -1 }), {
    code: "invalid_option",
  });
  assert.throws(() => resolveRetentionPolicy({ recoveryKeepAtLeast: 1.5 }), {
    code: "invalid_option",
  });
  assert.throws(() => resolveRetentionPolicy({ recoveryKeepWithinMs: NaN }), {
    code: "invalid_option",
  });
  assert.throws(() => resolveRetentionPolicy({ relativeTo: "then" as "now" }), {
    code: "invalid_option",
  });
  assert.equal(
    resolveRetentionPolicy({ trashTtlMs: Infinity }).trashTtlMs,
    Infinity,
  );
});

Deno.test("create() applies retention: routine keeps the last 3, the rest goes to trash/", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { trashTtlMs: Infinity },
    });
    for (let i = 1; i <= 5; i++) await cp.create("routine", { state: i });
    assert.deepEqual((await cp.list()).map((r) => r.seq), [5, 4, 3]);
    const trash = [...Deno.readDirSync(`${cp.dir}/trash`)].map((e) => e.name)
      .sort();
    assert.equal(trash.length, 2);
    assert.match(trash[0]!, /^000000000001\.routine\.\d+\.ckpt$/);
    const events = await cp.journal();
    const trashed = events.filter((e) => e.event === "trash");
    assert.deepEqual(trashed.map((e) => [e.id, e.reason]), [
      ["000000000001.routine", "routine beyond the last 3"],
      ["000000000002.routine", "routine beyond the last 3"],
    ]);
  });
});

Deno.test("retention keeps the newest valid checkpoint even when newer ones are damaged", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { routineKeepLast: 1, auto: false },
    });
    await cp.create("routine", { state: 1 });
    const good = await cp.create("routine", { state: 2 });
    const bad = await cp.create("routine", { state: 3 });
    await flipByte(bad.path, 1);
    const plan = await cp.prune();
    assert.ok(
      plan.keep.includes(good.id),
      "the newest checkpoint that verifies is kept",
    );
    assert.deepEqual(plan.decisions.find((d) => d.id === good.id)!.reasons, [
      "newest valid checkpoint",
      "one of the last 1 routine (#1)",
    ]);
    assert.equal((await cp.restore()).state, 2);
  });
});

Deno.test("prune({ dryRun }) changes nothing; purge() and undelete() work on the trash", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      clock,
      retention: { auto: false, trashTtlMs: DAY },
    });
    for (let i = 1; i <= 4; i++) await cp.create("routine", { state: i });
    const dry = await cp.prune({ dryRun: true });
    assert.deepEqual(dry.trash, ["000000000001.routine"]);
    assert.equal((await cp.list()).length, 4);
    await cp.prune();
    assert.equal((await cp.list()).length, 3);
    const back = await cp.undelete("1");
    assert.equal(back.seq, 1);
    assert.equal((await cp.restore(back)).state, 1);
    await cp.prune();
    await clock.tick(HOUR);
    assert.deepEqual(await cp.purge({ olderThan: 2 * HOUR }), []);
    assert.deepEqual(await cp.purge({ olderThan: HOUR }), [
      "000000000001.routine",
    ]);
    await assert.rejects(cp.undelete("1"), { code: "not_found" });
    await assert.rejects(cp.purge({ olderThan: -1 }), {
      code: "invalid_option",
    });
  });
});

Deno.test("prune() deletes trash older than trashTtlMs", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      clock,
      retention: { routineKeepLast: 1, trashTtlMs: DAY },
    });
    await cp.create("routine", { state: 1 });
    await cp.create("routine", { state: 2 });
    assert.equal([...Deno.readDirSync(`${cp.dir}/trash`)].length, 1);
    await clock.tick(DAY + 1);
    await cp.create("routine", { state: 3 });
    const left = [...Deno.readDirSync(`${cp.dir}/trash`)].map((e) => e.name);
    assert.equal(left.length, 1, "the day-old one is gone, the new one stays");
    assert.match(left[0]!, /^000000000002/);
  });
});

Deno.test("undelete() brings a quarantined checkpoint back once its cause is fixed", async () => {
  await inTempDir(async (root) => {
    let strict = true;
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      validate: (n) => !strict || n < 2,
    });
    await cp.create("routine", { state: 1 });
    strict = false;
    const two = await cp.create("routine", { state: 2 });
    strict = true;
    assert.equal((await cp.restore()).state, 1);
    strict = false;
    await cp.undelete(two.id);
    assert.equal((await cp.restore()).state, 2);
  });
});
