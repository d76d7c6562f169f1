// `sturdy episode` as users run it: the CLI in a subprocess under exactly
// the compile task's permission set.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const GOOD = `version: 1
episode: nightly
limits: { taskRetryDelay: 10ms }
tasks:
  - id: fetch
    sh: echo fetched > data.txt
  - id: report
    sh: cat data.txt > report.txt
    needs: [fetch]
`;

Deno.test("episode validate prints the budget, and names every problem with its line", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "ok.yaml"), GOOD);
    const ok = await runCli(["episode", "validate", "ok.yaml"], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid episode "nightly" with 2 tasks/);
    assert.match(ok.stdout, /worst case: 2 tasks × 3 attempts = 6 runs/);
    await Deno.writeTextFile(
      join(cwd, "bad.yaml"),
      `version: 1
episode: nightly
limits:
  maxRecoveryAttempt: 3
tasks:
  - id: a
    sh: "true"
    needs: [b]
  - id: b
    sh: "true"
    needs: [a]
    timeout: 5x
`,
    );
    const bad = await runCli(["episode", "validate", "bad.yaml"], { cwd });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /did you mean "maxRecoveryAttempts"\? \(line 4\)/);
    assert.match(bad.stderr, /tasks\[1\]\.timeout: .*"5x".*\(line 12\)/);
    assert.match(bad.stderr, /cycle/);
    const bomb = await runCli(["episode", "validate", "bomb.yaml"], {
      cwd,
    });
    assert.equal(bomb.code, 1);
    assert.match(bomb.stderr, /bomb\.yaml/);
  });
});

Deno.test("episode run runs the tasks, prints a summary, and status shows it", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "episode.yaml"), GOOD);
    const run = await runCli(["episode", "run", "episode.yaml"], { cwd });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Episode nightly completed/);
    assert.match(run.stdout, /ok\s+fetch\s+succeeded/);
    assert.equal(await Deno.readTextFile(join(cwd, "report.txt")), "fetched\n");
    const json = await runCli(
      ["episode", "run", "episode.yaml", "--resume", "--json"],
      { cwd },
    );
    assert.equal(json.code, 0, json.stderr);
    const summary = JSON.parse(json.stdout);
    assert.equal(summary.status, "completed");
    assert.ok(summary.tasks.every((t: { replayed: boolean }) => t.replayed));
    const status = await runCli(
      ["episode", "status", "nightly", "--root", ".sturdy"],
      { cwd },
    );
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /nightly: completed/);
    const all = await runCli(["episode", "status", "--json"], { cwd });
    assert.equal(JSON.parse(all.stdout)[0].id, "nightly");
    const missing = await runCli(["episode", "status", "nope"], { cwd });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No episode "nope"/);
  });
});

Deno.test("episode run exits 3 when a task is escalated and 1 when one fails", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(
      join(cwd, "esc.yaml"),
      `version: 1
episode: esc
tasks:
  - { id: ask, sh: "exit 1", strategy: escalate }
`,
    );
    const esc = await runCli(["episode", "run", "esc.yaml"], { cwd });
    assert.equal(esc.code, 3, esc.stderr);
    assert.match(
      esc.stdout,
      /needs a person:\n\s+esc-esc\.ask-1: sturdy recover resolve esc\.ask/,
    );
    await Deno.writeTextFile(
      join(cwd, "fail.yaml"),
      `version: 1
episode: fail
tasks:
  - { id: bad, sh: "exit 4", strategy: fail }
`,
    );
    const fail = await runCli(["episode", "run", "fail.yaml"], { cwd });
    assert.equal(fail.code, 1, fail.stderr);
  });
});

Deno.test("outside the working directory the CLI stops with exit 77 and the flag to add", async () => {
  await inTempDir(async (cwd) => {
    const outside = await Deno.makeTempDir();
    try {
      // Reading an episode file outside ".".
      await Deno.writeTextFile(join(outside, "episode.yaml"), GOOD);
      const read = await runCli(
        ["episode", "validate", join(outside, "episode.yaml")],
        { cwd },
      );
      assert.equal(read.code, 77, read.stderr);
      assert.match(read.stderr, /--allow-read/);
      // A state root outside ".": writing there is refused.
      await Deno.writeTextFile(
        join(cwd, "episode.yaml"),
        GOOD.replace("episode: nightly", `episode: nightly\nroot: ${outside}`),
      );
      const write = await runCli(["episode", "run", "episode.yaml"], { cwd });
      assert.equal(write.code, 77, write.stderr);
      assert.match(write.stderr, /was not granted .* access/);
      assert.match(write.stderr, /run with --allow-(read|write)=/);
      // And the other commands, for good measure.
      for (
        const args of [
          ["read", join(outside, "episode.yaml")],
          ["recover", "status", "--home", outside],
          ["checkpoint", "list", "a", "--home", outside],
        ]
      ) {
        const r = await runCli(args, { cwd });
        assert.equal(r.code, 77, `${args.join(" ")}: ${r.stderr}`);
      }
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("episode refuses bad command lines with usage errors", async () => {
  await inTempDir(async (cwd) => {
    for (
      const [args, pattern] of [
        [["episode"], /Missing the subcommand/],
        [["episode", "rnu"], /did you mean "run"/],
        [["episode", "run"], /Missing the episode file/],
        [["episode", "validate", "x.yaml", "--resume"], /does not apply/],
        [["episode", "status", "../x"], /Invalid episode id/],
      ] as const
    ) {
      const r = await runCli([...args], { cwd });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const help = await runCli(["episode", "--help"], { cwd });
    assert.match(help.stdout, /Exit codes of run/);
  });
});
