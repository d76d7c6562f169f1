// The health-check scheduler on its own, with a manual clock: checks run
// on their interval, never overlap, are cut off at their timeout, and only
// count after the start period.
import assert from "node:assert/strict";
import { AgentMonitor, type HealthResult } from "../../episode/_health.ts";
import { FakeClock, flush } from "../_helpers/fake_clock.ts";

const timing = {
  intervalMs: 1_000,
  timeoutMs: 300,
  failureThreshold: 2,
  startPeriodMs: 0,
};

Deno.test("checks run once per interval and a slow check never overlaps the next", async () => {
  const clock = new FakeClock();
  let running = 0;
  let most = 0;
  let calls = 0;
  const monitor = new AgentMonitor(
    async () => {
      calls++;
      running++;
      most = Math.max(most, running);
      await clock.sleep(250); // slow, but within the timeout
      running--;
      return { healthy: true, detail: "ok" };
    },
    timing,
    clock,
    { onCheck: () => {}, onUnhealthy: () => Promise.resolve() },
  );
  monitor.start();
  for (let i = 0; i < 40; i++) await clock.tick(100);
  await monitor.stop();
  // 4 s of time: a check every 1 s plus its 250 ms, one at a time.
  assert.equal(most, 1);
  assert.ok(calls >= 3 && calls <= 4, `calls ${calls}`);
});

Deno.test("a check that hangs past its timeout counts as a failure, and two make the agent unhealthy", async () => {
  const clock = new FakeClock();
  const results: HealthResult[] = [];
  let unhealthy = 0;
  const monitor = new AgentMonitor(
    (signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      ),
    timing,
    clock,
    {
      onCheck: (r) => results.push(r),
      onUnhealthy: () => {
        unhealthy++;
        return Promise.resolve();
      },
    },
  );
  monitor.start();
  for (let i = 0; i < 30; i++) await clock.tick(100);
  await monitor.stop();
  await flush();
  assert.ok(results.length >= 2);
  assert.match(results[0]!.detail, /timed out after 300ms/);
  assert.equal(unhealthy, Math.floor(results.length / 2));
});

Deno.test("failures in the start period do not count until it ends or a check succeeds", async () => {
  const clock = new FakeClock();
  let healthy = false;
  const counts: number[] = [];
  const monitor = new AgentMonitor(
    () => Promise.resolve({ healthy, detail: healthy ? "up" : "down" }),
    { ...timing, startPeriodMs: 2_500 },
    clock,
    {
      onCheck: (_r, n) => counts.push(n),
      onUnhealthy: () => Promise.resolve(),
    },
  );
  monitor.start();
  await monitor.check(); // t=0: in the start period
  await clock.tick(3_000); // checks at 1 s and 2 s still starting, 3 s counts
  assert.deepEqual(counts, [0, 0, 0, 1]);
  healthy = true;
  await monitor.check();
  healthy = false;
  await monitor.check(); // after a success failures count at once
  assert.deepEqual(counts.slice(-2), [0, 1]);
  await monitor.stop();
});
