import assert from "node:assert/strict";
import {
  appendJsonl,
  denoFileSystem,
  type FileSystem,
  readText,
  writeText,
} from "../../fs/mod.ts";
import { type Fault, faultFs, osError } from "../_helpers/fault_fs.ts";

const fast = { retry: { minTimeout: 1, maxTimeout: 1 } };
const TEMP = /\.sturdy-tmp/;

// Writes "new" over "old" through the faults; returns the error (or
// undefined) after checking the target and that no temp is left.
async function writeThrough(
  faults: Fault[],
  options: { retry?: false | typeof fast.retry; fs?: FileSystem } = fast,
): Promise<(Error & { code?: string; attempts?: number }) | undefined> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    const fs = options.fs ?? faultFs(denoFileSystem, faults);
    const error = await writeText(path, "new", { ...options, fs }).then(
      () => undefined,
      (e) => e,
    );
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["a.txt"], "a temp was left behind");
    const text = await Deno.readTextFile(path);
    assert.equal(text, error ? "old" : "new");
    return error;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("short writes are completed by looping", async () => {
  const error = await writeThrough([{ op: "write", shortWrite: 1 }]);
  assert.equal(error, undefined);
});

Deno.test("a write that makes no progress fails with short_write", async () => {
  const error = await writeThrough([{ op: "write", shortWrite: 0 }]);
  assert.equal(error?.name, "FileWriteError");
  assert.equal(error?.code, "short_write");
  assert.match(error!.message, /accepted only 0 of 3 bytes/);
});

Deno.test("ENOSPC mid-write fails with no_space after retries", async () => {
  const error = await writeThrough([{
    op: "write",
    error: () => osError("ENOSPC"),
  }]);
  assert.equal(error?.code, "no_space");
  assert.equal(error?.attempts, 4);
  assert.match(error!.message, /disk is full/);
});

Deno.test("EIO on syncData fails with sync_failed and is never retried", async () => {
  const fs = faultFs(denoFileSystem, [{
    op: "syncData",
    error: () => osError("EIO"),
  }]);
  const error = await writeThrough([], {
    fs,
    retry: { minTimeout: 1, maxTimeout: 1 },
  });
  assert.equal(error?.code, "sync_failed");
  assert.match(error!.message, /not retried/);
  assert.equal(fs.calls.filter((c) => c.startsWith("syncData")).length, 1);
});

Deno.test("a failed fsync is not retried even by a policy that retries all", async () => {
  const fs = faultFs(denoFileSystem, [{
    op: "syncData",
    error: () => osError("EIO"),
  }]);
  const error = await writeThrough([], {
    fs,
    retry: { minTimeout: 1, maxTimeout: 1, shouldRetry: () => true } as never,
  });
  assert.equal(error?.code, "sync_failed");
  assert.equal(fs.calls.filter((c) => c.startsWith("syncData")).length, 1);
});

for (const code of ["EACCES", "EPERM"]) {
  Deno.test(`${code} on rename fails with permission_denied`, async () => {
    const error = await writeThrough([{
      op: "rename",
      error: () => osError(code),
    }]);
    assert.equal(error?.code, "permission_denied");
    assert.match(error!.message, new RegExp(code));
  });
}

Deno.test("EXDEV on rename fails with cross_device", async () => {
  const error = await writeThrough([{
    op: "rename",
    error: () => osError("EXDEV"),
  }]);
  assert.equal(error?.code, "cross_device");
});

Deno.test("a target on another device than its directory is refused", async () => {
  const fs: FileSystem = {
    ...denoFileSystem,
    lstat: async (p) => ({ ...(await denoFileSystem.lstat(p)), dev: 4242 }),
  };
  const error = await writeThrough([], { fs, retry: false });
  assert.equal(error?.code, "cross_device");
  assert.match(error!.message, /cannot be replaced atomically/);
});

Deno.test("EMFILE on the temp's open is retried and then succeeds", async () => {
  const error = await writeThrough([{
    op: "open",
    path: TEMP,
    nth: 1,
    error: () => osError("EMFILE"),
  }, {
    op: "open",
    path: TEMP,
    nth: 2,
    error: () => osError("EMFILE"),
  }]);
  assert.equal(error, undefined);
});

Deno.test("EIO on the directory fsync says the new content is in place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fs = faultFs(denoFileSystem, [{
      op: "sync",
      error: () => osError("EIO"),
    }]);
    await assert.rejects(writeText(`${dir}/a.txt`, "new", { fs }), {
      code: "sync_failed",
      message: /new content is in place/,
    });
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ENOSPC during appendJsonl leaves no torn line behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/log.jsonl`;
    await appendJsonl(path, { n: 1 });
    const fs = faultFs(denoFileSystem, [
      { op: "write", nth: 1, shortWrite: 3 },
      { op: "write", nth: 2, error: () => osError("ENOSPC") },
    ]);
    // A real short write then ENOSPC leaves "{"n" behind; the retry cuts it.
    const base = fs;
    await appendJsonl(path, { n: 2 }, { fs: base, ...fast });
    assert.equal(await readText(path), '{"n":1}\n{"n":2}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A real full disk: a 1 MiB tmpfs, written until full.
const root = Deno.uid() === 0;
let mountError: string | undefined;
if (root) {
  const probe = await Deno.makeTempDir();
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: String(e) }));
  if (!out.success) mountError = "mount failed";
  else await new Deno.Command("umount", { args: [probe] }).output();
  await Deno.remove(probe);
}

Deno.test({
  name: "a real full disk leaves the original intact and no temp behind",
  ignore: !root || mountError !== undefined,
}, async () => {
  const dir = await Deno.makeTempDir();
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir],
  }).output();
  assert.ok(mount.success);
  try {
    const path = `${dir}/a.txt`;
    await writeText(path, "original");
    // Fill the disk, then try to replace the file with something big.
    const filler = new Uint8Array(64 * 1024);
    let i = 0;
    try {
      while (true) await Deno.writeFile(`${dir}/fill${i++}`, filler);
    } catch { /* full */ }
    await assert.rejects(
      writeText(path, "x".repeat(256 * 1024), { ...fast }),
      { code: "no_space" },
    );
    assert.equal(await Deno.readTextFile(path), "original");
    const temps = [...Deno.readDirSync(dir)].filter((e) => TEMP.test(e.name));
    assert.deepEqual(temps, []);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
});
