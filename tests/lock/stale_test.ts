// Stale judgement from the outside: fabricated owner files for dead,
// reused and live pids, half-written locks, remote leases; inspection and
// breaking.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireLock,
  breakLock,
  inspectLock,
  listLocks,
  type LockOwner,
  LockTimeoutError,
  tryAcquireLock,
} from "../../lock/mod.ts";
import { processStartToken } from "../../lock/owner.ts";

async function fabricate(
  root: string,
  name: string,
  owner: Partial<LockOwner>,
): Promise<void> {
  const dir = join(root, "locks", `${name}.lock`);
  await Deno.mkdir(dir, { recursive: true });
  const full: LockOwner = {
    format: "sturdy.lock/1",
    token: "fabricated",
    fence: 1,
    pid: 999_999,
    host: Deno.hostname(),
    processStart: null,
    acquiredAt: Date.now(),
    heartbeatAt: Date.now(),
    ttlMs: 30_000,
    purpose: "test",
    ...owner,
  };
  await Deno.writeTextFile(join(dir, "owner.json"), JSON.stringify(full));
}

async function withSleeper(fn: (pid: number) => Promise<void>): Promise<void> {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await fn(child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

Deno.test("a lock whose owner pid is gone is taken over at once", async () => {
  const root = await Deno.makeTempDir();
  await fabricate(root, "x", { pid: 999_999 });
  const info = await inspectLock("x", { root });
  assert.equal(info?.holder, "dead");
  assert.equal(info?.stale, true);
  assert.match(info!.evidence, /pid 999999 is gone/);
  const lock = await tryAcquireLock("x", { root });
  assert.ok(lock);
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("an owner file naming a live unrelated pid with another start token is reclaimed", async () => {
  await withSleeper(async (pid) => {
    const root = await Deno.makeTempDir();
    await fabricate(root, "x", {
      pid,
      processStart: "2001-01-01T00:00:00.000Z",
    });
    const info = await inspectLock("x", { root });
    assert.equal(info?.holder, "dead");
    assert.match(info!.evidence, /reused/);
    const lock = await tryAcquireLock("x", { root });
    assert.ok(lock);
    await lock.release();
    await Deno.remove(root, { recursive: true });
  });
});

Deno.test("a live owner with the right start token is never reclaimed, however old", async () => {
  await withSleeper(async (pid) => {
    const root = await Deno.makeTempDir();
    const day = 86_400_000;
    await fabricate(root, "x", {
      pid,
      processStart: await processStartToken(pid),
      acquiredAt: Date.now() - 7 * day,
      heartbeatAt: Date.now() - 7 * day,
      ttlMs: 1_000,
    });
    const info = await inspectLock("x", { root });
    assert.equal(info?.holder, "alive");
    assert.equal(info?.stale, false);
    assert.equal(await tryAcquireLock("x", { root, ttl: 1_000 }), null);
    const err = await acquireLock("x", { root, ttl: 1_000, timeout: 300 })
      .catch((e) => e);
    assert.ok(err instanceof LockTimeoutError);
    assert.match(
      err.message,
      new RegExp(`held by pid ${pid} on host .* for 168h`),
    );
    await assert.rejects(breakLock("x", { root }), { code: "lock_held" });
    assert.equal(await breakLock("x", { root, force: true }), true);
    await Deno.remove(root, { recursive: true });
  });
});

Deno.test("a lock held on another host is stale only once its heartbeat is older than its ttl", async () => {
  const root = await Deno.makeTempDir();
  await fabricate(root, "x", {
    host: "far-away",
    pid: Deno.pid, // a local pid means nothing for another host
    heartbeatAt: Date.now() - 500,
    ttlMs: 2_000,
  });
  assert.equal((await inspectLock("x", { root }))?.stale, false);
  assert.equal(await tryAcquireLock("x", { root }), null);
  await fabricate(root, "x", {
    host: "far-away",
    heartbeatAt: Date.now() - 2_500,
    ttlMs: 2_000,
  });
  const info = await inspectLock("x", { root });
  assert.equal(info?.stale, true);
  assert.match(info!.evidence, /lease expired/);
  const lock = await tryAcquireLock("x", { root });
  assert.ok(lock);
  assert.ok(lock.fence >= 1);
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("a half-written lock (no owner file) is stale only after the grace", async () => {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "locks", "x.lock"), { recursive: true });
  // The grace is min(2 s, ttl): with ttl 400 ms, 400 ms.
  assert.equal(await tryAcquireLock("x", { root, ttl: 400 }), null);
  const info = await inspectLock("x", { root, kind: "dir" });
  assert.equal(info?.owner, null);
  assert.equal(info?.stale, false);
  await new Promise((r) => setTimeout(r, 600));
  const lock = await tryAcquireLock("x", { root, ttl: 400 });
  assert.ok(lock);
  await lock.release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("inspectLock and listLocks report holders; breakLock removes a dead one", async () => {
  const root = await Deno.makeTempDir();
  await using live = await acquireLock("live", { root, purpose: "serve" });
  await fabricate(root, "dead", { pid: 999_999 });
  const infos = await listLocks({ root });
  assert.deepEqual(infos.map((i) => [i.name, i.holder, i.stale]), [
    ["dead", "dead", true],
    ["live", "alive", false],
  ]);
  const info = infos[1]!;
  assert.equal(info.owner?.token, live.token);
  assert.equal(info.owner?.purpose, "serve");
  assert.ok(info.heldForMs !== null && info.heldForMs >= 0);
  assert.equal(await breakLock("dead", { root }), true);
  assert.equal(await breakLock("dead", { root }), false);
  await assert.rejects(breakLock("live", { root }), (err: Error) => {
    assert.equal((err as { code?: string }).code, "lock_held");
    assert.match(err.message, new RegExp(`pid ${Deno.pid} \\(this process\\)`));
    return true;
  });
  await live.release();
  assert.deepEqual(await listLocks({ root }), []);
  await Deno.remove(root, { recursive: true });
});
