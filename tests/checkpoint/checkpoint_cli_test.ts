// `sturdy checkpoint` run as a real subprocess, under the permissions the
// compiled binary gets (read and write limited to the working directory).

import assert from "node:assert/strict";
import { isAbsolute, join } from "node:path";
import { type CliRun, runCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

/** Runs `sturdy checkpoint <args>` in `cwd`. */
function sturdy(cwd: string, args: string[], stdin?: string): Promise<CliRun> {
  return runCli(["checkpoint", ...args], {
    cwd,
    ...(stdin === undefined ? {} : { stdin }),
  });
}

/** Runs it and expects exit `code`; returns the run. */
async function expect(
  code: number,
  cwd: string,
  args: string[],
  stdin?: string,
): Promise<CliRun> {
  const run = await sturdy(cwd, args, stdin);
  assert.equal(
    run.code,
    code,
    `sturdy checkpoint ${
      args.join(" ")
    }\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
  );
  return run;
}

function abs(cwd: string, path: string): string {
  return isAbsolute(path) ? path : join(cwd, path);
}

async function files(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const rel = prefix + entry.name;
    if (entry.isDirectory) {
      out.push(...await files(join(dir, entry.name), rel + "/"));
    } else out.push(rel);
  }
  return out.sort();
}

Deno.test("sturdy checkpoint create reads JSON from stdin, and list and latest show it", async () => {
  await inTempDir(async (cwd) => {
    const created = await expect(0, cwd, ["create", "planner"], '{"step": 1}');
    assert.match(
      created.stdout,
      /^Created checkpoint 000000000001\.routine \(seq 1, 10 B, /,
    );
    await expect(
      0,
      cwd,
      ["create", "planner", "--from", "-", "--label", "two"],
      '{"step": 2}',
    );
    const list = await expect(0, cwd, ["list", "planner"]);
    const lines = list.stdout.trim().split("\n");
    assert.match(lines[0]!, /^ID\s+TYPE\s+CREATED\s+SIZE\s+LABEL$/);
    assert.match(
      lines[1]!,
      /^000000000002\.routine\s+routine\s+\S+\s+10 B\s+two$/,
    );
    assert.match(lines[2]!, /^000000000001\.routine\s+routine/);
    const latest = JSON.parse(
      (await expect(0, cwd, ["latest", "planner", "--json"])).stdout,
    );
    assert.equal(latest.ok, true);
    assert.equal(latest.ref.seq, 2);
    assert.equal(latest.ref.label, "two");
    assert.match(latest.ref.sha256, /^[0-9a-f]{64}$/);
    // Everything lives under <home>/checkpoints/<agent>/.
    assert.deepEqual(
      await files(cwd, ""),
      (await files(cwd, "")).filter((f) =>
        f.startsWith(".sturdy/checkpoints/planner/") ||
        f.startsWith(".sturdy/locks/")
      ),
    );
  });
});

Deno.test("sturdy checkpoint create --from FILE --type and list --type --limit filter", async () => {
  await inTempDir(async (cwd) => {
    await Deno.writeTextFile(join(cwd, "s.json"), '{"a": [1, 2]}');
    await expect(0, cwd, [
      "create",
      "a",
      "--from",
      "s.json",
      "--type",
      "recovery",
    ]);
    await expect(0, cwd, ["create", "a", "--from", "s.json"]);
    await expect(0, cwd, ["create", "a", "--from", "s.json"]);
    const recovery = JSON.parse(
      (await expect(0, cwd, ["list", "a", "--type", "recovery", "--json"]))
        .stdout,
    );
    assert.deepEqual(recovery.checkpoints.map((r: { id: string }) => r.id), [
      "000000000001.recovery",
    ]);
    const limited = JSON.parse(
      (await expect(0, cwd, ["list", "a", "--limit", "1", "--json"])).stdout,
    );
    assert.deepEqual(limited.checkpoints.map((r: { seq: number }) => r.seq), [
      3,
    ]);
  });
});

Deno.test("sturdy checkpoint show prints a checkpoint's header fields and state, and names the file and the failed check of a damaged one", async () => {
  await inTempDir(async (cwd) => {
    await expect(0, cwd, ["create", "a"], '{"config": {"retries": 3}}');
    await expect(0, cwd, ["create", "a"], '{"config": {"retries": 4}}');
    const text = await expect(0, cwd, ["show", "a", "000000000001.routine"]);
    assert.match(text.stdout, /^000000000001\.routine \(seq 1,/);
    assert.match(text.stdout, /sha256 [0-9a-f]{64}/);
    assert.match(text.stdout, /"retries": 3/);
    const json = JSON.parse(
      (await expect(0, cwd, ["show", "a", "2", "--json"])).stdout,
    );
    assert.deepEqual(json.state, { config: { retries: 4 } });
    assert.equal(json.ref.id, "000000000002.routine");
    const path = abs(cwd, json.ref.path);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3]! ^= 0x01;
    await Deno.writeFile(path, bytes);
    const bad = await sturdy(cwd, ["show", "a", "2"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /000000000002\.ckpt/);
    assert.match(bad.stderr, /checksum mismatch/);
    await Deno.stat(path); // show never quarantines
  });
});

Deno.test("sturdy checkpoint restore --to FILE writes the state, falling back past a damaged checkpoint and saying why", async () => {
  await inTempDir(async (cwd) => {
    await expect(0, cwd, ["create", "a"], '{"step": 1}');
    const second = JSON.parse(
      (await expect(0, cwd, ["create", "a", "--json"], '{"step": 2}')).stdout,
    ).ref;
    await expect(0, cwd, ["restore", "a", "--to", "out.json"]);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(cwd, "out.json"))),
      { step: 2 },
    );
    // Cut the newest short: restore takes the one before and says why.
    const path = abs(cwd, second.path);
    await Deno.truncate(path, (await Deno.stat(path)).size - 2);
    const run = await expect(0, cwd, ["restore", "a", "--to", "out.json"]);
    assert.match(
      run.stderr,
      /skipped checkpoint 000000000002\.routine: truncated/,
    );
    assert.match(
      run.stdout,
      /Restored checkpoint 000000000001\.routine .* to out\.json \(after skipping 1 newer/,
    );
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(cwd, "out.json"))),
      { step: 1 },
    );
    // A given id, printed to stdout.
    const printed = await expect(0, cwd, ["restore", "a", "1", "--to", "-"]);
    assert.deepEqual(JSON.parse(printed.stdout), { step: 1 });
  });
});

Deno.test("sturdy checkpoint restore fails with exit 1 naming every file tried when none is valid", async () => {
  await inTempDir(async (cwd) => {
    const ref = JSON.parse(
      (await expect(0, cwd, ["create", "a", "--json"], "[1]")).stdout,
    ).ref;
    const path = abs(cwd, ref.path);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 1]! ^= 0xff;
    await Deno.writeFile(path, bytes);
    const run = await expect(1, cwd, ["restore", "a", "--to", "out.json"]);
    assert.match(run.stderr, /000000000001\.routine/);
    assert.match(run.stderr, /checksum mismatch/);
    await assert.rejects(
      () => Deno.stat(join(cwd, "out.json")),
      Deno.errors.NotFound,
    );
    const json = JSON.parse(
      (await expect(1, cwd, ["restore", "a", "--to", "o.json", "--json"]))
        .stdout,
    );
    assert.equal(json.ok, false);
    assert.equal(json.code, "no_valid_checkpoint");
  });
});

Deno.test("sturdy checkpoint verify exits 0 when every checkpoint verifies and 2 listing a damaged one, which it leaves in place", async () => {
  await inTempDir(async (cwd) => {
    await expect(0, cwd, ["create", "a"], '{"n": 1}');
    const ref = JSON.parse(
      (await expect(0, cwd, ["create", "a", "--json"], '{"n": 2}')).stdout,
    ).ref;
    const ok = await expect(0, cwd, ["verify", "a"]);
    assert.match(ok.stdout, /All 2 checkpoints of agent "a" verify/);
    const path = abs(cwd, ref.path);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3]! ^= 0x01;
    await Deno.writeFile(path, bytes);
    const bad = await expect(2, cwd, ["verify", "a"]);
    assert.match(
      bad.stdout,
      /1 of 2 checkpoints of agent "a" fail verification:\n {2}000000000002\.routine: checksum mismatch/,
    );
    await Deno.stat(path);
    const json = JSON.parse(
      (await expect(2, cwd, ["verify", "a", "--json"])).stdout,
    );
    assert.equal(json.ok, false);
    assert.equal(json.problems[0].id, "000000000002.routine");
  });
});

Deno.test("sturdy checkpoint drift exits 0 when clean and 2 with the findings when a key is retyped", async () => {
  await inTempDir(async (cwd) => {
    await expect(0, cwd, ["create", "a"], '{"config": {"retries": 3}}');
    await expect(0, cwd, ["create", "a"], '{"config": {"retries": 5}}');
    const clean = await expect(0, cwd, ["drift", "a"]);
    assert.match(clean.stdout, /No drift for agent "a"/);
    await expect(0, cwd, ["create", "a"], '{"config": {"retries": "5"}}');
    const drifted = await expect(2, cwd, ["drift", "a"]);
    assert.match(drifted.stdout, /Agent "a" has drifted \(warning\):/);
    assert.match(
      drifted.stdout,
      /\[warning\] type_changed: config\.retries: number → string/,
    );
    const json = JSON.parse(
      (await expect(2, cwd, ["drift", "a", "--json"])).stdout,
    );
    assert.equal(json.drifted, true);
    assert.equal(json.findings[0].path, "config.retries");
  });
});

Deno.test("sturdy checkpoint plan explains every decision, prune --dry-run changes nothing, prune trashes", async () => {
  await inTempDir(async (cwd) => {
    for (let i = 1; i <= 3; i++) {
      await expect(0, cwd, ["create", "a"], `{"i": ${i}}`);
    }
    const plan = await expect(0, cwd, ["plan", "a", "--keep-last", "1"]);
    assert.match(plan.stdout, /^ACTION\s+ID\s+WHY$/m);
    assert.match(plan.stdout, /^keep\s+000000000003\.routine\s+\S/m);
    assert.match(plan.stdout, /^trash\s+000000000001\.routine\s+\S/m);
    assert.match(
      plan.stdout,
      /2 to trash, 1 kept; policy: routine keep last 1/,
    );
    const dry = await expect(0, cwd, [
      "prune",
      "a",
      "--dry-run",
      "--keep-last",
      "1",
    ]);
    assert.match(dry.stdout, /2 to trash, 1 kept/);
    assert.equal(
      JSON.parse((await expect(0, cwd, ["list", "a", "--json"])).stdout)
        .checkpoints.length,
      3,
    );
    const pruned = JSON.parse(
      (await expect(0, cwd, ["prune", "a", "--keep-last", "1", "--json"]))
        .stdout,
    );
    assert.equal(pruned.applied, true);
    assert.deepEqual(pruned.trash, [
      "000000000002.routine",
      "000000000001.routine",
    ]);
    const left = JSON.parse(
      (await expect(0, cwd, ["list", "a", "--json"])).stdout,
    );
    assert.deepEqual(left.checkpoints.map((r: { seq: number }) => r.seq), [3]);
  });
});

Deno.test("sturdy checkpoint refuses bad command lines with exit 2 and a pointer to --help", async () => {
  await inTempDir(async (cwd) => {
    const cases: Array<[string[], RegExp]> = [
      [[], /Missing the subcommand/],
      [["lsit", "a"], /Unknown subcommand "lsit"; did you mean "list"\?/],
      [["list"], /Missing the agent/],
      [["list", "../etc"], /Invalid agent id "\.\.\/etc"/],
      [["list", "a/b"], /Invalid agent id "a\/b"/],
      // (A NUL cannot be passed in argv at all; the library refuses it.)
      [["list", ".."], /Invalid agent id "\.\."/],
      [["restore", "a"], /Missing --to FILE/],
      [["show", "a"], /Missing the checkpoint ID/],
      [["list", "a", "extra"], /Unexpected "extra" after AGENT/],
      [
        ["verify", "a", "--to", "x"],
        /Option "--to" does not apply to "sturdy checkpoint verify"/,
      ],
      [
        ["create", "a", "--type", "daily"],
        /Invalid --type "daily": use one of routine, pre_operation, recovery/,
      ],
      [["list", "a", "--limit", "0"], /Invalid --limit "0"/],
      [["plan", "a", "--keep-within", "soon"], /--keep-within/],
      [
        ["restore", "a", "--to", "-", "--json"],
        /cannot be combined with --json/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await expect(2, cwd, args);
      assert.match(run.stderr, message, args.join(" "));
      assert.match(run.stderr, /Run "sturdy checkpoint --help" for usage/);
    }
    await assert.rejects(
      () => Deno.stat(join(cwd, ".sturdy")),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("sturdy checkpoint create refuses empty or invalid JSON with exit 1 and writes nothing", async () => {
  await inTempDir(async (cwd) => {
    const empty = await expect(1, cwd, ["create", "a"], "  \n");
    assert.match(empty.stderr, /Refusing to checkpoint empty input from stdin/);
    const invalid = await expect(1, cwd, ["create", "a"], "{step: 1}");
    assert.match(invalid.stderr, /from stdin: not valid JSON/);
    const missing = await expect(1, cwd, [
      "create",
      "a",
      "--from",
      "nope.json",
    ]);
    assert.match(
      missing.stderr,
      /Cannot read the state from "nope\.json": no such file/,
    );
    await assert.rejects(
      () => Deno.stat(join(cwd, ".sturdy")),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("sturdy checkpoint latest exits 1 when the agent has no checkpoints", async () => {
  await inTempDir(async (cwd) => {
    const run = await expect(1, cwd, ["latest", "nobody"]);
    assert.match(run.stderr, /No checkpoints for agent "nobody"/);
    assert.match(run.stderr, /sturdy checkpoint create nobody/);
    const list = await expect(0, cwd, ["list", "nobody"]);
    assert.match(list.stdout, /No checkpoints for agent "nobody"/);
  });
});

Deno.test("sturdy checkpoint --help shows every subcommand with examples", async () => {
  await inTempDir(async (cwd) => {
    const run = await expect(0, cwd, ["--help"]);
    for (
      const sub of [
        "create",
        "list",
        "latest",
        "show",
        "restore",
        "verify",
        "drift",
        "plan",
        "prune",
      ]
    ) {
      assert.match(run.stdout, new RegExp(`sturdy checkpoint ${sub} AGENT`));
    }
    assert.match(run.stdout, /Examples:\n/);
  });
});
