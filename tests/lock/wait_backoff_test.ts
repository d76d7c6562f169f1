import assert from "node:assert/strict";
import { acquireWith, resolveLockOptions } from "../../lock/acquire.ts";
import { LockTimeoutError } from "../../lock/mod.ts";
import { ownProcessStart } from "../../lock/owner.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { FakeBackend } from "./_fake_backend.ts";

// The process start token is read once (a subprocess); do it before the
// fake clock runs, so only timers are pending while it drives.
await ownProcessStart();

function setup(busyFor: number, options: Record<string, unknown> = {}) {
  const clock = new FakeClock(1_000_000);
  const backend = new FakeBackend(busyFor);
  const opts = { clock, random: () => 0.5, ...options };
  const resolved = resolveLockOptions(opts);
  return { clock, backend, opts, resolved };
}

Deno.test("acquireLock's wait grows exponentially with jitter and is capped at 50 ms", async () => {
  const { clock, backend, opts, resolved } = setup(12, { ttl: 2_000 });
  const lock = await clock.run(
    acquireWith(backend, "x", opts, resolved, false),
  );
  assert.ok(lock);
  assert.equal(backend.acquires, 13);
  // Equal jitter with random 0.5: three quarters of 5, 10, 20, ... ms,
  // capped at 50 ms (a release is noticed quickly; ttl / 4 caps it lower
  // for a very short ttl).
  const expected = [5, 10, 20, 40, 50, 50, 50, 50, 50, 50, 50, 50]
    .map((d) => d * 0.75);
  // (the sleep after them is the held lock's first heartbeat)
  assert.deepEqual(clock.sleeps.slice(0, 12), expected);
  assert.equal(clock.sleeps[12], 2_000 / 3);
  await lock.release();
});

Deno.test("acquireLock's jitter keeps every wait between half and all of the backoff delay", async () => {
  let i = 0;
  const randoms = [0, 0.999, 0.3, 0.7, 0.1, 0.9];
  const { clock, backend, opts, resolved } = setup(6, {
    random: () => randoms[i++ % randoms.length]!,
  });
  const lock = await clock.run(
    acquireWith(backend, "x", opts, resolved, false),
  );
  clock.sleeps.slice(0, 6).forEach((ms, retry) => {
    const delay = Math.min(50, 5 * 2 ** retry);
    assert.ok(ms >= delay / 2 && ms <= delay, `${ms} vs ${delay}`);
  });
  await lock!.release();
});

Deno.test("acquireLock gives up at timeout with LockTimeoutError naming the holder", async () => {
  const { clock, backend, opts, resolved } = setup(1_000, { timeout: 3_000 });
  const start = clock.now();
  const err = await clock.run(
    acquireWith(backend, "deploy", opts, resolved, false),
  ).catch((e) => e);
  assert.ok(err instanceof LockTimeoutError);
  assert.equal(err.code, "lock_timeout");
  assert.equal(clock.now() - start, 3_000); // the last wait is cut to fit
  assert.equal(err.waitedMs, 3_000);
  assert.match(err.message, /Cannot acquire lock "deploy" within 3s/);
  assert.equal(err.attempts, backend.acquires);
});

Deno.test("tryAcquireLock's loop returns null at timeout instead of throwing", async () => {
  const { clock, backend, opts, resolved } = setup(1_000, { timeout: 100 });
  const lock = await clock.run(
    acquireWith(backend, "x", opts, resolved, true),
  );
  assert.equal(lock, null);
});

Deno.test("acquireLock with timeout 0 tries exactly once and never sleeps", async () => {
  const { clock, backend, opts, resolved } = setup(5, { timeout: 0 });
  await assert.rejects(
    acquireWith(backend, "x", opts, resolved, false),
    LockTimeoutError,
  );
  assert.equal(backend.acquires, 1);
  assert.deepEqual(clock.sleeps, []);
});

Deno.test("acquireLock rejects with signal.reason as soon as the signal aborts mid-wait", async () => {
  const controller = new AbortController();
  const { clock, backend, opts, resolved } = setup(1_000, {
    signal: controller.signal,
    timeout: 60_000,
  });
  const pending = acquireWith(backend, "x", opts, resolved, false);
  pending.catch(() => {});
  await clock.tick(100);
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(pending, (err) => err === reason);
  assert.equal(clock.pending, 0); // the sleep's timer is gone
});

Deno.test("acquireLock rejects at once with an already aborted signal", async () => {
  const { backend, opts, resolved } = setup(0, {
    signal: AbortSignal.abort(new Error("before")),
  });
  await assert.rejects(
    acquireWith(backend, "x", opts, resolved, false),
    /before/,
  );
  assert.equal(backend.acquires, 0);
});
