import assert from "node:assert/strict";
import {
  appendJsonl,
  appendJsonlBatch,
  denoFileSystem,
  readJsonl,
} from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-jsonl-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("appendJsonl() appends one synced line per record", () =>
  withDir(async (dir) => {
    const path = `${dir}/log.jsonl`;
    const fs = faultFs(denoFileSystem, []);
    await appendJsonl(path, { a: 1 }, { fs });
    await appendJsonl(path, "two", { fs });
    assert.equal(await Deno.readTextFile(path), '{"a":1}\n"two"\n');
    assert.equal(fs.calls.filter((c) => c.startsWith("syncData")).length, 2);
  }));

Deno.test("appendJsonl() with durability none does not sync", () =>
  withDir(async (dir) => {
    const fs = faultFs(denoFileSystem, []);
    await appendJsonl(`${dir}/log.jsonl`, 1, { fs, durability: "none" });
    assert.equal(fs.calls.filter((c) => c.startsWith("syncData")).length, 0);
  }));

Deno.test("concurrent appends never interleave lines", () =>
  withDir(async (dir) => {
    const path = `${dir}/log.jsonl`;
    const big = "x".repeat(100_000);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => appendJsonl(path, { i, big })),
    );
    const { records, torn } = await readJsonl<{ i: number }>(path);
    assert.equal(torn, undefined);
    assert.deepEqual(records.map((r) => r.i), [...Array(20).keys()]);
  }));

Deno.test("appendJsonl() cuts off a torn last line before appending", () =>
  withDir(async (dir) => {
    const path = `${dir}/log.jsonl`;
    await Deno.writeTextFile(path, '{"n":1}\n{"n":2');
    await appendJsonl(path, { n: 3 });
    assert.equal(await Deno.readTextFile(path), '{"n":1}\n{"n":3}\n');
    await Deno.writeTextFile(path, "torn-without-any-newline");
    await appendJsonl(path, { n: 4 });
    assert.equal(await Deno.readTextFile(path), '{"n":4}\n');
  }));

Deno.test("appendJsonl() refuses values JSON cannot hold", () =>
  withDir(async (dir) => {
    await assert.rejects(appendJsonl(`${dir}/log.jsonl`, { n: NaN }), {
      code: "invalid_data",
    });
    await assert.rejects(appendJsonl(`${dir}/a\0`, 1), {
      code: "invalid_path",
    });
  }));

Deno.test("appendJsonl() reports a failed fsync without retrying", () =>
  withDir(async (dir) => {
    const fs = faultFs(denoFileSystem, [{
      op: "syncData",
      error: () => osError("EIO"),
    }]);
    await assert.rejects(appendJsonl(`${dir}/log.jsonl`, 1, { fs }), {
      code: "sync_failed",
    });
    assert.equal(fs.calls.filter((c) => c.startsWith("syncData")).length, 1);
  }));

Deno.test("readJsonl() reports a torn last line instead of failing", () =>
  withDir(async (dir) => {
    const path = `${dir}/log.jsonl`;
    await Deno.writeTextFile(path, '{"n":1}\n\n{"n":2}\r\n{"n":');
    const out = await readJsonl(path);
    assert.deepEqual(out.records, [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(out.torn, {
      line: 4,
      bytes: 5,
      reason: "no newline at the end",
    });
    assert.deepEqual(out.skipped, []);
    await Deno.writeTextFile(path, '{"n":1}\n{"n":\n');
    const garbled = await readJsonl(path);
    assert.equal(garbled.torn?.line, 2);
    assert.equal(garbled.records.length, 1);
  }));

Deno.test("readJsonl() fails on a corrupt middle line unless told to skip", () =>
  withDir(async (dir) => {
    const path = `${dir}/log.jsonl`;
    await Deno.writeTextFile(path, '{"n":1}\nnot json\n{"n":3}\n');
    await assert.rejects(readJsonl(path), {
      name: "FileReadError",
      code: "invalid_json",
      message: /line 2 is not valid JSON/,
    });
    const out = await readJsonl(path, { onCorrupt: "skip" });
    assert.deepEqual(out.records, [{ n: 1 }, { n: 3 }]);
    assert.equal(out.skipped.length, 1);
    assert.equal(out.skipped[0]!.line, 2);
    assert.match(out.skipped[0]!.reason, /line 2, column 1/);
  }));

Deno.test("readJsonl() of an empty file has no records; a missing one is not_found", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/empty.jsonl`, "");
    assert.deepEqual(await readJsonl(`${dir}/empty.jsonl`), {
      records: [],
      skipped: [],
    });
    await assert.rejects(readJsonl(`${dir}/missing.jsonl`), {
      code: "not_found",
    });
  }));

Deno.test("appendJsonlBatch() cuts a torn tail, then writes every record as its own line in one write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/log.jsonl`;
    await Deno.writeTextFile(path, '{"n":0}\n{"n":');
    const calls: string[] = [];
    const fs = faultFs(denoFileSystem, []);
    await appendJsonlBatch(path, [{ n: 1 }, { text: "a\nb" }, { n: 3 }], {
      fs,
    });
    calls.push(...fs.calls.filter((c) => c.startsWith("write ")));
    assert.equal(calls.length, 1);
    assert.deepEqual((await readJsonl(path)).records, [
      { n: 0 },
      { n: 1 },
      { text: "a\nb" },
      { n: 3 },
    ]);
    // Nothing to append: the file is not even created.
    await appendJsonlBatch(`${dir}/none.jsonl`, []);
    await assert.rejects(Deno.stat(`${dir}/none.jsonl`), Deno.errors.NotFound);
    await assert.rejects(
      appendJsonlBatch(path, [{ ok: 1 }, { bad: NaN }]),
      /NaN/,
    );
    assert.equal((await readJsonl(path)).records.length, 4); // all or none
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
