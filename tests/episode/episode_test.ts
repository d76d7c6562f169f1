import assert from "node:assert/strict";
import { join } from "node:path";
import {
  defineEpisode,
  Episode,
  EpisodeError,
  type EpisodeEvent,
  type EpisodeState,
} from "../../episode/mod.ts";
import { InstantClock } from "../recovery/_helpers.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

async function readState(root: string, id: string): Promise<EpisodeState> {
  return JSON.parse(
    await Deno.readTextFile(join(root, "episodes", id, "state.json")),
  );
}

Deno.test("an episode starts, persists its state and events, and ends", async () => {
  await inTempDir(async (root) => {
    const events: EpisodeEvent[] = [];
    const config = defineEpisode({ version: 1, episode: "life", root });
    const episode = new Episode(config, {
      clock: new InstantClock(),
      onEvent: (e) => events.push(e),
    });
    assert.equal(episode.status, "created");
    const { budget, previous } = await episode.start();
    assert.equal(previous, undefined);
    assert.match(budget, /episode aborts after 5 errors/);
    assert.equal((await readState(root, "life")).status, "running");
    const final = await episode.end("completed");
    assert.equal(final.status, "completed");
    assert.equal((await readState(root, "life")).status, "completed");
    assert.deepEqual(events.map((e) => e.event), ["started", "ended"]);
    const log = await Deno.readTextFile(
      join(root, "episodes/life/events.jsonl"),
    );
    assert.equal(log.trim().split("\n").length, 2);
    // Ended: the lock is free again, and a second end changes nothing.
    assert.equal((await episode.end("failed")).status, "completed");
    const again = new Episode(config);
    const started = await again.start();
    assert.equal(started.previous?.status, "completed");
    await again.end();
  });
});

Deno.test("two copies of one episode cannot run at once", async () => {
  await inTempDir(async (root) => {
    const config = defineEpisode({ version: 1, episode: "solo", root });
    await using first = new Episode(config);
    await first.start();
    await assert.rejects(
      new Episode(config).start(),
      (err: unknown) =>
        err instanceof EpisodeError && err.code === "episode_busy",
    );
  });
});

Deno.test("using an episode before start() is a clear error", async () => {
  const episode = new Episode(defineEpisode({ version: 1, episode: "e" }));
  await assert.rejects(
    episode.error(new Error("x")),
    /Cannot error: episode "e" has not been started; call start\(\) first/,
  );
});

Deno.test("the error threshold counts errors within its window and aborts", async () => {
  await inTempDir(async (root) => {
    const clock = new InstantClock(0);
    const episode = new Episode(
      defineEpisode({
        version: 1,
        episode: "t",
        root,
        limits: { errorThreshold: { count: 3, window: "60s" } },
      }),
      { clock },
    );
    await episode.start();
    await episode.error(new Error("a")); // t=0
    clock.t = 30_000;
    await episode.error(new Error("b"));
    clock.t = 70_000; // "a" has left the window
    assert.equal((await episode.error(new Error("c"))).thresholdReached, false);
    clock.t = 80_000;
    const r = await episode.error(new Error("token=hunter2 leaked"));
    assert.equal(r.thresholdReached, true);
    assert.equal(r.count, 4);
    assert.equal(episode.status, "aborted");
    assert.ok(episode.signal.aborted);
    const state = await readState(root, "t");
    assert.equal(state.status, "aborted");
    assert.match(
      state.reason!,
      /3 errors within 1m reached the threshold of 3/,
    );
    assert.ok(!state.lastError!.includes("hunter2"));
  });
});

Deno.test("onThreshold: escalate ends the episode escalated", async () => {
  await inTempDir(async (root) => {
    const episode = new Episode(defineEpisode({
      version: 1,
      episode: "t",
      root,
      limits: { errorThreshold: 1, onThreshold: "escalate" },
    }));
    await episode.start();
    await episode.error(new Error("a"));
    assert.equal(episode.status, "escalated");
  });
});

Deno.test("a crash loop is counted across starts and stops the episode after maxRecoveryAttempts", async () => {
  await inTempDir(async (root) => {
    const config = defineEpisode({
      version: 1,
      episode: "loop",
      root,
      limits: { maxRecoveryAttempts: 2 },
    });
    const dir = join(root, "episodes/loop");
    // A run that never ended: what a killed process leaves behind.
    const crash = async () => {
      const ep = new Episode(config);
      await ep.start();
      const state = await readState(root, "loop");
      await ep.end();
      await Deno.writeTextFile(
        join(dir, "state.json"),
        JSON.stringify({ ...state, status: "running" }),
      );
    };
    await crash();
    let ep = new Episode(config);
    await ep.start();
    assert.equal((await readState(root, "loop")).crashLoop.count, 1);
    let state = await readState(root, "loop");
    await ep.end();
    await Deno.writeTextFile(
      join(dir, "state.json"),
      JSON.stringify({ ...state, status: "running" }),
    );
    ep = new Episode(config);
    await ep.start(); // crash 2 of at most 2
    state = await readState(root, "loop");
    assert.equal(state.crashLoop.count, 2);
    await ep.end();
    await Deno.writeTextFile(
      join(dir, "state.json"),
      JSON.stringify({ ...state, status: "running" }),
    );
    await assert.rejects(
      new Episode(config).start(),
      (err: unknown) =>
        err instanceof EpisodeError && err.code === "crash_loop" &&
        /started 3 times in a row without ending \(limit 2\)/.test(err.message),
    );
    assert.equal((await readState(root, "loop")).status, "escalated");
    // Ending cleanly resets the count.
    ep = new Episode(config);
    await ep.start();
    await ep.end();
    assert.equal((await readState(root, "loop")).crashLoop.count, 0);
  });
});

Deno.test("an unhealthy agent is recovered after the cooldown, then fails once recoveries are spent", async () => {
  await inTempDir(async (root) => {
    const clock = new InstantClock(0);
    const events: string[] = [];
    const config = defineEpisode({
      version: 1,
      episode: "h",
      root,
      limits: {
        maxRecoveryAttempts: 2,
        recoveryCooldown: { initial: "1s", max: "4s", steps: 2 },
        errorThreshold: 10,
      },
      agents: {
        crawler: {
          health: {
            check: "heartbeat",
            heartbeatTimeout: "10s",
            interval: "5s",
            timeout: "1s",
            failureThreshold: 2,
          },
        },
      },
    });
    let recovered = 0;
    const episode = new Episode(config, {
      clock,
      healthChecks: "manual",
      onEvent: (e) => events.push(`${e.event}${e.agent ? `:${e.agent}` : ""}`),
    });
    await episode.start();
    episode.registerAgent("crawler", {
      heartbeatTimeout: 10_000,
      recover: () => {
        recovered++;
      },
    });
    episode.heartbeat("crawler");
    assert.equal((await episode.checkAgent("crawler"))?.healthy, true);
    clock.t += 20_000; // silent for 20 s
    assert.equal((await episode.checkAgent("crawler"))?.healthy, false);
    assert.equal(recovered, 0); // one failure is not enough
    await episode.checkAgent("crawler"); // second failure: recover
    assert.equal(recovered, 1);
    assert.ok(clock.sleeps.includes(1_000)); // the first cooldown
    let state = await readState(root, "h");
    assert.equal(state.agents["crawler"]!.recoveries, 1);
    assert.equal(state.agents["crawler"]!.health, "healthy");
    clock.t += 20_000;
    await episode.checkAgent("crawler");
    await episode.checkAgent("crawler");
    assert.equal(recovered, 2);
    assert.ok(clock.sleeps.includes(2_000)); // 1s → 4s in 2 steps: ×2
    clock.t += 20_000;
    await episode.checkAgent("crawler");
    await episode.checkAgent("crawler"); // recoveries spent
    assert.equal(recovered, 2);
    state = await readState(root, "h");
    assert.equal(state.agents["crawler"]!.health, "failed");
    assert.equal(state.errorCount, 1);
    assert.ok(events.includes("agent_failed:crawler"));
    assert.deepEqual(episode.stats().unhealthyAgents, ["crawler"]);
    await episode.end("failed");
  });
});

Deno.test("agent recoveries are persisted, so a restarted episode keeps counting", async () => {
  await inTempDir(async (root) => {
    const clock = new InstantClock(0);
    const config = defineEpisode({
      version: 1,
      episode: "p",
      root,
      limits: { maxRecoveryAttempts: 1, recoveryCooldown: "1s" },
      agents: {
        a: {
          health: {
            check: "heartbeat",
            heartbeatTimeout: "1s",
            interval: "10s",
            failureThreshold: 1,
          },
        },
      },
    });
    let ep = new Episode(config, { clock, healthChecks: "manual" });
    await ep.start();
    clock.t += 10_000;
    await ep.checkAgent("a");
    assert.equal(ep.stats().recoveries["a"], 1);
    await ep.end();
    ep = new Episode(config, { clock, healthChecks: "manual" });
    await ep.start();
    assert.equal(ep.stats().recoveries["a"], 1);
    clock.t += 10_000;
    await ep.checkAgent("a");
    assert.deepEqual(ep.stats().unhealthyAgents, ["a"]); // spent: failed
    await ep.end();
  });
});

Deno.test("a code health check that throws or hangs counts as a failure", async () => {
  await inTempDir(async (root) => {
    const episode = new Episode(
      defineEpisode({ version: 1, episode: "c", root }),
      { healthChecks: "manual" },
    );
    await episode.start();
    episode.registerAgent("db", {
      healthCheck: () => {
        throw new Error("connection refused");
      },
    });
    assert.deepEqual(await episode.checkAgent("db"), {
      healthy: false,
      detail: "connection refused",
    });
    episode.registerAgent("slow", {
      healthCheck: (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason))
        ),
    });
    assert.equal((await episode.checkAgent("slow"))?.healthy, false);
    assert.equal(await episode.checkAgent("nobody"), undefined);
    await episode.end();
  });
});

Deno.test("a command health check is healthy on exit 0", async () => {
  await inTempDir(async (root) => {
    const episode = new Episode(
      defineEpisode({
        version: 1,
        episode: "cmd",
        root,
        agents: {
          ok: { health: { check: "command", command: ["true"] } },
          bad: {
            health: {
              check: "command",
              command: ["sh", "-c", "echo down; exit 3"],
            },
          },
        },
      }, { baseDir: root }),
      { healthChecks: "manual" },
    );
    await episode.start();
    assert.equal((await episode.checkAgent("ok"))?.healthy, true);
    assert.deepEqual(await episode.checkAgent("bad"), {
      healthy: false,
      detail: "exit 3: down",
    });
    await episode.end();
  });
});

Deno.test("stop() aborts the episode's signal; dispose ends a running episode", async () => {
  await inTempDir(async (root) => {
    const config = defineEpisode({ version: 1, episode: "s", root });
    {
      await using episode = new Episode(config);
      await episode.start();
      await episode.stop("SIGTERM");
      assert.ok(episode.signal.aborted);
      assert.equal((await readState(root, "s")).status, "stopping");
      await episode.end("interrupted");
    }
    {
      await using episode = new Episode(config);
      await episode.start();
      await episode.recordFailedTask("x");
      assert.equal(episode.stats().failedTasks, 1);
    }
    assert.equal((await readState(root, "s")).status, "completed");
  });
});
