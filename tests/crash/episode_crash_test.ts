// The episode runner under signals and kill -9, run as users run it: the
// CLI in a subprocess under the compile task's permission flags.
import assert from "node:assert/strict";
import { join } from "node:path";
import { RecoveryManager } from "../../recovery/mod.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const decoder = new TextDecoder();

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path).catch(() => "")).split("\n")
    .filter(Boolean);
}

async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Freezes `pid`, then SIGKILLs it and every process under it at once. */
async function killTree(pid: number): Promise<void> {
  try {
    Deno.kill(pid, "SIGSTOP"); // it can start nothing more
  } catch {
    return; // it already finished
  }
  const out = await new Deno.Command("ps", {
    args: ["-eo", "pid=,ppid="],
  }).output();
  const children = new Map<number, number[]>();
  for (const line of decoder.decode(out.stdout).trim().split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const tree: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      tree.push(c);
      walk(c);
    }
  };
  walk(pid);
  for (const p of [pid, ...tree]) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch { /* already gone */ }
  }
}

const SLOW_EPISODE = `version: 1
episode: sig
root: .sturdy
shutdown: { gracePeriod: 10s }
tasks:
  - id: quick
    sh: echo quick >> runs.txt
  - id: slow
    sh: echo slow-start >> runs.txt; sleep 2; echo slow-end >> runs.txt
    needs: [quick]
  - id: last
    sh: echo last >> runs.txt
    needs: [slow]
`;

Deno.test("SIGTERM mid-task: state flushed, exit 143, and --resume finishes the rest without redoing", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "episode.yaml"), SLOW_EPISODE);
    const child = await spawnCli(["episode", "run", "episode.yaml"], { cwd });
    await waitFor(
      async () => (await lines(join(cwd, "runs.txt"))).includes("slow-start"),
      "the slow task to start",
    );
    child.kill("SIGTERM");
    const out = await child.output();
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 143, stderr);
    assert.match(stderr, /SIGTERM: stopping \(a second signal exits at once\)/);
    assert.match(
      decoder.decode(out.stdout),
      /Episode sig interrupted \(SIGTERM\)/,
    );
    const state = JSON.parse(
      await Deno.readTextFile(join(cwd, ".sturdy/episodes/sig/state.json")),
    );
    assert.equal(state.status, "interrupted");
    const recovery = new RecoveryManager({ root: join(cwd, ".sturdy") });
    const slow = (await recovery.loadTaskState("sig.slow"))!;
    assert.equal(slow.status, "interrupted");
    assert.equal(slow.attemptsMade, 0);
    const resumed = await runCli(
      ["episode", "run", "episode.yaml", "--resume"],
      { cwd },
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stdout,
      /quick\s+succeeded.*in an earlier run; not redone/,
    );
    assert.deepEqual(await lines(join(cwd, "runs.txt")), [
      "quick",
      "slow-start",
      "slow-start",
      "slow-end",
      "last",
    ]);
  });
});

Deno.test("a second signal exits at once, even while a task ignores SIGTERM", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(
      join(cwd, "episode.yaml"),
      `version: 1
episode: stubborn
tasks:
  - id: deaf
    sh: "trap '' TERM; echo started >> runs.txt; sleep 20"
`,
    );
    const child = await spawnCli(["episode", "run", "episode.yaml"], { cwd });
    await waitFor(
      async () => (await lines(join(cwd, "runs.txt"))).length > 0,
      "the task to start",
    );
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    const second = Date.now();
    child.kill("SIGTERM");
    // The process's exit, not its pipes: the deaf command still holds them.
    const status = await child.status;
    assert.equal(status.code, 143);
    assert.ok(
      Date.now() - second < 3_000,
      "the second signal did not exit at once",
    );
    // The deaf task's command is still alive; end it.
    await new Deno.Command("pkill", { args: ["-f", "sleep 20"] }).output();
    await child.stdout.cancel();
    await child.stderr.cancel();
  });
});

const TASKS = ["t1", "t2", "t3", "t4", "t5", "t6"];

Deno.test("kill -9 of the runner at random points, then --resume: every task done, finished ones never redone", async () => {
  const rounds = Deno.env.get("STURDY_TORTURE") === "1" ? 30 : 6;
  let duplicates = 0;
  for (let round = 0; round < rounds; round++) {
    await inTempDir(async (cwd) => {
      const tasks = TASKS.map((id, i) =>
        `  - id: ${id}\n    sh: echo start ${id} >> runs.txt; sleep 0.3; echo done ${id} >> runs.txt\n${
          i > 1 ? `    needs: [${TASKS[i - 2]}]\n` : ""
        }`
      ).join("");
      await Deno.writeTextFile(
        join(cwd, "episode.yaml"),
        `version: 1\nepisode: k\nlimits: { concurrency: 2 }\ntasks:\n${tasks}`,
      );
      const child = await spawnCli(["episode", "run", "episode.yaml"], { cwd });
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 1_200));
      await killTree(child.pid);
      await child.output();
      const resumed = await runCli(
        ["episode", "run", "episode.yaml", "--resume"],
        { cwd },
      );
      assert.equal(
        resumed.code,
        0,
        `round ${round}: ${resumed.stdout}\n${resumed.stderr}`,
      );
      const runs = await lines(join(cwd, "runs.txt"));
      const recovery = new RecoveryManager({ root: join(cwd, ".sturdy") });
      for (const id of TASKS) {
        const state = (await recovery.loadTaskState(`k.${id}`))!;
        assert.equal(state.status, "succeeded", `round ${round} ${id}`);
        const done = runs.filter((l) => l === `done ${id}`).length;
        assert.ok(done >= 1, `round ${round}: ${id} never finished`);
        // Once its success is on record, a task never starts again.
        const log = await recovery.readLog(`k.${id}`);
        const success = log.findIndex((r) => r.event === "succeeded");
        assert.ok(success >= 0, `round ${round} ${id}: success not logged`);
        assert.equal(
          log.slice(success + 1).length,
          0,
          `round ${round} ${id}: ${
            log.map((r) => `${r.execution}:${r.event}`).join(" ")
          }\n${resumed.stdout}`,
        );
        if (done > 1) {
          // Only possible when the kill fell between the command's exit
          // and the record of its success: that run was never recorded.
          assert.equal(done, 2, `round ${round} ${id}`);
          assert.equal(
            log.filter((r) => r.event === "succeeded").length,
            1,
          );
          duplicates++;
        }
      }
    });
  }
  // Reported, not asserted: the at-least-once window is a few ms per task.
  if (duplicates > 0) {
    console.log(`${duplicates} task(s) ran twice across ${rounds} kills`);
  }
});
