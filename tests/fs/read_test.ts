import assert from "node:assert/strict";
import {
  denoFileSystem,
  isNotFound,
  readBytes,
  readJson,
  readText,
} from "../../fs/mod.ts";
import { firstInvalidUtf8 } from "../../fs/_decode.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-read-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readBytes() returns the file's bytes", () =>
  withDir(async (dir) => {
    await Deno.writeFile(`${dir}/a`, new Uint8Array([0, 255]));
    assert.deepEqual(await readBytes(`${dir}/a`), new Uint8Array([0, 255]));
  }));

Deno.test("readBytes() retries a transient EIO and then succeeds", () =>
  withDir(async (dir) => {
    await Deno.writeFile(`${dir}/a`, new Uint8Array([1]));
    const fs = faultFs(denoFileSystem, [
      { op: "readFile", nth: 1, error: () => osError("EIO") },
    ]);
    const bytes = await readBytes(`${dir}/a`, {
      fs,
      retry: { minTimeout: 1, maxTimeout: 1 },
    });
    assert.deepEqual(bytes, new Uint8Array([1]));
    assert.equal(fs.calls.filter((c) => c.startsWith("readFile")).length, 2);
  }));

Deno.test("a missing file fails with not_found and no retry", () =>
  withDir(async (dir) => {
    const fs = faultFs(denoFileSystem, []);
    const err = await readText(`${dir}/missing`, { fs }).catch((e) => e);
    assert.equal(err.name, "FileReadError");
    assert.equal(err.code, "not_found");
    assert.ok(isNotFound(err));
    assert.equal(fs.calls.length, 1);
  }));

Deno.test("a directory where a file is expected fails with is_a_directory", () =>
  withDir(async (dir) => {
    for (const read of [readBytes, readText, readJson]) {
      await assert.rejects(read(dir), {
        code: "is_a_directory",
        message: /is a directory/,
      });
    }
  }));

Deno.test("a path with NUL fails with invalid_path", async () => {
  await assert.rejects(readText("a\0b"), {
    name: "FileReadError",
    code: "invalid_path",
  });
});

Deno.test("a missing read permission names the flag to add", {
  permissions: { read: false },
}, async () => {
  await assert.rejects(readText("/etc/hostname"), {
    code: "missing_permission",
    message: /--allow-read/,
  });
});

Deno.test("maxBytes refuses a larger file with too_large", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, "12345");
    await assert.rejects(readBytes(`${dir}/a`, { maxBytes: 4 }), {
      code: "too_large",
      message: /5 bytes, more than maxBytes \(4\)/,
    });
    assert.equal(await readText(`${dir}/a`, { maxBytes: 5 }), "12345");
  }));

Deno.test("readBytes() into a buffer: a view of it when the file fits with a byte to spare", () =>
  withDir(async (dir) => {
    const buffer = new Uint8Array(8).fill(9);
    await Deno.writeFile(`${dir}/a`, new Uint8Array([1, 2, 3]));
    const bytes = await readBytes(`${dir}/a`, { into: buffer });
    assert.equal(bytes.buffer, buffer.buffer);
    assert.deepEqual(bytes, new Uint8Array([1, 2, 3]));
    // Read again into the same buffer: the earlier view now shows it.
    await Deno.writeFile(`${dir}/b`, new Uint8Array([4, 5]));
    const again = await readBytes(`${dir}/b`, { into: buffer });
    assert.deepEqual(again, new Uint8Array([4, 5]));
    assert.deepEqual(bytes.subarray(0, 2), new Uint8Array([4, 5]));
    // An empty file.
    await Deno.writeFile(`${dir}/e`, new Uint8Array());
    assert.equal((await readBytes(`${dir}/e`, { into: buffer })).length, 0);
  }));

Deno.test("readBytes() into a buffer too small reads into a new one", () =>
  withDir(async (dir) => {
    const buffer = new Uint8Array(4);
    for (const size of [4, 5, 100_000]) {
      const data = new Uint8Array(size).map((_, i) => i % 251);
      await Deno.writeFile(`${dir}/a`, data);
      const bytes = await readBytes(`${dir}/a`, { into: buffer });
      assert.notEqual(bytes.buffer, buffer.buffer, `${size} bytes`);
      assert.deepEqual(bytes, data);
    }
  }));

Deno.test("readBytes() into a buffer still refuses a file over maxBytes", () =>
  withDir(async (dir) => {
    await Deno.writeFile(`${dir}/a`, new Uint8Array(10));
    const err = await readBytes(`${dir}/a`, {
      into: new Uint8Array(64),
      maxBytes: 9,
    }).catch((e) => e);
    assert.equal(err.code, "too_large");
  }));

Deno.test("readBytes() into a buffer reads a large file whole and sees it grow", () =>
  withDir(async (dir) => {
    // Larger than one synchronous read of the default file system.
    const data = new Uint8Array(300_000).map((_, i) => i % 253);
    await Deno.writeFile(`${dir}/a`, data);
    const buffer = new Uint8Array(400_000);
    assert.deepEqual(await readBytes(`${dir}/a`, { into: buffer }), data);
    // A file that grows after it was sized is read to its end: a file
    // system whose fstat reports the old size.
    const grown = new Uint8Array(300_010).map((_, i) => i % 253);
    await Deno.writeFile(`${dir}/a`, grown);
    const stale: typeof denoFileSystem = {
      ...denoFileSystem,
      open: async (path, options) => {
        const file = await denoFileSystem.open(path, options);
        const stat = file.stat.bind(file);
        return Object.assign(file, {
          stat: async () => ({ ...(await stat()), size: 300_000 }),
        });
      },
    };
    assert.deepEqual(
      await readBytes(`${dir}/a`, { into: buffer, fs: stale }),
      grown,
    );
    // Grown past the buffer: read again into a new one.
    const small = new Uint8Array(300_005);
    const bytes = await readBytes(`${dir}/a`, { into: small, fs: stale });
    assert.notEqual(bytes.buffer, small.buffer);
    assert.deepEqual(bytes, grown);
  }));

Deno.test("readText() drops a BOM and names the offset of bad UTF-8", () =>
  withDir(async (dir) => {
    await Deno.writeFile(
      `${dir}/bom`,
      new Uint8Array([0xef, 0xbb, 0xbf, 0xc3, 0xa9]),
    );
    assert.equal(await readText(`${dir}/bom`), "é");
    await Deno.writeFile(
      `${dir}/bad`,
      new Uint8Array([0x61, 0x62, 0xc3, 0x28]),
    );
    await assert.rejects(readText(`${dir}/bad`), {
      code: "invalid_data",
      message: /byte 2 \(0xc3\) is not valid UTF-8/,
    });
  }));

Deno.test("firstInvalidUtf8() finds overlong, surrogate and truncated forms", () => {
  const at = (...b: number[]) => firstInvalidUtf8(new Uint8Array(b));
  assert.equal(at(0x61, 0xe2, 0x82, 0xac), -1); // €
  assert.equal(at(0xf0, 0x9f, 0x98, 0x80), -1); // emoji
  assert.equal(at(0xc0, 0x80), 0); // overlong
  assert.equal(at(0x61, 0xed, 0xa0, 0x80), 1); // surrogate
  assert.equal(at(0x61, 0xe2, 0x82), 1); // truncated
  assert.equal(at(0xf5, 0x80, 0x80, 0x80), 0); // above U+10FFFF
  assert.equal(at(0x80), 0); // lone continuation
});

Deno.test("readJson() parses JSON, with a BOM too", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.json`, '\ufeff{"a": [1, 2]}');
    assert.deepEqual(await readJson(`${dir}/a.json`), { a: [1, 2] });
  }));

Deno.test("readJson() names the line and column of bad JSON", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.json`, '{\n  "a": 1,\n  "b": tru\n}');
    const err = (await readJson(`${dir}/a.json`).catch((e) => e)) as Error & {
      code: string;
    };
    assert.equal(err.name, "FileReadError");
    assert.equal(err.code, "invalid_json");
    assert.match(err.message, /a\.json": invalid JSON at line 3, column 8/);
    await Deno.writeTextFile(`${dir}/b.json`, '{"a":');
    await assert.rejects(readJson(`${dir}/b.json`), {
      message: /line 1, column 6: the JSON ends too early/,
    });
  }));

Deno.test("readJson() applies a validator that returns false or throws", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.json`, '{"n": "x"}');
    const isN = (v: unknown): v is { n: number } =>
      typeof (v as { n?: unknown }).n === "number";
    await assert.rejects(readJson(`${dir}/a.json`, { validate: isN }), {
      code: "invalid_data",
      message: /failed validation/,
    });
    await assert.rejects(
      readJson(`${dir}/a.json`, {
        validate: () => {
          throw new Error("n must be a number");
        },
      }),
      { code: "invalid_data", message: /n must be a number/ },
    );
    const ok = await readJson<{ n: string }>(`${dir}/a.json`, {
      validate: () => {},
    });
    assert.equal(ok.n, "x");
  }));

Deno.test("readJson() reads a 100 MB file and refuses it under a smaller maxBytes", () =>
  withDir(async (dir) => {
    const path = `${dir}/big.json`;
    const item = new TextEncoder().encode(`"${"x".repeat(1022)}",`);
    const count = 100 * 1024; // 100 × 1024 × 1024 bytes
    const file = await Deno.open(path, { write: true, create: true });
    try {
      await file.write(new TextEncoder().encode("["));
      const block = new Uint8Array(item.length * 1024);
      for (let i = 0; i < 1024; i++) block.set(item, i * item.length);
      for (let i = 0; i < count / 1024; i++) await file.write(block);
      await file.write(new TextEncoder().encode("0]"));
    } finally {
      file.close();
    }
    const value = await readJson<unknown[]>(path);
    assert.equal(value.length, count + 1);
    await assert.rejects(readJson(path, { maxBytes: 50 * 1024 * 1024 }), {
      code: "too_large",
    });
  }));
