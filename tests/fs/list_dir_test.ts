import assert from "node:assert/strict";
import { denoFileSystem, listDir } from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

Deno.test("listDir() returns entries sorted by name with their kind", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/b.txt`, "b");
  await Deno.mkdir(`${dir}/a`);
  await Deno.symlink(`${dir}/b.txt`, `${dir}/c`);
  assert.deepEqual(await listDir(dir), [
    {
      name: "a",
      path: `${dir}/a`,
      isFile: false,
      isDirectory: true,
      isSymlink: false,
    },
    {
      name: "b.txt",
      path: `${dir}/b.txt`,
      isFile: true,
      isDirectory: false,
      isSymlink: false,
    },
    {
      name: "c",
      path: `${dir}/c`,
      isFile: false,
      isDirectory: false,
      isSymlink: true,
    },
  ]);
  const unsorted = await listDir(`${dir}/`, { sort: false });
  assert.deepEqual(unsorted.map((e) => e.name).sort(), ["a", "b.txt", "c"]);
  assert.ok(unsorted.every((e) => e.path === `${dir}/${e.name}`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("listDir() retries a transient failure and gives up on a permanent one", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a`, "a");
  const flaky = faultFs(denoFileSystem, [
    { op: "readDir", nth: 1, error: () => osError("EMFILE") },
  ]);
  const entries = await listDir(dir, {
    fs: flaky,
    retry: { minTimeout: 1, jitter: "none" },
  });
  assert.deepEqual(entries.map((e) => e.name), ["a"]);
  const denied = faultFs(denoFileSystem, [
    { op: "readDir", error: () => osError("EACCES") },
  ]);
  await assert.rejects(listDir(dir, { fs: denied }), {
    name: "DirectoryOperationError",
    code: "permission_denied",
    attempts: 1,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("listDir() times out on a hung directory", async () => {
  let release = () => {};
  const hung = new Promise<void>((r) => release = r);
  const fs = {
    ...denoFileSystem,
    readDir: () => ({
      [Symbol.asyncIterator]: () => ({
        next: () =>
          hung.then(() => ({ done: true as const, value: undefined })),
      }),
    }),
  };
  await assert.rejects(listDir("/somewhere", { fs, timeout: 20 }), {
    name: "IoTimeoutError",
    code: "io_timeout",
  });
  release();
});

Deno.test("listDir() rejects bad input with typed errors", async () => {
  await assert.rejects(listDir("a\0b"), { code: "invalid_path" });
  const file = await Deno.makeTempFile();
  await assert.rejects(listDir(file), {
    code: "not_a_directory",
    message: /it is a file, not a directory/,
  });
  await assert.rejects(listDir(`${file}/x`), {
    code: "not_a_directory",
    message: /a part of the path is a file/,
  });
  await assert.rejects(listDir(`${file}.missing`), { code: "not_found" });
  await Deno.remove(file);
});

Deno.test({
  name: "listDir() without read permission names the flag to pass",
  permissions: { read: false },
  async fn() {
    await assert.rejects(listDir("/tmp"), {
      code: "missing_permission",
      message: /--allow-read/,
    });
  },
});
