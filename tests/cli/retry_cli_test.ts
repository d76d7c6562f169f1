import assert from "node:assert/strict";
import {
  compileFlags,
  flakyCommand,
  runCli,
  spawnCli,
} from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

Deno.test("the CLI tests run under the compile task's scoped permissions", async () => {
  const flags = await compileFlags();
  assert.ok(flags.includes("--allow-read=."));
  assert.ok(flags.includes("--allow-write=."));
  assert.ok(flags.includes("--deny-write=./.git"));
  assert.ok(flags.includes("--allow-env=STURDY_*"));
  assert.ok(!flags.some((f) => f.startsWith("--allow-net")));
});

Deno.test("sturdy retry succeeds after flaky failures and prints one notice per retry", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      ["--verbose", "retry", "--delay", "10ms", "--", ...flakyCommand(3)],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "run 1\nrun 2\nrun 3\n");
    assert.match(
      run.stderr,
      /attempt 1\/5 failed \(exit 1\); retrying in \d+ms/,
    );
    assert.match(
      run.stderr,
      /attempt 2\/5 failed \(exit 1\); retrying in \d+ms/,
    );
    assert.match(run.stderr, /succeeded on attempt 3\/5/);
  });
});

Deno.test("sturdy retry shows notices only on a terminal or with --verbose", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      ["retry", "--delay", "5ms", "--", ...flakyCommand(2)],
      { cwd: dir },
    );
    assert.equal(run.code, 0);
    assert.equal(run.stderr, "");
  });
});

Deno.test("sturdy retry exits with the command's last code when every attempt failed", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      [
        "retry",
        "--attempts",
        "3",
        "--delay",
        "5ms",
        "--",
        "sh",
        "-c",
        "echo x >> runs; exit 7",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 7);
    assert.equal(await Deno.readTextFile(`${dir}/runs`), "x\nx\nx\n");
    assert.match(run.stderr, /gave up after 3 attempts \(last: exit 7\)/);
  });
});

Deno.test("sturdy retry --quiet prints nothing of its own", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      ["-q", "retry", "--attempts", "2", "--delay", "5ms", "--", "false"],
      { cwd: dir },
    );
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "");
  });
});

Deno.test("sturdy retry --retry-on-exit does not retry other exit codes", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      [
        "retry",
        "--retry-on-exit",
        "75-78",
        "--delay",
        "5ms",
        "--",
        "sh",
        "-c",
        "echo x >> runs; exit 3",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 3);
    assert.equal(await Deno.readTextFile(`${dir}/runs`), "x\n");
    assert.match(run.stderr, /not retried \(--retry-on-exit\)/);
  });
});

Deno.test("sturdy retry --timeout kills a hung attempt and exits 124 like timeout(1)", async () => {
  await inTempDir(async (dir) => {
    const started = Date.now();
    const run = await runCli(
      [
        "retry",
        "--attempts",
        "2",
        "--delay",
        "5ms",
        "--timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        "echo $$ >> pids; exec sleep 30",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 124);
    assert.ok(Date.now() - started < 10_000);
    assert.match(
      run.stderr,
      /gave up after 2 attempts \(last: timed out after/,
    );
    const pids = (await Deno.readTextFile(`${dir}/pids`)).trim().split("\n");
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      // Every child was killed and reaped: its pid no longer exists.
      const probe = await new Deno.Command("kill", {
        args: ["-0", pid],
        stderr: "null",
      })
        .output();
      assert.equal(probe.code, 1, `child ${pid} is still alive`);
    }
  });
});

Deno.test("sturdy retry --kill-after sends SIGKILL to a child that ignores SIGTERM", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      [
        "retry",
        "--attempts",
        "1",
        "--timeout",
        "200ms",
        "--kill-after",
        "200ms",
        "--",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 0.05; done",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 124);
  });
});

Deno.test("sturdy retry --deadline stops the attempt in flight and starts no other", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      [
        "retry",
        "--deadline",
        "400ms",
        "--delay",
        "5ms",
        "--",
        "sh",
        "-c",
        "echo x >> runs; exec sleep 30",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 124);
    assert.equal(await Deno.readTextFile(`${dir}/runs`), "x\n");
    assert.match(run.stderr, /--deadline passed during attempt 1/);
  });
});

Deno.test("sturdy retry forwards SIGTERM to the command and starts no further attempt", async () => {
  await inTempDir(async (dir) => {
    const child = await spawnCli(
      [
        "retry",
        "--delay",
        "5ms",
        "--",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
      ],
      { cwd: dir },
    );
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!seen.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.code, 42);
    assert.equal(seen, "ready\ngot TERM\n");
  });
});

Deno.test("sturdy retry --json prints only the result document on stdout", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(
      ["retry", "--json", "--delay", "5ms", "--", ...flakyCommand(2)],
      { cwd: dir },
    );
    assert.equal(run.code, 0);
    const result = JSON.parse(run.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.exitCode, 0);
    assert.equal(result.attempts, 2);
    assert.deepEqual(
      result.attemptsDetail.map((a: { exitCode: number }) => a.exitCode),
      [1, 0],
    );
    // The command's own output went to stderr.
    assert.match(run.stderr, /run 1\nrun 2\n/);
  });
});

Deno.test("sturdy retry --breaker opens after repeated failures and then refuses with exit 4", async () => {
  await inTempDir(async (dir) => {
    const args = [
      "retry",
      "--attempts",
      "1",
      "--breaker",
      "api",
      "--breaker-threshold",
      "2",
    ];
    const cmd = ["--", "sh", "-c", "echo x >> runs; exit 1"];
    assert.equal((await runCli([...args, ...cmd], { cwd: dir })).code, 1);
    assert.equal((await runCli([...args, ...cmd], { cwd: dir })).code, 1);
    const refused = await runCli([...args, ...cmd], { cwd: dir });
    assert.equal(refused.code, 4);
    assert.match(
      refused.stderr,
      /Circuit "api" is open.*the command was not run/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/runs`), "x\nx\n");
    const state = JSON.parse(
      await Deno.readTextFile(`${dir}/.sturdy/breakers/api.json`),
    );
    assert.equal(state.state, "open");
  });
});

Deno.test("sturdy retry keeps its state under --home or STURDY_HOME", async () => {
  await inTempDir(async (dir) => {
    const args = ["retry", "--attempts", "1", "--breaker", "db", "--", "true"];
    assert.equal(
      (await runCli(["--home", "state", ...args], { cwd: dir })).code,
      0,
    );
    await Deno.stat(`${dir}/state/breakers/db.json`);
    const run = await runCli(args, {
      cwd: dir,
      env: { STURDY_HOME: "env-home" },
    });
    assert.equal(run.code, 0);
    await Deno.stat(`${dir}/env-home/breakers/db.json`);
  });
});

Deno.test("sturdy retry names the flag to add when the state root is outside the allowed directory", async () => {
  await inTempDir(async (dir) => {
    const outside = await Deno.makeTempDir();
    try {
      const run = await runCli(
        ["retry", "--home", outside, "--breaker", "api", "--", "true"],
        { cwd: dir },
      );
      assert.equal(run.code, 77);
      assert.match(run.stderr, /Missing permission: write access/);
      assert.match(run.stderr, new RegExp(`--allow-write=${outside}`));
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("sturdy retry exits 127 when the command does not exist", async () => {
  await inTempDir(async (dir) => {
    const run = await runCli(["retry", "--", "no-such-command-xyz"], {
      cwd: dir,
    });
    assert.equal(run.code, 127);
    assert.match(
      run.stderr,
      /Cannot run "no-such-command-xyz": command not found/,
    );
  });
});

Deno.test("sturdy retry refuses bad options with exit 2 and a hint", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [
      ["--delay", "5x"],
      /--delay: Invalid duration "5x": use a number and a unit/,
    ],
    [["--timeout", "10"], /--timeout: Invalid duration "10"/],
    [
      ["--attempts", "0"],
      /Invalid --attempts "0": use a whole number of at least 1/,
    ],
    [["--jitter", "lots"], /Invalid --jitter "lots"/],
    [["--retry-on-exit", "0,300"], /Invalid --retry-on-exit "0,300"/],
    [
      ["--atempts", "3"],
      /Unknown option "--atempts" for "sturdy retry"; did you mean "--attempts"\?/,
    ],
    [["--delay"], /Option "--delay" needs a value/],
    [["--breaker", "../x"], /breaker name/],
    [
      ["--max-delay", "1s", "--delay", "2s"],
      /--max-delay \(1s\) is shorter than --delay \(2s\)/,
    ],
  ];
  await inTempDir(async (dir) => {
    for (const [flags, message] of cases) {
      await t.step(flags.join(" "), async () => {
        const run = await runCli(["retry", ...flags, "--", "true"], {
          cwd: dir,
        });
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, message);
        assert.match(run.stderr, /Run "sturdy retry --help" for usage/);
      });
    }
    const missing = await runCli(["retry", "--attempts", "2"], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Missing the command to run/);
  });
});
