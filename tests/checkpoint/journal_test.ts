import assert from "node:assert/strict";
import { openCheckpoints } from "../../checkpoint/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { flipByte } from "./_fixture.ts";

Deno.test("journal.jsonl records create, restore, fallback, quarantine, trash, prune, purge and undelete", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      retention: { routineKeepLast: 1, trashTtlMs: Infinity },
    });
    await cp.create("routine", { state: 1 });
    const two = await cp.create("routine", { state: 2 });
    await cp.undelete("1");
    await flipByte(two.path, 1);
    await cp.restore();
    await cp.prune();
    await cp.create("routine", { state: 3 });
    await cp.purge();
    const events = await cp.journal();
    assert.deepEqual(events.map((e) => e.event), [
      "create",
      "create",
      "trash",
      "prune",
      "undelete",
      "quarantine",
      "fallback",
      "restore",
      "prune",
      "create",
      "healthy",
      "trash",
      "prune",
      "purge",
    ]);
    for (const e of events) assert.ok(!Number.isNaN(Date.parse(e.at)));
    assert.equal(events[5]!.id, two.id);
    assert.match(String(events[5]!.reason), /checksum mismatch/);
    assert.deepEqual(events[13]!.ids, ["000000000001.routine"]);
    assert.equal((await cp.journal({ limit: 2 })).length, 2);
    const lines = (await Deno.readTextFile(cp.journalPath)).trimEnd().split(
      "\n",
    );
    assert.equal(lines.length, events.length);
  });
});

Deno.test("a torn last journal line does not break reading or appending", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({ agentId: "a", root });
    await cp.create("routine", { state: 1 });
    await Deno.writeTextFile(cp.journalPath, '{"at":"2026', { append: true });
    assert.equal((await cp.journal()).length, 1);
    await cp.create("routine", { state: 2 });
    assert.ok(
      (await cp.journal()).filter((e) => e.event === "create").length >= 1,
    );
  });
});

Deno.test("operations and health are journaled too", async () => {
  await inTempDir(async (root) => {
    await using cp = await openCheckpoints<number>({ agentId: "a", root });
    await cp.create("recovery", { state: 1 });
    await cp.restore();
    await cp.markHealthy();
    const op = await cp.beginOperation("x", 2);
    await op.complete();
    const events = (await cp.journal()).map((e) => e.event);
    assert.deepEqual(events, [
      "create",
      "restore",
      "healthy",
      "operation_begin",
      "create",
      "operation_complete",
    ]);
  });
});
