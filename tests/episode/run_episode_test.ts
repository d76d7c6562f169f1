import assert from "node:assert/strict";
import { join } from "node:path";
import {
  defineEpisode,
  type EpisodeConfig,
  runEpisode,
  type RunEpisodeOptions,
} from "../../episode/mod.ts";
import { RecoveryManager } from "../../recovery/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const QUIET: RunEpisodeOptions = { checkpoints: false, stdout: "null" };

function episode(
  dir: string,
  tasks: unknown[],
  extra: Record<string, unknown> = {},
): EpisodeConfig {
  return defineEpisode({
    version: 1,
    episode: "ep",
    root: ".sturdy",
    limits: { taskRetryDelay: "10ms", errorThreshold: 50, ...extra },
    tasks,
  }, { baseDir: dir });
}

/** A shell line appending "<name>" to runs.txt. */
const log = (name: string) => `echo ${name} >> runs.txt`;

async function runs(dir: string): Promise<string[]> {
  return (await Deno.readTextFile(join(dir, "runs.txt")).catch(() => ""))
    .split("\n").filter(Boolean);
}

Deno.test("runEpisode() runs tasks in dependency order and blocks dependents of a failure", async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "c", sh: log("c"), needs: ["b"] },
      { id: "b", sh: log("b"), needs: ["a"] },
      { id: "a", sh: log("a") },
      { id: "broken", sh: "exit 9", strategy: "fail" },
      { id: "after-broken", sh: log("x"), needs: ["broken"] },
      { id: "after-after", sh: log("y"), needs: ["after-broken"] },
    ]);
    const summary = await runEpisode(config, QUIET);
    assert.deepEqual(await runs(dir), ["a", "b", "c"]);
    const by = Object.fromEntries(summary.tasks.map((t) => [t.id, t]));
    assert.equal(by["broken"]!.status, "failed");
    assert.equal(by["after-broken"]!.status, "blocked");
    assert.match(
      by["after-broken"]!.outcome,
      /needs "broken", which ended failed/,
    );
    assert.match(
      by["after-after"]!.outcome,
      /needs "after-broken", which was blocked/,
    );
    assert.equal(summary.status, "failed");
    assert.equal(summary.exitCode, 1);
    assert.match(
      summary.reason!,
      /broken, after-broken, after-after did not succeed/,
    );
    const written = JSON.parse(
      await Deno.readTextFile(join(summary.stateDir, "summary.json")),
    );
    assert.equal(written.status, "failed");
  });
});

Deno.test("retry, rollback, skip and escalate strategies each end their task as they should", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "data.json"), '{"v":1}');
    const config = episode(dir, [
      {
        id: "flaky",
        sh: `${log("flaky")}; [ $(grep -c flaky runs.txt) -ge 3 ]`,
        retry: 3,
      },
      {
        id: "migrate",
        sh: "echo '{\"v\":2' > data.json; echo junk > new.txt; exit 1",
        strategy: "rollback",
        files: ["data.json", "new.txt"],
        optional: true,
      },
      { id: "lint", sh: "exit 2", strategy: "skip", optional: true },
      { id: "publish", sh: "exit 1", strategy: "escalate" },
    ]);
    const summary = await runEpisode(config, QUIET);
    const by = Object.fromEntries(summary.tasks.map((t) => [t.id, t]));
    assert.equal(by["flaky"]!.status, "succeeded");
    assert.equal(by["flaky"]!.attempts, 3);
    assert.match(by["flaky"]!.outcome, /succeeded after 3 runs \(recovered\)/);
    assert.equal(by["migrate"]!.status, "rolled_back");
    assert.equal(await Deno.readTextFile(join(dir, "data.json")), '{"v":1}');
    await assert.rejects(Deno.stat(join(dir, "new.txt")));
    assert.equal(by["lint"]!.status, "skipped");
    assert.equal(by["publish"]!.status, "escalated");
    assert.equal(summary.status, "escalated");
    assert.equal(summary.exitCode, 3);
    assert.deepEqual(summary.escalations.map((e) => e.taskId), ["ep.publish"]);
    assert.deepEqual(summary.totals, {
      succeeded: 1,
      rolled_back: 1,
      skipped: 1,
      escalated: 1,
    });
  });
});

Deno.test("a lock shared by two tasks running at once keeps a read-modify-write safe", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "n"), "0");
    const bump = "n=$(cat n); sleep 0.2; echo $((n+1)) > n";
    const config = episode(dir, [
      { id: "a", sh: bump, lock: "counter" },
      { id: "b", sh: bump, lock: "counter" },
      { id: "c", sh: bump, lock: "counter" },
    ], { concurrency: 3 });
    const summary = await runEpisode(config, QUIET);
    assert.equal(summary.status, "completed");
    assert.equal((await Deno.readTextFile(join(dir, "n"))).trim(), "3");
  });
});

Deno.test("concurrency bounds how many tasks run at once", async () => {
  await inTempDir(async (dir) => {
    // Each task appends its start and end times (ns); appends are atomic.
    const line =
      'echo "s $(date +%s%N)" >> times; sleep 0.3; echo "e $(date +%s%N)" >> times';
    const config = episode(
      dir,
      ["a", "b", "c", "d"].map((id) => ({ id, sh: line })),
      { concurrency: 2 },
    );
    await runEpisode(config, QUIET);
    const marks = (await Deno.readTextFile(join(dir, "times"))).split("\n")
      .filter(Boolean).map((l) => l.split(" ") as [string, string])
      .sort((x, y) => Number(BigInt(x[1]) - BigInt(y[1])));
    let live = 0;
    let most = 0;
    for (const [kind] of marks) {
      live += kind === "s" ? 1 : -1;
      most = Math.max(most, live);
    }
    assert.equal(marks.length, 8);
    assert.equal(most, 2);
  });
});

Deno.test("resume skips tasks that succeeded; a fresh run starts over and supersedes escalations", async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "one", sh: log("one") },
      { id: "two", sh: `${log("two")}; [ -f ok ]`, strategy: "escalate" },
    ]);
    const first = await runEpisode(config, QUIET);
    assert.equal(first.status, "escalated");
    await Deno.writeTextFile(join(dir, "ok"), "");
    // Resume: "one" is not redone; "two" stays escalated until answered.
    const resumed = await runEpisode(config, { ...QUIET, resume: true });
    assert.equal(resumed.resumed, true);
    assert.deepEqual(resumed.tasks.map((t) => t.replayed), [true, true]);
    assert.deepEqual(await runs(dir), ["one", "two"]);
    const recovery = new RecoveryManager({ root: config.root });
    await recovery.resolve("ep.two", { action: "retry" });
    const answered = await runEpisode(config, { ...QUIET, resume: true });
    assert.equal(answered.status, "completed");
    assert.deepEqual(await runs(dir), ["one", "two", "two"]);
    // Fresh: everything runs again.
    await Deno.remove(join(dir, "ok"));
    const fresh = await runEpisode(config, QUIET);
    assert.equal(fresh.resumed, false);
    assert.deepEqual(await runs(dir), ["one", "two", "two", "one", "two"]);
    assert.equal(fresh.status, "escalated");
    const again = await runEpisode(config, QUIET);
    assert.equal(again.status, "escalated");
    // The superseded escalation is answered on the record, not lost.
    const notes = (await recovery.readLog("ep.two")).map((r) => r.note ?? "");
    assert.ok(
      notes.some((n) => /fail by episode: superseded by a fresh run/.test(n)),
      notes.join("\n"),
    );
  });
});

Deno.test("a task timeout kills the command and counts as a failure", async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "hang", sh: "sleep 30", timeout: "200ms", retry: 2 },
    ]);
    const started = Date.now();
    const summary = await runEpisode(config, QUIET);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(summary.tasks[0]!.status, "failed");
    assert.equal(summary.tasks[0]!.attempts, 2);
    assert.match(summary.tasks[0]!.outcome, /timed out after 200ms/);
  });
});

Deno.test("reaching the error threshold aborts the episode and leaves the rest not run", async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "a", sh: "exit 1", strategy: "fail" },
      { id: "b", sh: "exit 1", strategy: "fail" },
      { id: "c", sh: log("c"), needs: ["a"] },
      { id: "d", sh: log("d") },
    ], { errorThreshold: 2 });
    const summary = await runEpisode(config, QUIET);
    assert.equal(summary.status, "aborted");
    assert.equal(summary.exitCode, 1);
    const by = Object.fromEntries(summary.tasks.map((t) => [t.id, t.status]));
    assert.equal(by["d"], "not_run");
    assert.deepEqual(await runs(dir), []);
  });
});

Deno.test("a stop through the signal interrupts running tasks; resume finishes without redoing", async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "quick", sh: log("quick") },
      {
        id: "slow",
        sh: `${log("slow-start")}; sleep 5; ${log("slow-end")}`,
        needs: ["quick"],
      },
      { id: "last", sh: log("last"), needs: ["slow"] },
    ]);
    const controller = new AbortController();
    const stopped = runEpisode(config, {
      ...QUIET,
      signal: controller.signal,
      onTask: ({ event, task }) => {
        if (event === "started" && task.id === "slow") {
          setTimeout(() => controller.abort(), 300);
        }
      },
    });
    const summary = await stopped;
    assert.equal(summary.status, "interrupted");
    const by = Object.fromEntries(summary.tasks.map((t) => [t.id, t.status]));
    assert.deepEqual(by, {
      quick: "succeeded",
      slow: "interrupted",
      last: "not_run",
    });
    const recovery = new RecoveryManager({ root: config.root });
    const slow = (await recovery.loadTaskState("ep.slow"))!;
    assert.equal(slow.status, "interrupted");
    assert.equal(slow.attemptsMade, 0); // the cut-short run is not charged
    const resumed = await runEpisode(config, { ...QUIET, resume: true });
    assert.equal(resumed.status, "completed");
    assert.deepEqual(await runs(dir), [
      "quick",
      "slow-start",
      "slow-start",
      "slow-end",
      "last",
    ]);
  });
});

Deno.test("checkpoints are created along the way, per agent", async () => {
  await inTempDir(async (dir) => {
    const config = defineEpisode({
      version: 1,
      episode: "cp",
      root: ".sturdy",
      agents: { builder: {} },
      tasks: [
        { id: "a", sh: "true", agent: "builder" },
        { id: "b", sh: "true" },
      ],
    }, { baseDir: dir });
    await runEpisode(config, { stdout: "null" });
    const { openCheckpoints } = await import("../../checkpoint/mod.ts");
    await using builder = await openCheckpoints({
      agentId: "builder",
      root: config.root,
    });
    const restored = await builder.restore();
    assert.deepEqual(
      (restored.state as { lastTask: string }).lastTask,
      "a",
    );
    await using episodeCps = await openCheckpoints({
      agentId: "cp",
      root: config.root,
    });
    assert.equal((await episodeCps.list()).length, 1);
  });
});

Deno.test('"deno" as a task\'s program is the Deno running Sturdy', async () => {
  await inTempDir(async (dir) => {
    const config = episode(dir, [
      { id: "d", run: ["deno", "eval", "Deno.writeTextFileSync('x', '1')"] },
    ]);
    const summary = await runEpisode(config, QUIET);
    assert.equal(
      summary.tasks[0]!.status,
      "succeeded",
      summary.tasks[0]!.outcome,
    );
  });
});

Deno.test("an agent whose health check fails is recovered: its running task is stopped and run again", async () => {
  await inTempDir(async (dir) => {
    const config = defineEpisode({
      version: 1,
      episode: "heal",
      root: ".sturdy",
      limits: { recoveryCooldown: "10ms", errorThreshold: 50 },
      agents: {
        worker: {
          health: {
            check: "command",
            command: ["sh", "-c", "[ ! -f sick ]"],
            interval: "200ms",
            timeout: "150ms",
            failureThreshold: 1,
          },
        },
      },
      tasks: [{
        id: "job",
        agent: "worker",
        sh:
          "echo run >> runs.txt; if [ ! -f first ]; then touch first sick; sleep 30; fi; rm -f sick; echo done >> runs.txt",
      }],
    }, { baseDir: dir });
    const events: string[] = [];
    const summary = await runEpisode(config, {
      ...QUIET,
      onEvent: (e) => events.push(e.event),
    });
    assert.equal(summary.status, "completed", JSON.stringify(summary));
    assert.deepEqual(await runs(dir), ["run", "run", "done"]);
    assert.ok(events.includes("agent_unhealthy"));
    assert.ok(events.includes("agent_recovered"));
    assert.ok(events.includes("task_restarted"));
    const recovery = new RecoveryManager({ root: config.root });
    const state = (await recovery.loadTaskState("heal.job"))!;
    assert.equal(state.attemptsMade, 1); // the stopped run was not charged
  });
});
