import assert from "node:assert/strict";
import {
  formatDuration,
  parseDuration,
  SturdyError,
  systemClock,
  validateName,
} from "../../mod.ts";

Deno.test("parseDuration() accepts ms, s, m, h and d with decimals", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("7d"), 604_800_000);
});

Deno.test("parseDuration() refuses anything else with invalid_duration and a hint", () => {
  for (
    const bad of [
      "",
      "10",
      "1.5",
      "s",
      "-1s",
      "1 s",
      "1sec",
      "1e3ms",
      "2w",
      "1.s",
    ]
  ) {
    assert.throws(() => parseDuration(bad), (e: unknown) => {
      assert.ok(e instanceof SturdyError);
      assert.equal(e.code, "invalid_duration");
      assert.match(e.message, /e\.g\. 250ms, 1\.5s, 2m, 1h or 7d/);
      return true;
    }, bad);
  }
});

Deno.test("formatDuration() writes short human durations", () => {
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(999), "999ms");
  assert.equal(formatDuration(1_000), "1s");
  assert.equal(formatDuration(59_940), "59.9s");
  assert.equal(formatDuration(60_000), "1m");
  assert.equal(formatDuration(3_600_000), "1h");
  assert.equal(formatDuration(5_430_000), "1h30m");
  assert.equal(formatDuration(Infinity), "Infinity");
});

Deno.test("validateName() refuses traversal, separators, NUL, empty and overlong names", () => {
  for (
    const bad of [
      "",
      ".",
      "..",
      "../x",
      "a/b",
      "a\\b",
      "a\0b",
      "x".repeat(129),
      "sp ace",
      5,
      null,
    ]
  ) {
    assert.throws(() => validateName(bad, "lock name"), (e: unknown) => {
      assert.ok(e instanceof SturdyError);
      assert.equal(e.code, "invalid_name");
      assert.match(e.message, /^Invalid lock name/);
      return true;
    });
  }
  assert.equal(validateName("a.b_c-D9"), "a.b_c-D9");
  assert.equal(validateName("x".repeat(128)), "x".repeat(128));
});

Deno.test("SturdyError keeps code, cause, path, operation and attempts", () => {
  const cause = new Error("inner");
  const err = new SturdyError('Cannot write "a"', {
    code: "write_failed",
    cause,
    path: "a",
    operation: "write",
    attempts: 2,
  });
  assert.equal(err.cause, cause);
  assert.equal(err.path, "a");
  assert.equal(err.operation, "write");
  assert.equal(err.attempts, 2);
  assert.equal(err.name, "SturdyError");
  assert.equal("cause" in new SturdyError("x", { code: "y" }), false);
});

Deno.test("systemClock.sleep() rejects with the reason when aborted, before or during", async () => {
  const before = new AbortController();
  before.abort("early");
  await assert.rejects(
    systemClock.sleep(10, before.signal),
    (e) => e === "early",
  );
  const during = new AbortController();
  const p = systemClock.sleep(60_000, during.signal);
  during.abort("late");
  await assert.rejects(p, (e) => e === "late");
});
