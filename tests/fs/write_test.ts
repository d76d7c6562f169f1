import assert from "node:assert/strict";
import {
  denoFileSystem,
  type FileSystem,
  FileWriteError,
  writeBytes,
  writeJson,
  writeStream,
  writeText,
} from "../../fs/mod.ts";
import { isTempName } from "../../fs/_atomic_write.ts";
import { tempName } from "../../fs/_temp_name.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-write-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

const fast = { retry: { minTimeout: 1, maxTimeout: 1 } };

Deno.test("writeBytes() creates a new file and leaves no temp behind", () =>
  withDir(async (dir) => {
    await writeBytes(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
    assert.deepEqual(
      await Deno.readFile(`${dir}/a.bin`),
      new Uint8Array([1, 2, 3]),
    );
    assert.deepEqual(names(dir), ["a.bin"]);
  }));

Deno.test("writeBytes() refuses data that is not a Uint8Array", () =>
  withDir(async (dir) => {
    await assert.rejects(
      writeBytes(`${dir}/a`, "text" as unknown as Uint8Array),
      { name: "FileWriteError", code: "invalid_data" },
    );
    assert.deepEqual(names(dir), []);
  }));

Deno.test("writeText() replaces a file and keeps its mode", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    await Deno.chmod(path, 0o640);
    await writeText(path, "new");
    assert.equal(await Deno.readTextFile(path), "new");
    assert.equal((await Deno.stat(path)).mode! & 0o7777, 0o640);
  }));

Deno.test("writeText() applies an explicit mode, even one the umask cuts", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    await writeText(path, "new", { mode: 0o600 });
    assert.equal((await Deno.stat(path)).mode! & 0o7777, 0o600);
    const fs = faultFs(denoFileSystem, []);
    await writeText(path, "newer", { mode: 0o666, fs });
    assert.equal((await Deno.stat(path)).mode! & 0o7777, 0o666);
    assert.equal(fs.calls.filter((c) => c.startsWith("chmod")).length, 1);
  }));

Deno.test("writeJson() writes indented JSON with a final newline", () =>
  withDir(async (dir) => {
    await writeJson(`${dir}/a.json`, { a: [1, "x"], d: new Date(0) });
    assert.equal(
      await Deno.readTextFile(`${dir}/a.json`),
      '{\n  "a": [\n    1,\n    "x"\n  ],\n  "d": "1970-01-01T00:00:00.000Z"\n}\n',
    );
    await writeJson(`${dir}/b.json`, { a: 1 }, { space: 0 });
    assert.equal(await Deno.readTextFile(`${dir}/b.json`), '{"a":1}\n');
  }));

Deno.test("writeJson() refuses values JSON cannot hold and names where", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.json`;
    await Deno.writeTextFile(path, "{}");
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const cases: Array<[unknown, RegExp]> = [
      [{ f: () => 1 }, /"\/f" is a function/],
      [{ n: [1, NaN] }, /"\/n\/1" is NaN/],
      [{ n: Infinity }, /is Infinity/],
      [{ b: 1n }, /is a bigint/],
      [{ s: Symbol("x") }, /is a symbol/],
      [cycle, /cycle/],
      [undefined, /the value is undefined/],
    ];
    for (const [value, message] of cases) {
      await assert.rejects(writeJson(path, value), {
        name: "FileWriteError",
        code: "invalid_data",
        message,
      });
    }
    assert.equal(await Deno.readTextFile(path), "{}");
    assert.deepEqual(names(dir), ["a.json"]);
  }));

Deno.test("durability levels choose which fsyncs run", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    const expect = {
      durable: { syncData: 1, dirSync: 1 },
      atomic: { syncData: 1, dirSync: 0 },
      none: { syncData: 0, dirSync: 0 },
    };
    for (const [durability, want] of Object.entries(expect)) {
      const fs = faultFs(denoFileSystem, []);
      await writeText(path, durability, {
        fs,
        durability: durability as "durable",
      });
      assert.equal(
        fs.calls.filter((c) => c.startsWith("syncData ")).length,
        want.syncData,
        durability,
      );
      assert.equal(
        fs.calls.filter((c) => c === `sync ${dir}`).length,
        want.dirSync,
        durability,
      );
      assert.equal(await Deno.readTextFile(path), durability);
    }
  }));

Deno.test("the write recipe runs its steps in order", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    const fs = faultFs(denoFileSystem, []);
    await writeText(path, "new", { fs });
    const ops = fs.calls.map((c) => c.split(" ")[0]);
    // A possible orphan sweep of the directory comes first.
    const from = ops.indexOf("lstat");
    assert.deepEqual(ops.slice(from), [
      "lstat",
      "open",
      "tryLock",
      "write",
      // One fstat checks the size, that the temp still has a name (a sweep
      // may take it in the instant before its lock) and that it is on the
      // target's device (a rename across devices would not be atomic).
      "fstat",
      "syncData",
      "rename",
      // The temp stays locked until it has its new name; then it is no
      // longer a temp, so it is closed without an explicit unlock.
      "close",
      "open",
      "sync",
      "close",
    ]);
    const temp = fs.calls.find((c) => c.startsWith("open "))!.slice(5);
    assert.ok(isTempName(temp.split("/").pop()!));
  }));

Deno.test("beforeCommit runs while the temp is synced, before the rename", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    const fs = faultFs(denoFileSystem, []);
    let seen: string[] = [];
    let done = false;
    await writeText(path, "new", {
      fs,
      beforeCommit: async () => {
        // The new content is complete in the temp, the target untouched,
        // and the rename waits.
        seen = fs.calls.map((c) => c.split(" ")[0]!);
        const temp = names(dir).find((n) => isTempName(n))!;
        assert.equal(Deno.readTextFileSync(`${dir}/${temp}`), "new");
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(Deno.readTextFileSync(path), "old");
        done = true;
      },
    });
    assert.ok(done);
    // The fsync is under way (started) when the hook runs.
    assert.equal(seen.at(-1), "syncData");
    const ops = fs.calls.map((c) => c.split(" ")[0]);
    assert.ok(ops.indexOf("rename") >= seen.length);
    assert.equal(await Deno.readTextFile(path), "new");
  }));

Deno.test("beforeCommit that throws leaves the file unchanged and is not retried", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    for (const durability of ["durable", "none"] as const) {
      let runs = 0;
      const refusal = new Error("not this content");
      const err = await writeText(path, "new", {
        durability,
        // Even a policy that retries everything does not retry a refusal.
        retry: { maxAttempts: 3, minTimeout: 1, isRetriable: () => true },
        beforeCommit: async () => {
          runs++;
          await Promise.resolve();
          throw refusal;
        },
      }).catch((e) => e);
      assert.equal(runs, 1, durability);
      assert.equal(err.code, "io_error");
      assert.equal(
        err.cause,
        refusal,
        "anything but a SturdyError is the cause",
      );
      assert.equal(await Deno.readTextFile(path), "old");
      assert.deepEqual(names(dir), ["a.txt"], "the temp is removed");
    }
    // A SturdyError is passed through as it is.
    const typed = await writeText(path, "new", {
      beforeCommit: () => {
        throw new FileWriteError("refused", { code: "refused" });
      },
    }).catch((e) => e);
    assert.ok(typed instanceof FileWriteError);
    assert.equal(typed.code, "refused");
    assert.equal(await Deno.readTextFile(path), "old");
  }));

Deno.test("whileWriting runs alongside the write; the rename waits for it", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.bin`;
    await Deno.writeTextFile(path, "old");
    const fs = faultFs(denoFileSystem, []);
    // Big enough for an asynchronous write on the default file system.
    const data = new Uint8Array(1_048_576).fill(7);
    let seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    let settled = false;
    const writing = writeBytes(path, data, {
      fs,
      whileWriting: async () => {
        // The temp exists; the data is being written.
        seen = fs.calls.map((c) => c.split(" ")[0]!);
        assert.ok(names(dir).some((n) => isTempName(n)));
        await gate;
      },
    }).then(() => settled = true);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(settled, false, "the write waits for whileWriting");
    assert.equal(Deno.readTextFileSync(path), "old");
    assert.ok(!fs.calls.some((c) => c.startsWith("rename")));
    release();
    await writing;
    assert.ok(!seen.includes("syncData"), "it started before the sync");
    assert.deepEqual(await Deno.readFile(path), data);
  }));

Deno.test("whileWriting that throws leaves the file unchanged, is not retried, and is awaited", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    let runs = 0;
    let finished = false;
    const refusal = new FileWriteError("refused", { code: "refused" });
    const err = await writeText(path, "new", {
      retry: { maxAttempts: 3, minTimeout: 1, isRetriable: () => true },
      whileWriting: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 20));
        finished = true;
        throw refusal;
      },
    }).catch((e) => e);
    assert.equal(err, refusal);
    assert.equal(runs, 1);
    assert.ok(finished);
    assert.equal(await Deno.readTextFile(path), "old");
    assert.deepEqual(names(dir), ["a.txt"], "the temp is removed");
    // A failed write still waits for whileWriting before it rejects.
    let done = false;
    const fs = faultFs(denoFileSystem, [
      { op: "syncData", error: () => osError("EIO") },
    ]);
    const failed = await writeText(path, "new", {
      fs,
      whileWriting: async () => {
        await new Promise((r) => setTimeout(r, 20));
        done = true;
      },
    }).catch((e) => e);
    assert.equal(failed.code, "sync_failed");
    assert.ok(done, "settled only after whileWriting");
    assert.equal(await Deno.readTextFile(path), "old");
  }));

Deno.test("beforeCommit runs again when an attempt is retried for another reason", () =>
  withDir(async (dir) => {
    let runs = 0;
    let settled = 0;
    const beforeCommit = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
      settled++;
    };
    // A failed write: that attempt never got as far.
    const fs = faultFs(denoFileSystem, [
      { op: "write", nth: 1, error: () => osError("EAGAIN") },
    ]);
    await writeBytes(`${dir}/a.bin`, new Uint8Array([1]), {
      fs,
      ...fast,
      beforeCommit,
    });
    assert.equal(runs, 1);
    assert.equal(settled, 1);
    // A failed rename: each attempt ran it, and it had settled.
    const fs2 = faultFs(denoFileSystem, [
      { op: "rename", nth: 1, error: () => osError("EBUSY") },
    ]);
    await writeBytes(`${dir}/b.bin`, new Uint8Array([1]), {
      fs: fs2,
      ...fast,
      beforeCommit,
    });
    assert.equal(runs, 3);
    assert.equal(settled, 3);
    // A failed open: the attempt never got as far.
    const fs3 = faultFs(denoFileSystem, [
      {
        op: "open",
        path: /sturdy-tmp$/,
        nth: 1,
        error: () => osError("EMFILE"),
      },
    ]);
    await writeBytes(`${dir}/c.bin`, new Uint8Array([1]), {
      fs: fs3,
      ...fast,
      beforeCommit,
    });
    assert.equal(runs, 4);
    assert.deepEqual(names(dir), ["a.bin", "b.bin", "c.bin"]);
  }));

Deno.test("rewriteStart overwrites the start once the stream is written, before the sync", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    const fs = faultFs(denoFileSystem, []);
    let seen = 0;
    const body = new Blob(["????:", "streamed ", "body"]).stream();
    await writeStream(path, body, {
      fs,
      rewriteStart: () => {
        // Called after the last chunk, with the length known.
        seen = fs.calls.filter((c) => c.startsWith("write ")).length;
        return new TextEncoder().encode("0014");
      },
    });
    assert.equal(await Deno.readTextFile(path), "0014:streamed body");
    assert.equal(seen, 3);
    const ops = fs.calls.map((c) => c.split(" ")[0]);
    assert.ok(ops.lastIndexOf("write") < ops.indexOf("syncData"));
    // More bytes than were written is refused, and nothing changes.
    await assert.rejects(
      writeText(path, "ab", {
        rewriteStart: () => new TextEncoder().encode("abc"),
      }),
      { code: "invalid_data" },
    );
    assert.equal(await Deno.readTextFile(path), "0014:streamed body");
    assert.deepEqual(names(dir), ["a.txt"]);
  }));

Deno.test("symlinks: follow writes through the link and keeps it", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/real.txt`, "old");
    await Deno.symlink("real.txt", `${dir}/link.txt`);
    await writeText(`${dir}/link.txt`, "new");
    assert.ok((await Deno.lstat(`${dir}/link.txt`)).isSymlink);
    assert.equal(await Deno.readTextFile(`${dir}/real.txt`), "new");
    assert.deepEqual(names(dir), ["link.txt", "real.txt"]);
  }));

Deno.test("symlinks: follow creates the target of a dangling link", () =>
  withDir(async (dir) => {
    await Deno.symlink(`${dir}/later.txt`, `${dir}/link.txt`);
    await writeText(`${dir}/link.txt`, "made");
    assert.equal(await Deno.readTextFile(`${dir}/later.txt`), "made");
  }));

Deno.test("symlinks: replace swaps the link for a regular file", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/real.txt`, "old");
    await Deno.symlink("real.txt", `${dir}/link.txt`);
    await writeText(`${dir}/link.txt`, "new", { symlinks: "replace" });
    assert.ok((await Deno.lstat(`${dir}/link.txt`)).isFile);
    assert.equal(await Deno.readTextFile(`${dir}/link.txt`), "new");
    assert.equal(await Deno.readTextFile(`${dir}/real.txt`), "old");
  }));

Deno.test("symlinks: reject refuses a link with code symlink_rejected", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/real.txt`, "old");
    await Deno.symlink("real.txt", `${dir}/link.txt`);
    await assert.rejects(
      writeText(`${dir}/link.txt`, "new", { symlinks: "reject" }),
      { code: "symlink_rejected", message: /symbolic link/ },
    );
    assert.equal(await Deno.readTextFile(`${dir}/real.txt`), "old");
    assert.deepEqual(names(dir), ["link.txt", "real.txt"]);
  }));

Deno.test("a symlink loop fails with code symlink_loop", () =>
  withDir(async (dir) => {
    await Deno.symlink("b", `${dir}/a`);
    await Deno.symlink("a", `${dir}/b`);
    await assert.rejects(writeText(`${dir}/a`, "x"), { code: "symlink_loop" });
  }));

Deno.test("backup: true keeps the previous content as <name>.bak", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await writeText(path, "one", { backup: true });
    assert.deepEqual(names(dir), ["a.txt"]); // nothing to back up yet
    await Deno.chmod(path, 0o600);
    await writeText(path, "two", { backup: true });
    await writeText(path, "three", { backup: true });
    assert.equal(await Deno.readTextFile(path), "three");
    assert.equal(await Deno.readTextFile(`${path}.bak`), "two");
    assert.equal((await Deno.stat(`${path}.bak`)).mode! & 0o777, 0o600);
    assert.deepEqual(names(dir), ["a.txt", "a.txt.bak"]);
  }));

Deno.test("a directory as the target fails with is_a_directory", () =>
  withDir(async (dir) => {
    await Deno.mkdir(`${dir}/sub`);
    await assert.rejects(writeText(`${dir}/sub`, "x"), {
      name: "FileWriteError",
      code: "is_a_directory",
      message: /is a directory/,
    });
    assert.deepEqual(names(dir), ["sub"]);
  }));

Deno.test("a path with NUL fails with invalid_path before touching disk", () =>
  withDir(async (dir) => {
    const fs = faultFs(denoFileSystem, []);
    await assert.rejects(writeText(`${dir}/a\0b`, "x", { fs }), {
      code: "invalid_path",
      message: /NUL/,
    });
    await assert.rejects(writeJson("", 1), { code: "invalid_path" });
    assert.deepEqual(fs.calls, []);
  }));

Deno.test("a missing directory fails with not_found", () =>
  withDir(async (dir) => {
    await assert.rejects(writeText(`${dir}/no/a.txt`, "x"), {
      code: "not_found",
      message: /no\/a\.txt/,
    });
  }));

Deno.test("a missing write permission names the flag to add", {
  permissions: { read: true, write: false },
}, async () => {
  await assert.rejects(writeText("/tmp/sturdy-no-permission.txt", "x"), {
    code: "missing_permission",
    message: /--allow-write/,
  });
});

Deno.test("concurrent writes to one path run one at a time", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    const fs = faultFs(denoFileSystem, []);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => writeText(path, `v${i}`, { fs })),
    );
    assert.equal(await Deno.readTextFile(path), "v9");
    // Between a temp's open and its rename no other temp is opened.
    let open: string | undefined;
    for (const call of fs.calls) {
      const [op, p] = call.split(" ");
      if (op === "open" && p!.endsWith(".sturdy-tmp")) {
        assert.equal(open, undefined, "two writes overlapped");
        open = p;
      }
      if (op === "rename") open = undefined;
    }
    assert.equal(fs.calls.filter((c) => c.startsWith("rename")).length, 10);
  }));

Deno.test("coalesce: true collapses a burst into the first and last write", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    const fs = faultFs(denoFileSystem, []);
    const writes = Array.from(
      { length: 6 },
      (_, i) => writeText(path, `v${i}`, { fs, coalesce: true }),
    );
    await Promise.all(writes); // every caller resolves
    assert.equal(await Deno.readTextFile(path), "v5");
    assert.equal(fs.calls.filter((c) => c.startsWith("rename")).length, 2);
  }));

Deno.test("writeStream() writes a large stream chunk by chunk", () =>
  withDir(async (dir) => {
    const chunk = new Uint8Array(1 << 16).fill(7);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 80) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const fs = faultFs(denoFileSystem, []);
    await writeStream(`${dir}/big.bin`, stream, { fs });
    assert.equal((await Deno.stat(`${dir}/big.bin`)).size, 80 * (1 << 16));
    assert.equal(fs.calls.filter((c) => c.startsWith("write ")).length, 80);
    assert.deepEqual(names(dir), ["big.bin"]);
  }));

Deno.test("writeStream() retries a failure before the first chunk was read", () =>
  withDir(async (dir) => {
    const fs = faultFs(denoFileSystem, [
      {
        op: "open",
        path: /sturdy-tmp$/,
        nth: 1,
        error: () => osError("EMFILE"),
      },
    ]);
    await writeStream(`${dir}/a.txt`, new Blob(["abc"]).stream(), {
      fs,
      ...fast,
    });
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "abc");
  }));

Deno.test("writeStream() does not retry once the stream was consumed", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "old");
    const fs = faultFs(denoFileSystem, [
      { op: "write", nth: 1, error: () => osError("ENOSPC") },
    ]);
    await assert.rejects(
      writeStream(`${dir}/a.txt`, new Blob(["abc"]).stream(), { fs, ...fast }),
      { code: "no_space" },
    );
    assert.equal(fs.calls.filter((c) => c.startsWith("write ")).length, 1);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old");
    assert.deepEqual(names(dir), ["a.txt"]);
  }));

Deno.test("writeStream() fails cleanly when the stream errors or yields text", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "old");
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1]));
        controller.error(new Error("source died"));
      },
    });
    await assert.rejects(
      writeStream(`${dir}/a.txt`, broken, { retry: false }),
      {
        name: "FileWriteError",
        message: /source died/,
      },
    );
    const text = new Blob(["x"]).stream().pipeThrough(new TextDecoderStream());
    await assert.rejects(
      writeStream(
        `${dir}/a.txt`,
        text as unknown as ReadableStream<Uint8Array>,
      ),
      { code: "invalid_data", message: /TextEncoderStream/ },
    );
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old");
    assert.deepEqual(names(dir), ["a.txt"]);
  }));

Deno.test("a write that timed out never commits later", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    const clock = new FakeClock();
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    let renamed = false;
    const fs: FileSystem = {
      ...denoFileSystem,
      async open(p, o) {
        const handle = await denoFileSystem.open(p, o);
        return {
          write: (b) => handle.write(b),
          read: (b) => handle.read(b),
          syncData: async () => {
            await gate;
            await handle.syncData();
          },
          sync: () => handle.sync(),
          stat: () => handle.stat(),
          close: () => handle.close(),
        };
      },
      rename(from, to) {
        renamed = true;
        return denoFileSystem.rename(from, to);
      },
    };
    const write = writeText(path, "new", { fs, clock, timeout: 1_000 });
    // Let the write reach the blocked fsync, then let time pass.
    while (!names(dir).some(isTempName)) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const outcome = assert.rejects(write, { code: "io_timeout" });
    await clock.tick(1_000);
    await outcome;
    release();
    while (names(dir).some(isTempName)) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(renamed, false);
    assert.equal(await Deno.readTextFile(path), "old");
  }));

Deno.test("an aborted signal rejects with its reason and writes nothing", () =>
  withDir(async (dir) => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      writeText(`${dir}/a.txt`, "x", { signal: controller.signal }),
      { message: "stop" },
    );
    assert.deepEqual(names(dir), []);
  }));

Deno.test("a write sweeps orphan temps from its directory but not live ones", () =>
  withDir(async (dir) => {
    const dead = `.a.txt.999999999-00000000-0-${"ab".repeat(12)}.sturdy-tmp`;
    await Deno.writeTextFile(`${dir}/${dead}`, "half");
    await Deno.utime(`${dir}/${dead}`, 0, 0);
    const live = tempName("a.txt"); // this process, writing right now
    await Deno.writeTextFile(`${dir}/${live}`, "in progress");
    await writeText(`${dir}/b.txt`, "x");
    assert.deepEqual(names(dir), [live, "b.txt"].sort());
  }));

Deno.test("a write whose temp a sweep removed before its lock starts over", () =>
  withDir(async (dir) => {
    const path = `${dir}/a.txt`;
    await Deno.writeTextFile(path, "old");
    let taken = 0;
    // The first temp is unlinked right after it is created, as a sweep
    // that found it unlocked in that instant would do.
    const fs: FileSystem = {
      ...denoFileSystem,
      async open(p, options) {
        const handle = await denoFileSystem.open(p, options);
        if (options.createNew && taken++ === 0) await Deno.remove(p);
        return handle;
      },
    };
    await writeText(path, "new", { fs });
    assert.equal(taken, 2);
    assert.equal(await Deno.readTextFile(path), "new");
    assert.deepEqual(names(dir), ["a.txt"]);
  }));
