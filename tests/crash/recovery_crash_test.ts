// kill -9 of a process running a recovery task at every task-state
// transition (right after each log record), then a fresh process resumes
// it: the attempt count is right (a cut-short run is not charged), the
// finished work is never redone, and nothing is left behind.
import assert from "node:assert/strict";
import { join } from "node:path";
import { RecoveryManager } from "../../recovery/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const CHILD = new URL("./_recovery_child.ts", import.meta.url).pathname;

async function child(
  dir: string,
  killAt: number,
  mode?: string,
): Promise<Deno.CommandOutput> {
  return await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, dir, String(killAt), ...(mode ? [mode] : [])],
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("kill -9 at every task-state transition, then resume: 3 runs made, work done once", async () => {
  let total = 0;
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "data.txt"), "old");
    const clean = await child(dir, 0);
    assert.equal(clean.code, 0, new TextDecoder().decode(clean.stderr));
    total = JSON.parse(new TextDecoder().decode(clean.stdout)).events;
  });
  assert.ok(total >= 10, `only ${total} events`);
  for (let killAt = 1; killAt <= total; killAt++) {
    await inTempDir(async (dir) => {
      await Deno.writeTextFile(join(dir, "data.txt"), "old");
      const killed = await child(dir, killAt);
      assert.equal(killed.signal, "SIGKILL", `kill at ${killAt}`);
      const resumed = await child(dir, 0);
      assert.equal(
        resumed.code,
        0,
        `kill at ${killAt}: ${new TextDecoder().decode(resumed.stderr)}`,
      );
      assert.equal(
        JSON.parse(new TextDecoder().decode(resumed.stdout)).status,
        "succeeded",
      );
      const recovery = new RecoveryManager({ root: join(dir, ".sturdy") });
      const state = (await recovery.loadTaskState("job"))!;
      assert.equal(state.status, "succeeded", `kill at ${killAt}`);
      assert.equal(state.attemptsMade, 3, `kill at ${killAt}`);
      const runs = (await Deno.readTextFile(join(dir, "runs.txt"))).split("\n");
      assert.equal(
        runs.filter((l) => l === "done").length,
        1,
        `kill at ${killAt}: work redone: ${runs.join("|")}`,
      );
      assert.equal(await Deno.readTextFile(join(dir, "data.txt")), "new");
      // No snapshot left, and the log reads (a torn line is tolerated).
      assert.deepEqual(
        [...Deno.readDirSync(join(dir, ".sturdy/recovery/snapshots"))],
        [],
        `kill at ${killAt}`,
      );
      const log = await recovery.readLog("job");
      assert.equal(log.at(-1)!.event, "succeeded", `kill at ${killAt}`);
      const stats = await recovery.stats();
      assert.equal(stats.succeeded, 1);
      assert.equal(stats.recovered, 1);
    });
  }
});

Deno.test("a manual task waiting in one process is resolved from another", async () => {
  await inTempDir(async (dir) => {
    const running = child(dir, 0, "manual");
    const recovery = new RecoveryManager({ root: join(dir, ".sturdy") });
    const deadline = Date.now() + 20_000;
    // The escalation is written first (so a person sees it even if the
    // process dies), then the task state says it waits.
    while (
      (await recovery.loadTaskState("ask"))?.status !== "awaiting_manual"
    ) {
      assert.ok(Date.now() < deadline, "the task never started waiting");
      await new Promise((r) => setTimeout(r, 25));
    }
    const [open] = await recovery.escalations({ status: "open" });
    assert.equal(open!.type, "manual");
    assert.equal(open!.prompt, "Go ahead?");
    await recovery.resolve("ask", { action: "retry", by: "test", note: "ok" });
    const out = await running;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(result.status, "succeeded");
    assert.equal(result.value, "approved");
  });
});
