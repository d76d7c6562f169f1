import assert from "node:assert/strict";
import {
  denoFileSystem,
  ErrorReporter,
  FileWriteError,
  type IoFailure,
  readText,
} from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function failure(i: number, overrides: Partial<IoFailure> = {}): IoFailure {
  return {
    operation: "writeText",
    path: `/data/file-${i}.txt`,
    error: new FileWriteError(`Cannot write "/data/file-${i}.txt": full`, {
      code: "no_space",
    }),
    attempts: 4,
    ...overrides,
  };
}

Deno.test("ErrorReporter persists every field as one JSONL line under reports/io", async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock(Date.UTC(2025, 0, 2));
    const reporter = new ErrorReporter({ dir, clock });
    await reporter.report(failure(1, { context: { job: "sync" } }));
    assert.equal(reporter.directory, `${dir}/reports/io`);
    const text = await Deno.readTextFile(`${dir}/reports/io/io-00000001.jsonl`);
    assert.deepEqual(JSON.parse(text), {
      format: "sturdy.io-report/1",
      timestamp: "2025-01-02T00:00:00.000Z",
      operation: "writeText",
      path: "/data/file-1.txt",
      errorType: "FileWriteError",
      code: "no_space",
      message: 'Cannot write "/data/file-1.txt": full',
      context: { job: "sync" },
      attempts: 4,
    });
    assert.ok(text.endsWith("}\n"));
  });
});

Deno.test("ErrorReporter records failed fs/ calls passed the reporter option", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir });
    await assert.rejects(readText(`${dir}/missing.txt`, { reporter }));
    await reporter.flush();
    const [report] = await reporter.list();
    assert.equal(report?.operation, "readText");
    assert.equal(report?.code, "not_found");
    assert.equal(report?.errorType, "FileReadError");
  });
});

Deno.test("list() returns reports newest first and filters by operation, path, time and limit", async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock(1_000_000);
    const reporter = new ErrorReporter({ dir, clock });
    for (let i = 0; i < 5; i++) {
      await reporter.report(
        failure(i, i === 3 ? { operation: "readJson" } : {}),
      );
      await clock.tick(1_000);
    }
    await reporter.report(failure(9, { path: "/other/x.txt" }));
    const all = await reporter.list();
    assert.deepEqual(all.map((r) => r.path), [
      "/other/x.txt",
      "/data/file-4.txt",
      "/data/file-3.txt",
      "/data/file-2.txt",
      "/data/file-1.txt",
      "/data/file-0.txt",
    ]);
    assert.deepEqual(
      (await reporter.list({ operation: "readJson" })).map((r) => r.path),
      ["/data/file-3.txt"],
    );
    assert.equal((await reporter.list({ path: "/data" })).length, 5);
    assert.equal((await reporter.list({ path: "/data/file-2.txt" })).length, 1);
    assert.equal((await reporter.list({ path: "/dat" })).length, 0);
    assert.equal((await reporter.list({ since: 1_003_000 })).length, 3);
    assert.equal(
      (await reporter.list({ since: new Date(1_004_000) })).length,
      2,
    );
    assert.equal((await reporter.list({ limit: 2 })).length, 2);
  });
});

Deno.test("ErrorReporter rotates by size and keeps at most maxFiles files", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir, maxBytes: 600, maxFiles: 3 });
    for (let i = 0; i < 40; i++) await reporter.report(failure(i));
    const names = [...Deno.readDirSync(reporter.directory)].map((e) => e.name)
      .sort();
    assert.equal(names.length, 3);
    for (const name of names) {
      const size = (await Deno.stat(`${reporter.directory}/${name}`)).size;
      assert.ok(size <= 600, `${name} holds ${size} bytes`);
    }
    const kept = await reporter.list();
    assert.equal(kept[0]?.path, "/data/file-39.txt");
    assert.ok(kept.length < 40 && kept.length >= 3);
    // A new reporter continues after the newest file.
    const again = new ErrorReporter({ dir, maxBytes: 600, maxFiles: 3 });
    await again.report(failure(40));
    assert.equal(
      (await again.list({ limit: 1 }))[0]?.path,
      "/data/file-40.txt",
    );
  });
});

Deno.test("concurrent reports are serialised into whole lines", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir });
    const long = "x".repeat(5_000);
    await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => reporter.report(failure(i, { context: { long } })),
      ),
    );
    const text = await Deno.readTextFile(
      `${reporter.directory}/io-00000001.jsonl`,
    );
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, 50);
    for (const line of lines) assert.equal(JSON.parse(line).context.long, long);
    // Reports keep the order they were made in.
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).path),
      Array.from({ length: 50 }, (_, i) => `/data/file-${i}.txt`),
    );
  });
});

Deno.test("list() skips a torn last line and foreign lines", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir });
    await reporter.report(failure(1));
    await Deno.writeTextFile(
      `${reporter.directory}/io-00000001.jsonl`,
      '{"not":"a report"}\n{"format":"sturdy.io-rep',
      { append: true },
    );
    const reports = await reporter.list();
    assert.deepEqual(reports.map((r) => r.path), ["/data/file-1.txt"]);
    // After a restart, the next report starts on a line of its own.
    const restarted = new ErrorReporter({ dir });
    await restarted.report(failure(2));
    assert.deepEqual((await restarted.list()).map((r) => r.path), [
      "/data/file-2.txt",
      "/data/file-1.txt",
    ]);
  });
});

Deno.test("report() never throws: a failing disk drops the report and counts it", async () => {
  await withDir(async (dir) => {
    const seen: unknown[] = [];
    const fs = faultFs(denoFileSystem, [{
      op: "write",
      error: () => osError("ENOSPC"),
    }]);
    const reporter = new ErrorReporter({
      dir,
      fs,
      onError: (err) => {
        seen.push(err);
        throw new Error("a hook that throws is ignored");
      },
    });
    await reporter.report(failure(1));
    await reporter.report(failure(2));
    assert.equal(reporter.dropped, 2);
    assert.equal(seen.length, 2);
    assert.equal((seen[0] as { code: string }).code, "ENOSPC");
    // No file handle is left open (the sanitizer checks) and nothing
    // recursed: the fs was called for exactly the two reports.
    assert.equal(fs.calls.filter((c) => c.startsWith("write")).length, 2);
  });
});

Deno.test("a report whose context JSON cannot hold is stored without it", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir });
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    await reporter.report(failure(1, { context: loop }));
    await reporter.report(failure(2, { context: { n: 10n } as never }));
    const reports = await reporter.list();
    assert.equal(reports.length, 2);
    assert.deepEqual(reports[0]?.context, { unserializable: true });
    assert.equal(reporter.dropped, 0);
  });
});

Deno.test("list() on a reporter that never wrote returns nothing", async () => {
  await withDir(async (dir) => {
    const reporter = new ErrorReporter({ dir: `${dir}/nowhere` });
    assert.deepEqual(await reporter.list(), []);
  });
});

Deno.test("await using flushes pending reports", async () => {
  await withDir(async (dir) => {
    {
      await using reporter = new ErrorReporter({ dir });
      reporter.report(failure(1));
      reporter.report(failure(2));
    }
    const text = await Deno.readTextFile(`${dir}/reports/io/io-00000001.jsonl`);
    assert.equal(text.trimEnd().split("\n").length, 2);
  });
});
