import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import type { CliIo } from "../../cli.ts";
import { runCli } from "../_helpers/cli.ts";

function captureIo(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    stderrIsTerminal: false,
    env: (name) => env[name],
  };
  return { io, out: () => out.join(""), err: () => err.join("") };
}

Deno.test("sturdy --version prints the version in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  const { io, out } = captureIo();
  assert.equal(await main(["--version"], io), 0);
  assert.equal(out(), `sturdy ${config.version}\n`);
});

Deno.test("sturdy --help lists the commands and exit codes", async () => {
  const { io, out } = captureIo();
  assert.equal(await main(["--help"], io), 0);
  assert.match(out(), /retry {2,}Run a command until it succeeds/);
  assert.match(out(), /Exit codes: 0 ok, 1 failed, 2 usage/);
});

Deno.test("sturdy with no command prints help to stderr and exits 2", async () => {
  const { io, out, err } = captureIo();
  assert.equal(await main([], io), 2);
  assert.equal(out(), "");
  assert.match(err(), /Usage:/);
});

Deno.test("sturdy retry --help teaches with examples", async () => {
  const { io, out } = captureIo();
  assert.equal(await main(["retry", "--help"], io), 0);
  assert.match(out(), /sturdy retry \[options\] -- CMD/);
  assert.match(out(), /Examples:\n {2}sturdy retry/);
  // --help after "--" belongs to the wrapped command.
  const other = captureIo();
  assert.equal(
    await main([
      "retry",
      "--attempts",
      "1",
      "--",
      "sh",
      "-c",
      "exit 0",
      "--help",
    ], other.io),
    0,
  );
  assert.equal(other.out(), "");
});

Deno.test("sturdy suggests the closest command for a typo", async () => {
  const { io, err } = captureIo();
  assert.equal(await main(["retyr"], io), 2);
  assert.match(err(), /Unknown command "retyr"; did you mean "retry"\?/);
});

Deno.test("sturdy accepts global flags before or after the command", async () => {
  const before = captureIo();
  assert.equal(await main(["--json", "retry", "--", "true"], before.io), 0);
  assert.equal(JSON.parse(before.out()).ok, true);
  const after = captureIo();
  assert.equal(await main(["retry", "--json", "--", "true"], after.io), 0);
  assert.equal(JSON.parse(after.out()).ok, true);
});

Deno.test("sturdy reports a usage error as JSON with --json", async () => {
  const { io, out } = captureIo();
  assert.equal(
    await main(["retry", "--json", "--delay", "x", "--", "true"], io),
    2,
  );
  const doc = JSON.parse(out());
  assert.equal(doc.ok, false);
  assert.equal(doc.exitCode, 2);
  assert.match(doc.error, /Invalid duration "x"/);
});

Deno.test("the real CLI prints its version in a subprocess", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await runCli(["--version"], { cwd: dir });
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^sturdy \d+\.\d+\.\d+\n$/);
  } finally {
    await Deno.remove(dir);
  }
});
