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
