import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireLock,
  getTaskLock,
  inspectLock,
  type LockCompromisedEvent,
  LockTimeoutError,
  tryAcquireLock,
  withLock,
} from "../../lock/mod.ts";
import { closeAll, Holder } from "./_children.ts";

async function tempRoot(): Promise<string> {
  return await Deno.makeTempDir();
}

Deno.test("acquireLock writes owner.json in <root>/locks/<name>.lock and release removes it", async () => {
  const root = await tempRoot();
  const lock = await acquireLock("job", { root, purpose: "p", ttl: 9_000 });
  const owner = JSON.parse(
    await Deno.readTextFile(join(root, "locks", "job.lock", "owner.json")),
  );
  assert.equal(owner.format, "sturdy.lock/1");
  assert.equal(owner.token, lock.token);
  assert.equal(owner.fence, lock.fence);
  assert.equal(owner.pid, Deno.pid);
  assert.equal(owner.host, Deno.hostname());
  assert.equal(owner.ttlMs, 9_000);
  assert.equal(owner.purpose, "p");
  assert.equal(typeof owner.processStart, "string");
  await lock.release();
  await lock.release();
  const left = [...Deno.readDirSync(join(root, "locks"))].map((e) => e.name)
    .sort();
  assert.deepEqual(
    left,
    ["job.fence", "job.lock.reclaim"].filter((n) => left.includes(n)),
  );
  assert.equal(await inspectLock("job", { root }), null);
  await Deno.remove(root, { recursive: true });
});

Deno.test("every acquisition gets a strictly larger fence, across kinds' counters", async () => {
  const root = await tempRoot();
  const fences: number[] = [];
  for (let i = 0; i < 5; i++) {
    await using lock = await acquireLock("f", { root });
    fences.push(lock.fence);
  }
  assert.deepEqual(fences, [1, 2, 3, 4, 5]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("await using releases the lock at the end of the block", async () => {
  const root = await tempRoot();
  {
    await using lock = await acquireLock("u", { root });
    assert.equal(await tryAcquireLock("u", { root }), null);
    assert.equal(lock.released, false);
  }
  const again = await tryAcquireLock("u", { root });
  assert.ok(again);
  await again.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("a second acquirer in the same process waits and times out naming this process", async () => {
  const root = await tempRoot();
  await using lock = await acquireLock("same", { root, purpose: "first" });
  const err = await acquireLock("same", { root, timeout: 200 }).catch((e) => e);
  assert.ok(err instanceof LockTimeoutError);
  assert.match(
    err.message,
    new RegExp(
      `^Cannot acquire lock "same" within \\d+ms: held by pid ${Deno.pid} \\(this process\\) on host ${Deno.hostname()} for \\d+ms \\(purpose "first"\\)`,
    ),
  );
  assert.equal(err.holder?.owner?.token, lock.token);
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("acquireLock waits for a release and then succeeds", async () => {
  const root = await tempRoot();
  const first = await acquireLock("w", { root });
  setTimeout(() => first.release(), 100);
  const start = Date.now();
  await using second = await acquireLock("w", { root, timeout: 5_000 });
  assert.ok(Date.now() - start >= 90);
  assert.ok(second.fence > first.fence);
  await second.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("acquireLock rejects with signal.reason when aborted while waiting", async () => {
  const root = await tempRoot();
  await using held = await acquireLock("s", { root });
  const controller = new AbortController();
  const reason = new Error("cancelled");
  setTimeout(() => controller.abort(reason), 50);
  await assert.rejects(
    acquireLock("s", { root, signal: controller.signal }),
    (err) => err === reason,
  );
  await held.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("withLock releases the lock when fn throws", async () => {
  const root = await tempRoot();
  await assert.rejects(
    withLock("t", () => {
      throw new Error("inside");
    }, { root }),
    /inside/,
  );
  assert.equal(await inspectLock("t", { root }), null);
  assert.equal(await withLock("t", (lock) => lock.fence, { root }), 2);
  await Deno.remove(root, { recursive: true });
});

Deno.test("getTaskLock locks task.<id>", async () => {
  const root = await tempRoot();
  await using lock = await getTaskLock("build-1", { root });
  assert.equal(lock.name, "task.build-1");
  await assert.rejects(getTaskLock("a/b", { root }), { code: "invalid_name" });
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("a forcibly broken lock is reported compromised by its heartbeat", async () => {
  const root = await tempRoot();
  const events: LockCompromisedEvent[] = [];
  const lock = await acquireLock("b", {
    root,
    ttl: 300,
    heartbeat: 50,
    onCompromised: (e) => events.push(e),
  });
  await Deno.remove(join(root, "locks", "b.lock"), { recursive: true });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(lock.compromised, true);
  assert.equal(lock.signal.aborted, true);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.reason, "removed");
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("bad options are refused with invalid_option", async () => {
  const root = await tempRoot();
  for (
    const options of [
      { ttl: 0 },
      { ttl: 1_000, heartbeat: 1_000 },
      { timeout: -1 },
      { kind: "nfs" as "dir" },
    ]
  ) {
    await assert.rejects(acquireLock("o", { root, ...options }), {
      code: "invalid_option",
    });
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("kind flock: one holder at a time, owner info beside the file, same fencing", async () => {
  const root = await tempRoot();
  const lock = await acquireLock("k", { root, kind: "flock", purpose: "x" });
  assert.equal(lock.kind, "flock");
  assert.equal(await tryAcquireLock("k", { root, kind: "flock" }), null);
  const info = await inspectLock("k", { root });
  assert.equal(info?.kind, "flock");
  assert.equal(info?.holder, "alive");
  assert.equal(info?.owner?.token, lock.token);
  const err = await acquireLock("k", { root, kind: "flock", timeout: 100 })
    .catch((e) => e);
  assert.ok(err instanceof LockTimeoutError);
  assert.match(err.message, /kernel lock is held/);
  await lock.release();
  await using next = await acquireLock("k", { root, kind: "flock" });
  assert.ok(next.fence > lock.fence);
  await next.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("kind flock: a holder killed with kill -9 frees the lock at once", async () => {
  const root = await tempRoot();
  const holder = new Holder({ root, name: "k", kind: "flock" });
  try {
    await holder.next("ready");
    await holder.send("acquire 5000");
    const acquired = await holder.next("acquired");
    assert.equal(await tryAcquireLock("k", { root, kind: "flock" }), null);
    holder.kill("SIGKILL");
    await holder.status();
    const info = await inspectLock("k", { root, kind: "flock" });
    assert.equal(info?.holder, "dead"); // its record is left over
    const start = Date.now();
    await using lock = await acquireLock("k", {
      root,
      kind: "flock",
      timeout: 2_000,
    });
    assert.ok(Date.now() - start < 500);
    assert.ok(lock.fence > acquired.fence!);
    await lock.release();
  } finally {
    await closeAll([holder]);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("kind dir: a holder killed with kill -9 is proven dead by its kernel lock", async () => {
  const root = await tempRoot();
  const holder = new Holder({ root, name: "d" });
  try {
    await holder.next("ready");
    await holder.send("acquire 5000");
    await holder.next("acquired");
    assert.equal((await inspectLock("d", { root }))?.holder, "alive");
    holder.kill("SIGKILL");
    await holder.status();
    const info = await inspectLock("d", { root });
    assert.equal(info?.holder, "dead");
    assert.match(info!.evidence, /kernel lock was released/);
    await using lock = await acquireLock("d", { root, timeout: 1_000 });
    await lock.release();
  } finally {
    await closeAll([holder]);
    await Deno.remove(root, { recursive: true });
  }
});
