// Uncontended lock acquire + release: Sturdy's lock (dir and flock kinds)
// against the raw operations a lock directory must do, written inline (the
// limit), and against proper-lockfile.
//
//   deno bench -A bench/lock_bench.ts
//
// The raw sequences: mkdir the lock directory, write the owner record
// durably (temp, write, fsync, rename, fsync the directory), remove both.
// "Sturdy's recipe" is what the dir lock must do at the least: mkdir, a
// synced in-place bump of the fence counter (read it, overwrite one
// 512-byte slot, fdatasync), the owner record (not synced: a crash loses
// the lock anyway), remove both. Sturdy also kernel-locks the owner record
// (its liveness proof), checks the record is still its own before the
// fence bump and the release, and starts and stops a heartbeat timer; its
// short steps are synchronous system calls (see lock/_dir_backend.ts), so
// it can beat the async raw sequences.
//
// Target: Sturdy dir lock within 1.5x of the raw sequence.
// The multi-process part (contended throughput, lost updates, a paused
// holder) is bench/lock_contention.ts.

import lockfile from "proper-lockfile";
import { acquireLock } from "../lock/mod.ts";

const root = await Deno.makeTempDir({ prefix: "sturdy-lock-bench-" });
const owner = JSON.stringify({
  format: "sturdy.lock/1",
  token: crypto.randomUUID(),
  fence: 1,
  pid: Deno.pid,
  host: "bench",
  processStart: "x",
  acquiredAt: new Date().toISOString(),
  heartbeatAt: new Date().toISOString(),
  ttlMs: 30_000,
  purpose: "bench",
});
const bytes = new TextEncoder().encode(owner);
const slot = new Uint8Array(512).fill(0x20);

async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

async function durableWrite(
  dir: string,
  name: string,
  data: Uint8Array,
): Promise<void> {
  const temp = `${dir}/.${name}.${crypto.randomUUID()}.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true });
  try {
    let off = 0;
    while (off < data.length) off += await file.write(data.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(temp, `${dir}/${name}`);
  await syncDir(dir);
}

const group = "uncontended acquire + release";
const n = 400;
const warmup = 40;

Deno.bench({
  name: "raw: mkdir + durable owner write + rm",
  group,
  baseline: true,
  n,
  warmup,
}, async () => {
  const dir = `${root}/raw.lock`;
  await Deno.mkdir(dir);
  await durableWrite(dir, "owner.json", bytes);
  await Deno.remove(`${dir}/owner.json`);
  await Deno.remove(dir);
});

Deno.bench(
  {
    name: "raw, Sturdy's recipe: mkdir + synced fence bump + owner write + rm",
    group,
    n,
    warmup,
  },
  async () => {
    const dir = `${root}/rawf.lock`;
    await Deno.mkdir(dir);
    const fence = await Deno.open(`${root}/rawf.fence`, {
      read: true,
      write: true,
      create: true,
    });
    await fence.read(slot);
    await fence.seek(0, Deno.SeekMode.Start);
    await fence.write(slot);
    await fence.syncData();
    fence.close();
    await Deno.writeFile(`${dir}/owner.json`, bytes);
    await Deno.remove(`${dir}/owner.json`);
    await Deno.remove(dir);
  },
);

Deno.bench(
  { name: "raw, no fsync: mkdir + owner write + rm", group, n, warmup },
  async () => {
    const dir = `${root}/nosync.lock`;
    await Deno.mkdir(dir);
    await Deno.writeFile(`${dir}/owner.json`, bytes);
    await Deno.remove(`${dir}/owner.json`);
    await Deno.remove(dir);
  },
);

Deno.bench(
  { name: "sturdy acquireLock + release (dir)", group, n, warmup },
  async () => {
    const lock = await acquireLock("bench-dir", { root });
    await lock.release();
  },
);

Deno.bench(
  { name: "sturdy acquireLock + release (flock)", group },
  async () => {
    const lock = await acquireLock("bench-flock", { root, kind: "flock" });
    await lock.release();
  },
);

await Deno.writeTextFile(`${root}/pl-target`, "");
Deno.bench(
  { name: "proper-lockfile lock + unlock", group, n, warmup },
  async () => {
    const release = await lockfile.lock(`${root}/pl-target`, {
      realpath: false,
    });
    await release();
  },
);

globalThis.addEventListener("unload", () => {
  Deno.removeSync(root, { recursive: true });
});
