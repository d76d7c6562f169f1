import assert from "node:assert/strict";
import { parseRetryAfter } from "../../mod.ts";

Deno.test("parseRetryAfter() reads delta-seconds, fractions and numbers", () => {
  assert.equal(parseRetryAfter("120"), 120_000);
  assert.equal(parseRetryAfter(" 1.5 "), 1_500);
  assert.equal(parseRetryAfter("0"), 0);
  assert.equal(parseRetryAfter(3), 3_000);
});

Deno.test("parseRetryAfter() reads HTTP dates relative to now, never negative", () => {
  const now = Date.parse("2026-11-24T10:00:00Z");
  assert.equal(
    parseRetryAfter("Tue, 24 Nov 2026 10:01:00 GMT", { now }),
    60_000,
  );
  assert.equal(parseRetryAfter("Tue, 24 Nov 2026 09:00:00 GMT", { now }), 0);
});

Deno.test("parseRetryAfter() prefers the millisecond headers", () => {
  assert.equal(
    parseRetryAfter({ "x-ms-retry-after-ms": "40", "retry-after": "1" }),
    40,
  );
  assert.equal(
    parseRetryAfter(new Response(null, { headers: { "Retry-After-Ms": "5" } })),
    5,
  );
  assert.equal(parseRetryAfter({ "Retry-After": ["2"] }), 2_000);
});

Deno.test("parseRetryAfter() returns undefined for garbage and absence", () => {
  for (
    const bad of ["", "soon", "-1", "1e3", "12abc", null, undefined, -4, NaN]
  ) {
    assert.equal(parseRetryAfter(bad as string), undefined, String(bad));
  }
  assert.equal(parseRetryAfter(new Headers()), undefined);
  assert.equal(parseRetryAfter({ "retry-after-ms": "x" }), undefined);
});
