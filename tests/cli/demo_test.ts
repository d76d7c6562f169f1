import assert from "node:assert/strict";

Deno.test("the demo shows a flaky job recovering through sturdy retry", async () => {
  const demo = new URL("../../examples/demo.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      demo,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /attempt 1\/5 failed \(exit 1\); retrying in/);
  assert.match(text, /attempt 2\/5 failed \(exit 1\); retrying in/);
  assert.match(text, /synced 42 records/);
  assert.match(text, /the job succeeded on run 3 of at most 5/);
});
