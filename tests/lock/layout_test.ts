// The on-disk layout after the merge of the owner record and the liveness
// file: the record is kernel-locked and rewritten in place; holders of the
// earlier layout (a separate kernel-locked `alive`) are still judged by it;
// the "flock" record is rewritten in place and emptied on release.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireLock,
  inspectLock,
  type LockOwner,
  tryAcquireLock,
} from "../../lock/mod.ts";

function owner(extra: Partial<LockOwner> = {}): LockOwner {
  return {
    format: "sturdy.lock/1",
    token: "fabricated",
    fence: 1,
    pid: Deno.pid,
    host: Deno.hostname(),
    processStart: null,
    acquiredAt: Date.now(),
    heartbeatAt: Date.now(),
    ttlMs: 30_000,
    purpose: "test",
    ...extra,
  };
}

Deno.test("a dir lock's owner.json is its liveness file: kernel-locked, rewritten in place, removed on release", async () => {
  const root = await Deno.makeTempDir();
  try {
    const lock = await acquireLock("job", {
      root,
      ttl: 300,
      heartbeat: 20,
    });
    const dir = join(root, "locks", "job.lock");
    const path = join(dir, "owner.json");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "owner.json",
    ]);
    const before = Deno.statSync(path).ino;
    // Another open file of the record cannot take its lock.
    const probe = Deno.openSync(path, { read: true, write: true });
    assert.equal(probe.tryLockSync(true), false);
    probe.close();
    const first = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(first.kernelLocked, true);
    await new Promise((r) => setTimeout(r, 120));
    const later = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(later.token, lock.token);
    assert.ok(later.heartbeatAt > first.heartbeatAt, "heartbeat rewrote it");
    assert.equal(Deno.statSync(path).ino, before, "in place, same file");
    const info = await inspectLock("job", { root });
    assert.equal(info?.holder, "alive");
    assert.equal(info?.owner?.token, lock.token);
    assert.equal("kernelLocked" in info!.owner!, false);
    await lock.release();
    assert.equal(lock.compromised, false);
    assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a marked record whose kernel lock is free is dead; an unmarked one is judged by its pid", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "locks", "x.lock");
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, "owner.json");
    // Unmarked (written by hand or by an earlier version), naming this live
    // process: a free lock proves nothing.
    await Deno.writeTextFile(path, JSON.stringify(owner()));
    let info = await inspectLock("x", { root });
    assert.equal(info?.holder, "alive");
    assert.equal(info?.stale, false);
    assert.equal(await tryAcquireLock("x", { root }), null);
    // Marked: its writer held the lock, so a free lock means it is gone.
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...owner(), kernelLocked: true }),
    );
    info = await inspectLock("x", { root });
    assert.equal(info?.holder, "dead");
    assert.equal(info?.stale, true);
    assert.match(info!.evidence, /kernel lock was released/);
    const lock = await tryAcquireLock("x", { root });
    assert.ok(lock);
    await lock.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a holder of the earlier layout (kernel-locked alive) is never robbed, and is taken over once it lets go", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "locks", "old.lock");
    await Deno.mkdir(dir, { recursive: true });
    const alive = Deno.openSync(join(dir, "alive"), {
      read: true,
      write: true,
      createNew: true,
    });
    assert.equal(alive.tryLockSync(true), true);
    // The earlier layout's record: not marked, replaced by rename.
    await Deno.writeTextFile(
      join(dir, "owner.json"),
      JSON.stringify(owner({ pid: 999_999 })),
    );
    let info = await inspectLock("old", { root });
    assert.equal(info?.holder, "alive");
    assert.match(info!.evidence, /kernel lock is held/);
    assert.equal(await tryAcquireLock("old", { root }), null);
    alive.close(); // the old holder dies
    info = await inspectLock("old", { root });
    assert.equal(info?.holder, "dead");
    const lock = await tryAcquireLock("old", { root });
    assert.ok(lock);
    await lock.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a flock record is rewritten in place, padded over a longer one, and emptied on release", async () => {
  const root = await Deno.makeTempDir();
  try {
    const record = join(root, "locks", "f.flock.json");
    const long = await acquireLock("f", {
      root,
      kind: "flock",
      purpose: "x".repeat(500),
    });
    const ino = Deno.statSync(record).ino;
    await long.release();
    assert.equal(Deno.readTextFileSync(record), "");
    assert.equal(await inspectLock("f", { root, kind: "flock" }), null);
    // A holder killed without a release leaves a long record behind.
    const dead = JSON.stringify(
      owner({ pid: 999_999, purpose: "z".repeat(400) }),
    );
    Deno.writeTextFileSync(record, dead);
    const short = await acquireLock("f", {
      root,
      kind: "flock",
      purpose: "short",
    });
    assert.equal(Deno.statSync(record).ino, ino);
    // Padded with spaces over the longer record: no tail of it is left.
    assert.equal(Deno.statSync(record).size, dead.length);
    assert.equal(
      JSON.parse(Deno.readTextFileSync(record)).token,
      short.token,
    );
    const info = await inspectLock("f", { root, kind: "flock" });
    assert.equal(info?.holder, "alive");
    assert.equal(info?.owner?.purpose, "short");
    await short.release();
    assert.equal(await inspectLock("f", { root, kind: "flock" }), null);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
