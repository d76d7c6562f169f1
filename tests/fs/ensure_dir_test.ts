import assert from "node:assert/strict";
import { denoFileSystem, ensureDir } from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

Deno.test("ensureDir() creates missing parents and syncs each new entry's parent", async () => {
  const dir = await Deno.makeTempDir();
  const fs = faultFs(denoFileSystem, []);
  const result = await ensureDir(`${dir}/a/b/c`, { fs });
  assert.deepEqual(result, {
    path: `${dir}/a/b/c`,
    created: [`${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`],
  });
  assert.ok((await Deno.stat(`${dir}/a/b/c`)).isDirectory);
  const syncs = fs.calls.filter((c) => c.startsWith("sync "));
  assert.deepEqual(syncs, [`sync ${dir}`, `sync ${dir}/a`, `sync ${dir}/a/b`]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() on an existing directory creates and syncs nothing", async () => {
  const dir = await Deno.makeTempDir();
  const fs = faultFs(denoFileSystem, []);
  assert.deepEqual((await ensureDir(dir, { fs })).created, []);
  assert.deepEqual(fs.calls, [`stat ${dir}`]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() with durable: false skips the syncs and applies mode", async () => {
  const dir = await Deno.makeTempDir();
  const fs = faultFs(denoFileSystem, []);
  await ensureDir(`${dir}/x`, { fs, durable: false, mode: 0o700 });
  assert.ok(!fs.calls.some((c) => c.startsWith("sync ")));
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(`${dir}/x`)).mode! & 0o777, 0o700);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() names the file in the way", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/f`, "keep");
  await assert.rejects(ensureDir(`${dir}/f/a/b`), {
    name: "DirectoryOperationError",
    code: "not_a_directory",
    message: new RegExp(`"${dir}/f" is a file, not a directory`),
  });
  await assert.rejects(ensureDir(`${dir}/f`), {
    code: "not_a_directory",
    message: /: it is a file/,
  });
  assert.equal(await Deno.readTextFile(`${dir}/f`), "keep");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() reports a broken symlink in the way", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.symlink(`${dir}/nowhere`, `${dir}/link`);
  await assert.rejects(ensureDir(`${dir}/link/a`), {
    code: "not_a_directory",
    message: /a broken symbolic link/,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() accepts a directory created concurrently", async () => {
  const dir = await Deno.makeTempDir();
  const fs = faultFs(denoFileSystem, []);
  const racing = {
    ...fs,
    async mkdir(path: string, options?: Deno.MkdirOptions) {
      await Deno.mkdir(path); // another process wins the race
      return fs.mkdir(path, options);
    },
  };
  assert.deepEqual((await ensureDir(`${dir}/a`, { fs: racing })).created, []);
  assert.ok((await Deno.stat(`${dir}/a`)).isDirectory);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() retries a transient mkdir failure", async () => {
  const dir = await Deno.makeTempDir();
  const fs = faultFs(denoFileSystem, [
    { op: "mkdir", nth: 1, error: () => osError("EAGAIN") },
  ]);
  const result = await ensureDir(`${dir}/a`, {
    fs,
    retry: { minTimeout: 1, jitter: "none" },
  });
  assert.deepEqual(result.created, [`${dir}/a`]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() rejects a NUL in the path", async () => {
  await assert.rejects(ensureDir("a\0b"), { code: "invalid_path" });
});

const scratch = await Deno.makeTempDir();

Deno.test({
  name: "ensureDir() without write permission names the flag to pass",
  permissions: { read: true, write: false },
  async fn() {
    await assert.rejects(ensureDir(`${scratch}/new`), {
      code: "missing_permission",
      message: /--allow-write/,
    });
  },
});

Deno.test("ensureDir() permission test left nothing behind", async () => {
  assert.deepEqual([...Deno.readDirSync(scratch)], []);
  await Deno.remove(scratch);
});
