// Real processes contending for one lock (Deno.Command children running
// _holder_child.ts), including kill -9 and SIGSTOP/SIGCONT.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireLock,
  inspectLock,
  LockTimeoutError,
  tryAcquireLock,
} from "../../lock/mod.ts";
import { type ChildEvent, closeAll, Holder } from "./_children.ts";

const PROCESSES = 8;
const INCREMENTS = 200;

interface Counter {
  count: number;
  fences: number[];
}

/** Checks the hold intervals, ordered by fence, never overlap. */
function assertNoOverlap(events: ChildEvent[], killedAt: Map<number, number>) {
  const byFence = new Map<number, { acq?: ChildEvent; done?: ChildEvent }>();
  for (const e of events) {
    if (e.ev !== "acq" && e.ev !== "done") continue;
    const entry = byFence.get(e.fence!) ?? {};
    if (e.ev === "acq") {
      assert.equal(entry.acq, undefined, `fence ${e.fence} granted twice`);
      entry.acq = e;
    } else entry.done = e;
    byFence.set(e.fence!, entry);
  }
  const fences = [...byFence.keys()].sort((a, b) => a - b);
  for (let i = 1; i < fences.length; i++) {
    const previous = byFence.get(fences[i - 1]!)!;
    const next = byFence.get(fences[i]!)!;
    // A killed holder's interval ends at its kill.
    const end = previous.done?.t ?? killedAt.get(previous.acq!.pid);
    assert.ok(end !== undefined, `fence ${fences[i - 1]} never ended`);
    assert.ok(
      end <= next.acq!.t,
      `fence ${fences[i - 1]} held until ${end}, fence ${fences[i]} from ${
        next.acq!.t
      }`,
    );
  }
}

Deno.test({
  name:
    `8 processes x ${INCREMENTS} increments under one lock lose no update and never overlap`,
  async fn() {
    const root = await Deno.makeTempDir();
    const file = join(root, "counter.json");
    const holders = Array.from(
      { length: PROCESSES },
      () => new Holder({ root, name: "counter" }),
    );
    try {
      await Promise.all(holders.map((h) => h.next("ready")));
      const start = Date.now();
      await Promise.all(
        holders.map((h) => h.send(`inc ${INCREMENTS} ${file} 0`)),
      );
      await Promise.all(holders.map((h) => h.next("finished", 120_000)));
      const elapsed = Date.now() - start;
      const counter: Counter = JSON.parse(await Deno.readTextFile(file));
      assert.equal(counter.count, PROCESSES * INCREMENTS);
      assert.equal(counter.fences.length, PROCESSES * INCREMENTS);
      // Fences strictly increase in the order the updates happened.
      counter.fences.forEach((f, i) => {
        if (i > 0) assert.ok(f > counter.fences[i - 1]!);
      });
      assertNoOverlap(holders.flatMap((h) => h.events), new Map());
      console.log(
        `${PROCESSES * INCREMENTS} locked increments in ${elapsed} ms (${
          (PROCESSES * INCREMENTS * 1000 / elapsed).toFixed(0)
        }/s)`,
      );
    } finally {
      await closeAll(holders);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "holders killed with kill -9 lose no completed increment, double none, and are taken over within ttl + one heartbeat",
  async fn() {
    const root = await Deno.makeTempDir();
    const file = join(root, "counter.json");
    const ttl = 1_000;
    const heartbeat = 333;
    const perProcess = 100;
    const kills = 6;
    const killedAt = new Map<number, number>();
    const holders = Array.from(
      { length: PROCESSES },
      () => new Holder({ root, name: "counter", ttl, heartbeat }),
    );
    let acquisitions = 0;
    const killed: { pid: number; fence: number; at: number }[] = [];
    for (const h of holders) {
      h.onEvent = (e) => {
        if (e.ev !== "acq") return;
        acquisitions++;
        // Kill some holders in the middle of their hold.
        if (killed.length < kills && acquisitions % 40 === 0) {
          const at = Date.now();
          h.kill("SIGKILL");
          killedAt.set(h.pid, at);
          killed.push({ pid: h.pid, fence: e.fence!, at });
        }
      };
    }
    try {
      await Promise.all(holders.map((h) => h.next("ready")));
      await Promise.all(
        holders.map((h) => h.send(`inc ${perProcess} ${file} 2`)),
      );
      await Promise.all(holders.map(async (h) => {
        // A killed child never finishes; the others must.
        const status = await h.next("finished", 120_000).then(
          () => "finished",
          () => "ended",
        );
        if (status === "ended" && !killedAt.has(h.pid)) {
          throw new Error(`child ${h.pid} died: ${h.stderr}`);
        }
      }));
      assert.equal(killed.length, kills);
      const events = holders.flatMap((h) => h.events);
      const counter: Counter = JSON.parse(await Deno.readTextFile(file));
      const done = new Set(
        events.filter((e) => e.ev === "done").map((e) => e.fence!),
      );
      const granted = new Set(
        events.filter((e) => e.ev === "acq").map((e) => e.fence!),
      );
      const written = new Set(counter.fences);
      // None doubled: every fence appears at most once in the file.
      assert.equal(written.size, counter.fences.length);
      assert.equal(counter.count, counter.fences.length);
      // None lost: every completed increment is in the file.
      for (const f of done) {
        assert.ok(written.has(f), `lost update of fence ${f}`);
      }
      // Anything else in the file is a killed holder's (kill after write).
      const extra = counter.fences.filter((f) => !done.has(f));
      for (const f of extra) {
        assert.ok(killed.some((k) => k.fence === f), `unexplained fence ${f}`);
        assert.ok(granted.has(f));
      }
      assertNoOverlap(events, killedAt);
      // Each killed holder's lock was taken over quickly.
      const latencies = killed.flatMap((k) => {
        const next = events
          .filter((e) => e.ev === "acq" && e.fence! > k.fence)
          .sort((a, b) => a.fence! - b.fence!)[0];
        return next ? [next.t - k.at] : [];
      });
      for (const latency of latencies) {
        assert.ok(latency < ttl + heartbeat, `took ${latency} ms`);
      }
      console.log(
        `kill -9 x${kills}: final ${counter.count} (${done.size} confirmed + ${extra.length} by killed holders); takeover after ${
          latencies.join(", ")
        } ms`,
      );
    } finally {
      await closeAll(holders);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "many waiters facing one stale lock: exactly one wins, every time",
  async fn() {
    const root = await Deno.makeTempDir();
    const waiters = Array.from(
      { length: 6 },
      () => new Holder({ root, name: "race" }),
    );
    try {
      await Promise.all(waiters.map((h) => h.next("ready")));
      // The stale lock: a holder killed with kill -9 (then reaped).
      const first = new Holder({ root, name: "race" });
      await first.next("ready");
      await first.send("acquire 5000");
      let previousFence = (await first.next("acquired")).fence!;
      first.kill("SIGKILL");
      await first.close();
      for (let round = 0; round < 6; round++) {
        assert.equal((await inspectLock("race", { root }))?.stale, true);
        const marks = waiters.map((h) => h.events.length);
        const at = Date.now() + 150;
        await Promise.all(waiters.map((h) => h.send(`try-at ${at}`)));
        const results = await Promise.all(
          waiters.map((h, i) => h.next(["acquired", "busy"], 10_000, marks[i])),
        );
        const winners = results.filter((e) => e.ev === "acquired");
        assert.equal(
          winners.length,
          1,
          `round ${round}: ${JSON.stringify(results)}`,
        );
        assert.ok(winners[0]!.fence! > previousFence);
        previousFence = winners[0]!.fence!;
        // The winner dies holding the lock: the next round's stale lock.
        const winner = waiters[results.indexOf(winners[0]!)]!;
        await winner.send("crash");
        await winner.status();
        await winner.close();
        waiters[results.indexOf(winners[0]!)] = new Holder({
          root,
          name: "race",
        });
        await waiters[results.indexOf(winners[0]!)]!.next("ready");
      }
      const graveyards = [...Deno.readDirSync(join(root, "locks"))]
        .filter((e) => e.name.includes(".stale-"));
      assert.deepEqual(graveyards, []);
    } finally {
      await closeAll(waiters);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a paused holder that looks remote is taken over after its ttl and, resumed, reports its lock compromised",
  async fn() {
    const root = await Deno.makeTempDir();
    const holder = new Holder({
      root,
      name: "lease",
      ttl: 600,
      heartbeat: 200,
      host: "elsewhere",
    });
    try {
      await holder.next("ready");
      await holder.send("acquire 5000");
      const acquired = await holder.next("acquired");
      holder.kill("SIGSTOP");
      const stoppedAt = Date.now();
      // Not before its lease runs out...
      assert.equal(await tryAcquireLock("lease", { root, ttl: 600 }), null);
      await using lock = await acquireLock("lease", {
        root,
        ttl: 600,
        timeout: 5_000,
      });
      const waited = Date.now() - stoppedAt;
      assert.ok(waited >= 400, `taken after ${waited} ms`);
      assert.ok(lock.fence > acquired.fence!);
      holder.kill("SIGCONT");
      const compromised = await holder.next("compromised", 5_000);
      assert.equal(compromised.reason, "taken_over");
      assert.equal(compromised.aborted, true);
      // The successor is untouched by the old holder's resumption.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(lock.compromised, false);
      assert.equal(
        (await inspectLock("lease", { root }))?.owner?.token,
        lock.token,
      );
      await holder.send("release");
      assert.equal((await holder.next("released")).compromised, true);
      await lock.release();
    } finally {
      await holder.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a local holder stopped with SIGSTOP is never robbed: waiters time out naming it",
  async fn() {
    const root = await Deno.makeTempDir();
    const holder = new Holder({
      root,
      name: "paused",
      ttl: 300,
      heartbeat: 100,
    });
    try {
      await holder.next("ready");
      await holder.send("acquire 5000");
      const acquired = await holder.next("acquired");
      holder.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 600)); // twice its ttl
      const err = await acquireLock("paused", { root, ttl: 300, timeout: 800 })
        .catch((e) => e);
      assert.ok(err instanceof LockTimeoutError, String(err));
      assert.match(
        err.message,
        new RegExp(
          `held by pid ${holder.pid} on host ${Deno.hostname()} for \\d`,
        ),
      );
      assert.match(err.message, /kernel lock is held/);
      assert.equal(err.holder?.holder, "alive");
      holder.kill("SIGCONT");
      await holder.send("release");
      const released = await holder.next("released");
      assert.equal(released.compromised, false);
      await using lock = await acquireLock("paused", { root });
      assert.ok(lock.fence > acquired.fence!);
    } finally {
      try {
        holder.kill("SIGCONT");
      } catch { /* ended */ }
      await holder.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
