import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("sturdy write replaces a file with stdin atomically and keeps a backup", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.json`, '{"v":1}\n');
    const run = await runCli(["write", "a.json", "--backup", "--json"], {
      cwd: dir,
      stdin: '{"v":2}\n',
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), {
      ok: true,
      path: "a.json",
      bytes: 8,
      durability: "durable",
      backup: true,
    });
    assert.equal(await Deno.readTextFile(`${dir}/a.json`), '{"v":2}\n');
    assert.equal(await Deno.readTextFile(`${dir}/a.json.bak`), '{"v":1}\n');
    assert.deepEqual(await names(dir), ["a.json", "a.json.bak"]);
  });
});

Deno.test("sturdy write refuses empty input and leaves the file intact", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "keep me");
    const run = await runCli(["write", "a.txt"], { cwd: dir, stdin: "" });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Refusing to replace "a.txt" with empty input/);
    assert.match(run.stderr, /--allow-empty/);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "keep me");
    assert.deepEqual(await names(dir), ["a.txt"]);
    const allowed = await runCli(["write", "a.txt", "--allow-empty"], {
      cwd: dir,
      stdin: "",
    });
    assert.equal(allowed.code, 0);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "");
  });
});

Deno.test("sturdy write refuses a bad durability and a missing FILE with exit 2", async () => {
  await inTempDir(async (dir) => {
    const bad = await runCli(["write", "a", "--durability", "fast"], {
      cwd: dir,
      stdin: "x",
    });
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /Invalid --durability "fast": use one of durable, atomic, none/,
    );
    const missing = await runCli(["write"], { cwd: dir, stdin: "x" });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Missing FILE/);
  });
});

Deno.test("sturdy write outside the working directory exits 77 naming the flag", async () => {
  await inTempDir(async (dir) => {
    const outside = await Deno.makeTempDir();
    try {
      const run = await runCli(["write", `${outside}/x.txt`], {
        cwd: dir,
        stdin: "x",
      });
      assert.equal(run.code, 77, run.stderr);
      assert.match(run.stderr, /--allow-(read|write)=/);
      assert.deepEqual(await names(outside), []);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("sturdy read prints a file's bytes, and --json as text", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/bin`, new Uint8Array([0xff, 0x00, 0x41]));
    const raw = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read=.",
        "--allow-write=.",
        "--allow-env=STURDY_*",
        new URL("../../cli.ts", import.meta.url).pathname,
        "read",
        "bin",
      ],
      cwd: dir,
      stderr: "null",
    }).output();
    assert.equal(raw.code, 0);
    assert.deepEqual([...raw.stdout], [0xff, 0x00, 0x41]);
    const notText = await runCli(["read", "bin", "--json"], { cwd: dir });
    assert.equal(notText.code, 1);
    assert.match(notText.stderr, /"bin" is not UTF-8 text/);
    await Deno.writeTextFile(`${dir}/t.txt`, "héllo");
    const json = await runCli(["read", "t.txt", "--json"], { cwd: dir });
    assert.deepEqual(JSON.parse(json.stdout), {
      path: "t.txt",
      bytes: 6,
      text: "héllo",
    });
  });
});

Deno.test("sturdy read of a missing file fails clearly and is listed by sturdy reports", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(["read", "nope.txt"], { cwd: dir });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /Cannot read "nope.txt": no such file or directory/,
    );
    const reports = await runCli(["reports", "--json"], { cwd: dir });
    assert.equal(reports.code, 0);
    const [report] = JSON.parse(reports.stdout);
    assert.equal(report.operation, "readBytes");
    assert.equal(report.path, "nope.txt");
    assert.equal(report.code, "not_found");
    const text = await runCli([
      "reports",
      "--operation",
      "readBytes",
      "--since",
      "1h",
    ], {
      cwd: dir,
    });
    assert.match(
      text.stdout,
      /readBytes {2}nope\.txt\n {2}FileReadError \(not_found, 1 attempt\)/,
    );
    const none = await runCli(["reports", "--operation", "writeJson"], {
      cwd: dir,
    });
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /no I\/O failures recorded/);
  });
});

Deno.test("sturdy scan lists matching files and prunes excluded directories", async () => {
  await inTempDir(async (dir) => {
    for (
      const f of [
        "src/a.ts",
        "src/x/b.ts",
        "src/x/b_test.ts",
        "node_modules/m/c.ts",
        "README.md",
      ]
    ) {
      await Deno.mkdir(`${dir}/${f.split("/").slice(0, -1).join("/") || "."}`, {
        recursive: true,
      });
      await Deno.writeTextFile(`${dir}/${f}`, "");
    }
    const run = await runCli(
      [
        "scan",
        ".",
        "--include",
        "**/*.ts",
        "--exclude",
        "node_modules",
        "--exclude",
        "**/*_test.ts",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "src/a.ts\nsrc/x/b.ts\n");
    const json = await runCli([
      "scan",
      "src",
      "--json",
      "--dirs",
      "--max-depth",
      "1",
    ], { cwd: dir });
    assert.deepEqual(JSON.parse(json.stdout), [
      { path: "a.ts", type: "file", depth: 1 },
      { path: "x", type: "dir", depth: 1 },
    ]);
    const missing = await runCli(["scan", "nope"], { cwd: dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope/);
  });
});
