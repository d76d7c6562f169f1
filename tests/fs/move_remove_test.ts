import assert from "node:assert/strict";
import { denoFileSystem, move, remove } from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

const exdevOnce = () =>
  faultFs(denoFileSystem, [
    { op: "rename", nth: 1, error: () => osError("EXDEV") },
  ]);

Deno.test("move() renames a file and syncs both directories", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/sub`);
  await Deno.writeTextFile(`${dir}/a.txt`, "a");
  const fs = faultFs(denoFileSystem, []);
  assert.deepEqual(await move(`${dir}/a.txt`, `${dir}/sub/b.txt`, { fs }), {
    from: `${dir}/a.txt`,
    to: `${dir}/sub/b.txt`,
    copied: false,
  });
  assert.equal(await Deno.readTextFile(`${dir}/sub/b.txt`), "a");
  assert.deepEqual(fs.calls.filter((c) => c.startsWith("sync ")), [
    `sync ${dir}/sub`,
    `sync ${dir}`,
  ]);
  const quiet = faultFs(denoFileSystem, []);
  await move(`${dir}/sub`, `${dir}/moved`, { fs: quiet, durable: false });
  assert.ok(!quiet.calls.some((c) => c.startsWith("sync ")));
  assert.ok((await Deno.stat(`${dir}/moved/b.txt`)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("move() refuses to replace a target unless overwrite is set", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a`, "new");
  await Deno.writeTextFile(`${dir}/b`, "old");
  await assert.rejects(move(`${dir}/a`, `${dir}/b`), {
    name: "DirectoryOperationError",
    code: "already_exists",
    message: /overwrite: true/,
  });
  assert.equal(await Deno.readTextFile(`${dir}/b`), "old");
  await move(`${dir}/a`, `${dir}/b`, { overwrite: true });
  assert.equal(await Deno.readTextFile(`${dir}/b`), "new");
  // Moving onto itself is a no-op, not a clash.
  await move(`${dir}/b`, `${dir}/./b`);
  assert.equal(await Deno.readTextFile(`${dir}/b`), "new");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("move() explains a missing source, a missing target directory and a full directory", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(move(`${dir}/none`, `${dir}/x`), {
    code: "not_found",
    message: /the source does not exist/,
  });
  await Deno.writeTextFile(`${dir}/a`, "a");
  await assert.rejects(move(`${dir}/a`, `${dir}/no/such/b`), {
    code: "not_found",
    message: /target directory .* does not exist/,
  });
  await Deno.mkdir(`${dir}/d1`);
  await Deno.mkdir(`${dir}/d2`);
  await Deno.writeTextFile(`${dir}/d2/keep`, "k");
  await assert.rejects(move(`${dir}/d1`, `${dir}/d2`, { overwrite: true }), {
    code: "not_empty",
  });
  assert.ok((await Deno.stat(`${dir}/d2/keep`)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("move() refuses a cross-device move by default", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a`, "a");
  await assert.rejects(move(`${dir}/a`, `${dir}/b`, { fs: exdevOnce() }), {
    code: "cross_device",
    message: /crossDevice: "copy"/,
  });
  assert.equal(await Deno.readTextFile(`${dir}/a`), "a");
  await Deno.remove(dir, { recursive: true });
});

Deno.test('move() with crossDevice: "copy" copies a tree, publishes it, then removes the source', async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/src/deep`, { recursive: true });
  await Deno.writeTextFile(`${dir}/src/a.txt`, "a");
  await Deno.writeTextFile(`${dir}/src/deep/b.txt`, "b".repeat(200_000));
  await Deno.chmod(`${dir}/src/a.txt`, 0o640);
  await Deno.symlink("a.txt", `${dir}/src/link`);
  const fs = exdevOnce();
  const result = await move(`${dir}/src`, `${dir}/dst`, {
    fs,
    crossDevice: "copy",
  });
  assert.equal(result.copied, true);
  assert.equal(await Deno.readTextFile(`${dir}/dst/a.txt`), "a");
  assert.equal(
    (await Deno.readTextFile(`${dir}/dst/deep/b.txt`)).length,
    200_000,
  );
  assert.equal(await Deno.readLink(`${dir}/dst/link`), "a.txt");
  assert.equal((await Deno.stat(`${dir}/dst/a.txt`)).mode! & 0o777, 0o640);
  await assert.rejects(Deno.lstat(`${dir}/src`), Deno.errors.NotFound);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["dst"]);
  // The copy was synced file by file before it was published.
  assert.ok(fs.calls.some((c) => c.startsWith("syncData ")));
  // A single file too.
  await move(`${dir}/dst/a.txt`, `${dir}/a.txt`, {
    fs: exdevOnce(),
    crossDevice: "copy",
  });
  assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "a");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("move() leaves the source intact and no staging copy when the copy fails", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/src`);
  await Deno.writeTextFile(`${dir}/src/a.txt`, "a");
  const fs = faultFs(denoFileSystem, [
    { op: "rename", nth: 1, error: () => osError("EXDEV") },
    { op: "write", error: () => osError("ENOSPC") },
  ]);
  await assert.rejects(
    move(`${dir}/src`, `${dir}/dst`, { fs, crossDevice: "copy", retry: false }),
    { code: "no_space" },
  );
  assert.equal(await Deno.readTextFile(`${dir}/src/a.txt`), "a");
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["src"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("move() across real file systems when /dev/shm is another one", async () => {
  let shm: string;
  try {
    shm = await Deno.makeTempDir({ dir: "/dev/shm" });
  } catch {
    return; // no tmpfs here: the injected EXDEV tests cover the logic
  }
  const dir = await Deno.makeTempDir();
  try {
    if ((await Deno.stat(shm)).dev === (await Deno.stat(dir)).dev) return;
    await Deno.writeTextFile(`${shm}/a`, "a");
    await assert.rejects(move(`${shm}/a`, `${dir}/a`), {
      code: "cross_device",
    });
    await move(`${shm}/a`, `${dir}/a`, { crossDevice: "copy" });
    assert.equal(await Deno.readTextFile(`${dir}/a`), "a");
    await assert.rejects(Deno.lstat(`${shm}/a`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(shm, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("move() rejects NUL in either path", async () => {
  await assert.rejects(move("a\0", "b"), { code: "invalid_path" });
  await assert.rejects(move("a", "b\0"), { code: "invalid_path" });
});

Deno.test("remove() removes files, empty directories and, with recursive, trees", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/f`, "f");
  await Deno.mkdir(`${dir}/empty`);
  await Deno.mkdir(`${dir}/tree/x`, { recursive: true });
  assert.equal(await remove(`${dir}/f`), true);
  assert.equal(await remove(`${dir}/empty`), true);
  await assert.rejects(remove(`${dir}/tree`), {
    code: "not_empty",
    message: /recursive: true/,
  });
  assert.equal(await remove(`${dir}/tree`, { recursive: true }), true);
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir);
});

Deno.test("remove() of a missing path fails unless missingOk", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(remove(`${dir}/none`), { code: "not_found" });
  assert.equal(await remove(`${dir}/none`, { missingOk: true }), false);
  await Deno.remove(dir);
});

Deno.test("remove() removes a symlink, not what it points to, and can sync", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/real`);
  await Deno.writeTextFile(`${dir}/real/keep`, "k");
  await Deno.symlink(`${dir}/real`, `${dir}/link`);
  const fs = faultFs(denoFileSystem, []);
  await remove(`${dir}/link`, { recursive: true, durable: true, fs });
  assert.equal(await Deno.readTextFile(`${dir}/real/keep`), "k");
  assert.ok(fs.calls.includes(`sync ${dir}`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("remove() retries a busy target and refuses dangerous paths", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/f`, "f");
  const fs = faultFs(denoFileSystem, [
    { op: "remove", nth: 1, error: () => osError("EBUSY") },
  ]);
  assert.equal(
    await remove(`${dir}/f`, { fs, retry: { minTimeout: 1, jitter: "none" } }),
    true,
  );
  for (const bad of ["/", `${dir}/.`, `${dir}/..`, "..", "a\0b"]) {
    await assert.rejects(remove(bad, { recursive: true }), {
      code: "invalid_path",
    });
  }
  await Deno.remove(dir, { recursive: true });
});

const scratch = await Deno.makeTempDir();
await Deno.writeTextFile(`${scratch}/f`, "f");

Deno.test({
  name: "remove() and move() without write permission name the flag to pass",
  permissions: { read: true, write: false },
  async fn() {
    await assert.rejects(remove(`${scratch}/f`), {
      code: "missing_permission",
      message: /--allow-write/,
    });
    await assert.rejects(move(`${scratch}/f`, `${scratch}/g`), {
      code: "missing_permission",
    });
  },
});

Deno.test("remove() permission test left the file in place", async () => {
  assert.equal(await Deno.readTextFile(`${scratch}/f`), "f");
  await Deno.remove(scratch, { recursive: true });
});
