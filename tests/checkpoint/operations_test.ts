import assert from "node:assert/strict";
import { CheckpointError, openCheckpoints } from "../../checkpoint/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { flipByte } from "./_fixture.ts";

type State = { n: number };

Deno.test("beginOperation() records the operation open and pins its checkpoint", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      retention: { routineKeepLast: 1 },
    });
    const op = await cp.beginOperation("deploy", { n: 0 });
    assert.equal(op.id, "op-000000000001");
    assert.equal(op.ref.type, "pre_operation");
    assert.equal(op.ref.operationId, op.id);
    const [record] = await cp.listOperations();
    assert.equal(record!.status, "open");
    assert.equal(record!.checkpointId, op.ref.id);
    assert.equal(record!.pid, Deno.pid);
    for (let i = 1; i <= 4; i++) {
      await cp.create("routine", { state: { n: i } });
    }
    const plan = await cp.plan();
    assert.deepEqual(plan.decisions.find((d) => d.id === op.ref.id)!.reasons, [
      "pinned: operation op-000000000001 (deploy) is open",
    ]);
    assert.ok((await cp.list()).some((r) => r.id === op.ref.id));
    await op.complete("succeeded");
    assert.ok(
      !(await cp.list()).some((r) => r.id === op.ref.id),
      "trashed once completed",
    );
  });
});

Deno.test("a failed or abandoned operation's checkpoint is kept as recovery", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({ agentId: "a", root });
    const failed = await cp.beginOperation("one", { n: 1 });
    await failed.complete("failed");
    {
      await using _abandoned = await cp.beginOperation("two", { n: 2 });
    }
    for (let i = 0; i < 4; i++) await cp.create("routine", { state: { n: i } });
    const statuses = (await cp.listOperations()).map((o) => o.status);
    assert.deepEqual(statuses, ["failed", "abandoned"]);
    const plan = await cp.plan();
    const pre = plan.decisions.filter((d) => d.type === "pre_operation");
    assert.deepEqual(pre.map((d) => d.action), ["keep", "keep"]);
    assert.match(
      pre[0]!.reasons[0]!,
      /abandoned: kept as a recovery checkpoint within 7d/,
    );
  });
});

Deno.test("an operation left open by a crash stays open, pinned and listed", async () => {
  await inTempDir(async (root) => {
    {
      // The "crashed" process: begins, never completes, never disposes.
      const crashed = await openCheckpoints<State>({ agentId: "a", root });
      await crashed.beginOperation("migrate", { n: 1 });
    }
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      retention: { routineKeepLast: 1 },
    });
    for (let i = 0; i < 3; i++) await cp.create("routine", { state: { n: i } });
    const open = await cp.listOperations({ status: "open" });
    assert.equal(open.length, 1);
    assert.equal(open[0]!.name, "migrate");
    assert.ok((await cp.list()).some((r) => r.id === open[0]!.checkpointId));
    const drift = await cp.detectDrift();
    assert.ok(drift.findings.length >= 0); // drift rules see it (F2's rules decide the level)
    await cp.completeOperation(open[0]!.id, "abandoned");
    assert.equal((await cp.listOperations({ status: "open" })).length, 0);
    await assert.rejects(cp.completeOperation("op-x"), {
      code: "operation_not_found",
    });
    await assert.rejects(cp.completeOperation(open[0]!.id, "won" as "failed"), {
      code: "invalid_option",
    });
  });
});

Deno.test("complete() twice keeps the first outcome", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({ agentId: "a", root });
    const op = await cp.beginOperation("x", { n: 1 });
    await op.complete("failed");
    await op.complete("succeeded");
    await cp.completeOperation(op.id, "succeeded");
    assert.equal((await cp.listOperations())[0]!.status, "failed");
    assert.equal(op.completed, true);
  });
});

Deno.test("guard() completes as succeeded and returns fn's value", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      collect: () => ({ n: 1 }),
    });
    const value = await cp.guard(async (op) => {
      assert.equal((await cp.listOperations({ status: "open" }))[0]!.id, op.id);
      return 42;
    }, { name: "answer" });
    assert.equal(value, 42);
    assert.equal((await cp.listOperations())[0]!.status, "succeeded");
  });
});

Deno.test("guard() restores the pre_operation state on a throw and rethrows the same error", async () => {
  await inTempDir(async (root) => {
    let state: State = { n: 1 };
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      collect: () => structuredClone(state),
      apply: (restored) => {
        state = restored;
      },
    });
    const boom = new Error("boom");
    const err = await cp.guard(() => {
      state.n = 99;
      throw boom;
    }).catch((e) => e);
    assert.equal(err, boom);
    assert.deepEqual(state, { n: 1 });
    assert.equal((await cp.listOperations())[0]!.status, "failed");
  });
});

Deno.test("guard() reports both errors when the rollback fails too", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({ agentId: "a", root });
    const err = await cp.guard(async (op) => {
      await flipByte(op.ref.path, 1);
      throw new Error("work failed");
    }, { state: { n: 1 } }).catch((e) => e);
    assert.ok(err instanceof CheckpointError);
    assert.equal(err.code, "rollback_failed");
    assert.match(err.message, /failed \(work failed\), and rolling back/);
    assert.ok(err.cause instanceof AggregateError);
    assert.equal((await cp.listOperations())[0]!.status, "failed");
  });
});

Deno.test("beginOperation() refuses a bad name", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<State>({ agentId: "a", root });
    await assert.rejects(cp.beginOperation("../x", { n: 1 }), {
      code: "invalid_name",
    });
  });
});

Deno.test("autoCheckpoint() checkpoints on the clock's schedule without overlapping runs", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
    let running = 0;
    let maxRunning = 0;
    let step = 0;
    await using cp = await openCheckpoints<State>({
      agentId: "a",
      root,
      clock,
      collect: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return { n: ++step };
      },
    });
    const auto = cp.autoCheckpoint(60_000);
    for (let i = 0; i < 3; i++) {
      const before = auto.taken;
      await clock.tick(60_000);
      while (auto.taken === before) await new Promise((r) => setTimeout(r, 2));
    }
    await auto.stop();
    assert.equal(auto.taken, 3);
    assert.equal(maxRunning, 1);
    assert.deepEqual((await cp.list()).map((r) => r.seq), [3, 2, 1]);
    await clock.tick(600_000);
    assert.equal(auto.taken, 3, "stopped");
  });
});

Deno.test("autoCheckpoint() reports a failed run and goes on", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(0);
    let fail = true;
    const errors: unknown[] = [];
    await using cp = await openCheckpoints<unknown>({
      agentId: "a",
      root,
      clock,
      collect: () => (fail ? { bad: NaN } : { ok: 1 }),
    });
    const auto = cp.autoCheckpoint(1000, { onError: (e) => errors.push(e) });
    await clock.tick(1000);
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 2));
    fail = false;
    await clock.tick(1000);
    while (auto.taken === 0) await new Promise((r) => setTimeout(r, 2));
    auto[Symbol.dispose]();
    await auto.stop();
    assert.equal((errors[0] as CheckpointError).code, "invalid_state");
    assert.throws(() => cp.autoCheckpoint(0), { code: "invalid_option" });
  });
});

Deno.test("autoCheckpoint() needs collect()", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints({ agentId: "a", root });
    assert.throws(() => cp.autoCheckpoint(1000), {
      code: "invalid_option",
      message: /collect\(\)/,
    });
  });
});

Deno.test("disposing the manager stops its schedules", async () => {
  await inTempDir(async (root) => {
    const clock = new FakeClock(0);
    const cp = await openCheckpoints({
      agentId: "a",
      root,
      clock,
      collect: () => 1,
    });
    const auto = cp.autoCheckpoint(1000);
    await cp[Symbol.asyncDispose]();
    await clock.tick(5000);
    assert.equal(auto.taken, 0);
  });
});
