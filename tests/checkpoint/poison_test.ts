import assert from "node:assert/strict";
import {
  CheckpointManager,
  NoValidCheckpointError,
  openCheckpoints,
} from "../../checkpoint/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { exists } from "./_fixture.ts";

Deno.test("a checkpoint restored poisonAfter times without a healthy sign is skipped as poisoned", async () => {
  await inTempDir(async (root) => {
    {
      await using cp = await openCheckpoints<number>({ agentId: "a", root });
      await cp.create("routine", { state: 1 });
      await cp.create("recovery", { state: 2 }); // the "bad" state
    }
    // Each "restart" is a new manager, as after a crash: counts live on disk.
    for (let attempt = 1; attempt <= 3; attempt++) {
      await using cp = await openCheckpoints<number>({ agentId: "a", root });
      const result = await cp.restore();
      assert.equal(result.state, 2, `attempt ${attempt}`);
    }
    await using cp = await openCheckpoints<number>({ agentId: "a", root });
    const result = await cp.restore();
    assert.equal(result.state, 1);
    assert.equal(result.skipped[0]!.id, "000000000002.recovery");
    assert.match(
      result.skipped[0]!.reason,
      /^poisoned: restored 3 times without the agent proving healthy/,
    );
    assert.equal(result.skipped[0]!.quarantined, false);
    assert.ok(
      await exists(`${cp.dir}/recovery/000000000002.ckpt`),
      "poisoned is skipped, not moved",
    );
    const events = (await cp.journal()).map((e) => e.event);
    assert.ok(events.includes("poisoned"));
  });
});

Deno.test("markHealthy() and a routine checkpoint reset the restore count", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 2,
    });
    await cp.create("recovery", { state: 1 });
    await cp.restore();
    await cp.markHealthy();
    await cp.restore();
    await cp.markHealthy();
    assert.equal((await cp.restore()).state, 1);
    const recovery = await cp.create("recovery", { state: 2 });
    await cp.restore();
    await cp.create("routine", { state: 3 }); // healthy again
    assert.equal((await cp.restore(recovery)).state, 2);
    assert.equal(
      (await cp.restore(recovery)).state,
      2,
      "explicitly named: not judged",
    );
  });
});

Deno.test("a poisoned checkpoint stays poisoned after a healthy sign", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 1,
      retention: { auto: false },
    });
    await cp.create("recovery", { state: 1 });
    await cp.create("recovery", { state: 2 });
    assert.equal((await cp.restore()).state, 2);
    assert.equal((await cp.restore()).state, 1); // 2 is poisoned now
    await cp.markHealthy();
    assert.equal((await cp.restore()).state, 1);
  });
});

Deno.test("when every checkpoint is poisoned, restore says so", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 1,
    });
    await cp.create("recovery", { state: 1 });
    await cp.restore();
    const err = await cp.restore().catch((e) => e);
    assert.ok(err instanceof NoValidCheckpointError);
    assert.match(err.message, /poisoned/);
  });
});

Deno.test("poisonAfter must be a positive whole number", () => {
  assert.throws(() => new CheckpointManager({ agentId: "a", poisonAfter: 0 }), {
    code: "invalid_option",
  });
});

Deno.test("restore counts from before the count log (restores.json alone) still count", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 3,
    });
    const ref = await cp.create("recovery", { state: 1 });
    // As an earlier version left it: counts in restores.json, no epoch.
    await Deno.writeTextFile(
      `${cp.dir}/restores.json`,
      JSON.stringify({
        format: "sturdy.restores/1",
        counts: { [ref.id]: { count: 2, firstAt: 1, lastAt: 2 } },
        poisoned: {},
      }),
    );
    assert.equal((await cp.restore()).state, 1); // the third
    const err = await cp.restore().catch((e) => e);
    assert.ok(err instanceof NoValidCheckpointError);
    assert.match(err.message, /poisoned: restored 3 times/);
  });
});

Deno.test("a restore appends one count line; a healthy sign folds them away, and a torn or foreign line counts for nothing", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 3,
    });
    const ref = await cp.create("recovery", { state: 1 });
    const log = `${cp.dir}/restores.jsonl`;
    await cp.restore();
    await cp.restore();
    const lines = (await Deno.readTextFile(log)).trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).id),
      [ref.id, ref.id],
    );
    assert.equal(
      await exists(`${cp.dir}/restores.json`),
      false,
      "a restore writes no file but its line",
    );
    // A torn line (a crash mid-append) and a line of another epoch.
    await Deno.writeTextFile(
      log,
      JSON.stringify({ epoch: "other", id: ref.id, at: 1 }) + "\n" +
        '{"epoch":"","id":"' + ref.id,
      { append: true },
    );
    assert.equal((await cp.restore()).state, 1, "still the third restore");
    assert.ok(
      (await cp.restore().catch((e) => e)) instanceof NoValidCheckpointError,
    );
    // Healthy: counts and log folded into a new base; poisoned stays.
    await cp.markHealthy();
    assert.equal(await exists(log), false);
    const base = JSON.parse(await Deno.readTextFile(`${cp.dir}/restores.json`));
    assert.deepEqual(base.counts, {});
    assert.ok(base.poisoned[ref.id]);
    assert.match(base.epoch, /^[0-9a-f]{16}$/);
    // Lines written against the old epoch (by a restore racing the fold)
    // do not count under the new one.
    const other = await cp.create("recovery", { state: 2 });
    await Deno.writeTextFile(
      log,
      [1, 2, 3].map((at) => JSON.stringify({ epoch: "", id: other.id, at }))
        .join("\n") + "\n",
    );
    assert.equal((await cp.restore()).state, 2);
  });
});

Deno.test("a count log grown large is folded by a restore, keeping every count", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      poisonAfter: 1_000_000,
    });
    const ref = await cp.create("recovery", { state: 1 });
    const line = JSON.stringify({ epoch: "", id: ref.id, at: 1 }) + "\n";
    await Deno.writeTextFile(
      `${cp.dir}/restores.jsonl`,
      line.repeat(Math.ceil(70_000 / line.length)),
    );
    const before = Math.ceil(70_000 / line.length);
    await cp.restore();
    const log = await Deno.readTextFile(`${cp.dir}/restores.jsonl`).catch(
      () => "",
    );
    assert.ok(log.length < 1_000, "folded");
    const base = JSON.parse(await Deno.readTextFile(`${cp.dir}/restores.json`));
    assert.equal(base.counts[ref.id].count, before + 1);
    const events = await cp.journal();
    assert.equal(events.at(-1)!.restores, before + 1);
  });
});

Deno.test("a checkpoint left for a newer program is never counted towards poison", async () => {
  await inTempDir(async (root) => {
    {
      await using v1 = await openCheckpoints<string>({ agentId: "a", root });
      await v1.create("routine", { state: "v1" });
      await using v2 = await openCheckpoints<string>({
        agentId: "a",
        root,
        stateVersion: 2,
        migrate: (s) => s as string,
      });
      await v2.create("recovery", { state: "v2" });
    }
    // The old program skips the newer file again and again (it is not
    // damaged, so it stays in place) ...
    for (let i = 0; i < 3; i++) {
      await using old = await openCheckpoints<string>({
        agentId: "a",
        root,
        poisonAfter: 10,
      });
      const result = await old.restore();
      assert.equal(result.state, "v1");
      assert.match(result.skipped[0]!.reason, /newer than this program's/);
    }
    // ... and the newer program still gets it: those skips were no
    // restores (one count would poison it here).
    await using v2 = await openCheckpoints<string>({
      agentId: "a",
      root,
      stateVersion: 2,
      migrate: (s) => s as string,
      poisonAfter: 1,
    });
    const result = await v2.restore();
    assert.equal(result.state, "v2");
    assert.deepEqual(result.skipped, []);
  });
});
