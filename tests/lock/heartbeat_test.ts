import assert from "node:assert/strict";
import { createLock } from "../../lock/lock.ts";
import {
  LockCompromisedError,
  type LockCompromisedEvent,
  type LockOwner,
} from "../../lock/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { FakeBackend } from "./_fake_backend.ts";

const owner: LockOwner = {
  format: "sturdy.lock/1",
  token: "t1",
  fence: 7,
  pid: 1,
  host: "h",
  processStart: null,
  acquiredAt: 0,
  heartbeatAt: 0,
  ttlMs: 3_000,
  purpose: null,
};

function held(
  backend: FakeBackend,
  clock: FakeClock,
  onCompromised?: (e: LockCompromisedEvent) => void,
) {
  return createLock(backend, { name: "job", owner }, {
    heartbeatMs: 1_000,
    clock,
    onCompromised,
  });
}

Deno.test("a held lock renews once per heartbeat interval", async () => {
  const clock = new FakeClock(0);
  const backend = new FakeBackend();
  const lock = held(backend, clock);
  await clock.tick(999);
  assert.deepEqual(backend.renews, []);
  await clock.tick(1);
  assert.deepEqual(backend.renews, [1_000]);
  await clock.tick(2_000);
  assert.deepEqual(backend.renews, [1_000, 2_000, 3_000]);
  await lock.release();
  assert.equal(clock.pending, 0);
  await clock.tick(5_000);
  assert.equal(backend.renews.length, 3); // stopped for good
});

Deno.test("a takeover seen by the heartbeat aborts the signal and calls onCompromised once", async () => {
  const clock = new FakeClock(0);
  const backend = new FakeBackend();
  const successor = { ...owner, token: "t2", fence: 8, pid: 2 };
  backend.renewScript = [{ held: true, owner }, {
    held: false,
    reason: "taken_over",
    current: successor,
  }];
  const events: LockCompromisedEvent[] = [];
  const lock = held(backend, clock, (e) => events.push(e));
  await clock.tick(1_000);
  assert.equal(lock.compromised, false);
  await clock.tick(1_000);
  assert.equal(lock.compromised, true);
  assert.equal(lock.signal.aborted, true);
  assert.ok(lock.signal.reason instanceof LockCompromisedError);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.reason, "taken_over");
  assert.equal(events[0]!.current?.pid, 2);
  assert.equal(events[0]!.fence, 7);
  assert.match(events[0]!.error.message, /pid 2 on host h with fence 8/);
  await clock.tick(5_000);
  assert.equal(backend.renews.length, 2); // no beats after the loss
  await lock.release();
  assert.equal(backend.releases, 1); // the backend only cleans up
});

Deno.test("a throwing or rejecting onCompromised never escapes", async () => {
  for (
    const callback of [
      () => {
        throw new Error("boom");
      },
      () => Promise.reject(new Error("async boom")) as unknown as void,
    ]
  ) {
    const clock = new FakeClock(0);
    const backend = new FakeBackend();
    backend.renewScript = [{ held: false, reason: "removed", current: null }];
    const lock = held(backend, clock, callback);
    await clock.tick(1_000);
    assert.equal(lock.compromised, true);
    assert.equal(
      (lock.signal.reason as LockCompromisedError).reason,
      "removed",
    );
    await lock.release();
  }
});

Deno.test("a heartbeat I/O error is retried at the next beat, not a loss", async () => {
  const clock = new FakeClock(0);
  const backend = new FakeBackend();
  backend.renewScript = [new Error("EIO"), new Error("EIO")];
  const lock = held(backend, clock);
  await clock.tick(3_000);
  assert.equal(backend.renews.length, 3);
  assert.equal(lock.compromised, false);
  await lock.release();
  assert.equal(backend.releases, 1);
});

Deno.test("release() is idempotent, aborts the signal as released and frees the lock once", async () => {
  const clock = new FakeClock(0);
  const backend = new FakeBackend();
  const lock = held(backend, clock);
  await Promise.all([lock.release(), lock.release()]);
  await lock[Symbol.asyncDispose]();
  assert.equal(backend.releases, 1);
  assert.equal(lock.released, true);
  assert.equal(lock.signal.aborted, true);
  assert.equal((lock.signal.reason as DOMException).name, "AbortError");
  assert.equal(lock.compromised, false);
});

Deno.test("release() that finds the lock no longer ours reports it compromised", async () => {
  const clock = new FakeClock(0);
  const backend = new FakeBackend();
  backend.releaseAnswer = false;
  const events: LockCompromisedEvent[] = [];
  const lock = held(backend, clock, (e) => events.push(e));
  await lock.release();
  assert.equal(lock.compromised, true);
  assert.equal(events.length, 1);
  assert.ok(lock.signal.reason instanceof LockCompromisedError);
});
