// `sturdy recover` as a user runs it: a real subprocess under the compile
// task's exact permission flags.
import assert from "node:assert/strict";
import { join } from "node:path";
import { flakyCommand, runCli, spawnCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

Deno.test("recover run retries a flaky command until it succeeds", async () => {
  await inTempDir(async (cwd) => {
    const run = await runCli([
      "recover",
      "run",
      "flaky",
      "--strategy",
      "retry",
      "--delay",
      "10ms",
      "--verbose",
      "--",
      ...flakyCommand(3),
    ], { cwd });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /flaky: run 1 failed; retrying in/);
    assert.match(run.stderr, /flaky: succeeded after 3 runs \(recovered\)/);
    // Done once, never redone.
    const again = await runCli(
      ["recover", "run", "flaky", "--", ...flakyCommand(3)],
      { cwd },
    );
    assert.equal(again.code, 0);
    assert.match(again.stderr, /already succeeded; not run again/);
    assert.equal((await Deno.readTextFile(join(cwd, "count"))).trim(), "3");
  });
});

Deno.test("recover run rolls files back and exits with the command's own code", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "db.json"), '{"schema":1}\n');
    const run = await runCli([
      "recover",
      "run",
      "migrate",
      "--strategy",
      "rollback",
      "--files",
      "db.json",
      "--files",
      "new.txt",
      "--json",
      "--",
      "sh",
      "-c",
      'echo "{broken" > db.json; echo x > new.txt; echo partial; exit 7',
    ], { cwd });
    assert.equal(run.code, 7, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.status, "rolled_back");
    // The command's stdout went to stderr: stdout holds only the JSON.
    assert.match(run.stderr, /partial/);
    assert.equal(
      await Deno.readTextFile(join(cwd, "db.json")),
      '{"schema":1}\n',
    );
    await assert.rejects(Deno.stat(join(cwd, "new.txt")), Deno.errors.NotFound);
  });
});

Deno.test("recover run escalates with exit 3, and resolve, status, escalations and stats show it", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "out.txt"), "v1");
    const run = await runCli([
      "recover",
      "run",
      "publish",
      "--strategy",
      "retry,escalate",
      "--attempts",
      "2",
      "--delay",
      "5ms",
      "--files",
      "out.txt",
      "--",
      "sh",
      "-c",
      "echo v2 > out.txt; echo 'token=abc123secret denied' >&2; exit 4",
    ], { cwd });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /publish: escalated after 2 runs/);
    const escalations = await runCli(["recover", "escalations"], { cwd });
    assert.match(escalations.stdout, /esc-publish-1 \[escalation, open\]/);
    assert.match(
      escalations.stdout,
      /\$ sturdy recover resolve publish --action rollback/,
    );
    const status = await runCli(["recover", "status", "publish"], { cwd });
    assert.match(status.stdout, /publish\s+escalated\s+2 runs/);
    assert.match(status.stdout, /exited with code 4/);
    const resolved = await runCli([
      "recover",
      "resolve",
      "publish",
      "--action",
      "rollback",
      "--note",
      "bad release",
    ], { cwd });
    assert.equal(resolved.code, 0, resolved.stderr);
    assert.match(resolved.stdout, /task publish is now rolled_back/);
    assert.equal(await Deno.readTextFile(join(cwd, "out.txt")), "v1");
    const stats = await runCli(["recover", "stats", "--json"], { cwd });
    const json = JSON.parse(stats.stdout);
    assert.equal(json.total, 2); // escalated, then rolled back by a person
    assert.equal(json.failedAttempts, 2);
    const open = await runCli(["recover", "escalations", "--json"], { cwd });
    assert.deepEqual(JSON.parse(open.stdout), []);
  });
});

Deno.test("recover run answers a manual task resolved from another shell", async () => {
  await inTempDir(async (cwd) => {
    const child = await spawnCli([
      "recover",
      "run",
      "deploy",
      "--strategy",
      "manual",
      "--prompt",
      "Deploy to prod?",
      "--",
      ...flakyCommand(2),
    ], { cwd });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const list = await runCli(["recover", "escalations", "--json"], { cwd });
      if (list.stdout.includes("Deploy to prod?")) break;
      assert.ok(Date.now() < deadline, "no manual escalation appeared");
      await new Promise((r) => setTimeout(r, 50));
    }
    const resolved = await runCli(
      ["recover", "resolve", "deploy", "--action", "retry"],
      { cwd },
    );
    assert.equal(resolved.code, 0, resolved.stderr);
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /deploy: waiting for a person: Deploy to prod\?/);
  });
});

Deno.test("recover cleans up, forgets, and refuses bad input with usage errors", async () => {
  await inTempDir(async (cwd) => {
    const ok = await runCli(
      ["recover", "run", "t1", "--", "true"],
      { cwd },
    );
    assert.equal(ok.code, 0, ok.stderr);
    const dry = await runCli(
      ["recover", "cleanup", "--older-than", "0s", "--dry-run"],
      { cwd },
    );
    assert.match(dry.stdout, /Would remove 1 task: t1/);
    const forget = await runCli(["recover", "forget", "t1"], { cwd });
    assert.match(forget.stdout, /Forgot task t1/);
    for (
      const [args, pattern] of [
        [["recover", "run", "../x", "--", "true"], /Invalid task id "\.\.\/x"/],
        [
          ["recover", "run", "t", "--strategy", "retyr", "--", "true"],
          /did you mean "retry"/,
        ],
        [["recover", "run", "t"], /Missing the command to run/],
        [["recover", "resolve", "t"], /Missing --action/],
        [["recover", "cleanup"], /Missing --older-than/],
        [["recover", "stats", "--since", "1x"], /Invalid duration/],
        [["recover", "status", "--action", "skip"], /does not apply/],
        [["recover", "frobnicate"], /Unknown subcommand/],
      ] as const
    ) {
      const run = await runCli([...args], { cwd });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
    const missing = await runCli(
      ["recover", "run", "nf", "--", "no-such-program-xyz"],
      { cwd },
    );
    assert.equal(missing.code, 127, missing.stderr);
    const help = await runCli(["recover", "--help"], { cwd });
    assert.match(help.stdout, /Examples:/);
  });
});

Deno.test("STURDY_DEBUG=1 prints every decision", async () => {
  await inTempDir(async (cwd) => {
    const run = await runCli(
      ["recover", "run", "dbg", "--strategy", "skip", "--", "false"],
      { cwd, env: { STURDY_DEBUG: "1" } },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /sturdy\[debug\]: dbg#1 decision attempt=1 action=skip rule=chain\[0\]/,
    );
  });
});
