import assert from "node:assert/strict";

const demo = new URL("../../examples/demo.ts", import.meta.url).pathname;
const dir = new URL("../../examples/demo/", import.meta.url).pathname;

async function runDemo(
  args: string[],
): Promise<{ code: number; text: string; ms: number }> {
  const started = Date.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      demo,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr),
    ms: Date.now() - started,
  };
}

Deno.test("the demo episode runs from a clean state, then resumes without redoing work", async () => {
  try {
    const first = await runDemo(["--fresh"]);
    assert.equal(first.code, 0, first.text);
    assert.ok(first.ms < 30_000, `took ${first.ms}ms`);
    const t = first.text;
    assert.match(t, /write-report\s+succeeded/);
    assert.match(t, /sync-inventory\s+succeeded\s+3 runs.*\(recovered\)/);
    assert.match(t, /count-a\s+succeeded/);
    assert.match(t, /count-b\s+succeeded/);
    assert.match(t, /migrate-schema\s+rolled_back.*files rolled back/);
    assert.match(t, /lint-docs\s+skipped/);
    assert.match(t, /publish\s+escalated/);
    assert.match(t, /Episode demo escalated/);
    assert.match(t, /"count": 2/);
    assert.match(
      t,
      /work\/config.json:\s+\{ "schema": 1, "region": "eu-west" \}/,
    );
    assert.equal(
      await Deno.readTextFile(`${dir}work/users.csv`),
      await Deno.readTextFile(`${dir}seed/users.csv`),
    );
    const again = await runDemo([]);
    assert.equal(again.code, 0, again.text);
    assert.match(again.text, /resuming, so finished tasks are not redone/);
    assert.match(
      again.text,
      /sync-inventory\s+succeeded.*in an earlier run; not redone/,
    );
    assert.match(again.text, /"count": 2/);
  } finally {
    await Deno.remove(`${dir}.sturdy`, { recursive: true }).catch(() => {});
    await Deno.remove(`${dir}work`, { recursive: true }).catch(() => {});
  }
});
