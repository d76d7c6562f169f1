import assert from "node:assert/strict";
import {
  AttemptTimeoutError,
  classifyError,
  createClassifier,
  type ErrorCategory,
} from "../../mod.ts";

const withCode = (code: string) => Object.assign(new Error(code), { code });
const category = (e: unknown): ErrorCategory => classifyError(e).category;

Deno.test("classifyError() sorts errno codes into transient, network, resource and permanent", () => {
  for (const code of ["EAGAIN", "EBUSY", "EINTR", "EIO"]) {
    assert.deepEqual(classifyError(withCode(code)), {
      category: "transient",
      retryable: true,
      reason: code,
    });
  }
  for (const code of ["ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "EPIPE"]) {
    assert.equal(category(withCode(code)), "network", code);
    assert.equal(classifyError(withCode(code)).retryable, true);
  }
  for (const code of ["EMFILE", "ENFILE", "ENOSPC", "ENOMEM"]) {
    assert.equal(category(withCode(code)), "resource", code);
    assert.equal(classifyError(withCode(code)).retryable, true);
  }
  for (const code of ["ENOENT", "EACCES", "EPERM", "EEXIST", "EXDEV"]) {
    assert.equal(category(withCode(code)), "permanent", code);
    assert.equal(classifyError(withCode(code)).retryable, false);
  }
});

Deno.test("classifyError() knows Deno's error classes", () => {
  const permanent = [
    new Deno.errors.NotFound("x"),
    new Deno.errors.PermissionDenied("x"),
    new Deno.errors.NotCapable("x"),
    new Deno.errors.AlreadyExists("x"),
  ];
  for (const e of permanent) {
    assert.equal(classifyError(e).retryable, false, e.name);
    assert.equal(category(e), "permanent", e.name);
  }
  assert.equal(category(new Deno.errors.ConnectionReset("x")), "network");
  assert.equal(category(new Deno.errors.ConnectionRefused("x")), "network");
  assert.equal(category(new Deno.errors.Interrupted("x")), "transient");
  assert.equal(category(new Deno.errors.Busy("x")), "transient");
  assert.equal(classifyError(new Deno.errors.TimedOut("x")).retryable, true);
});

Deno.test("classifyError() treats type and syntax errors as permanent", () => {
  assert.equal(category(new TypeError("x is not a function")), "permanent");
  assert.equal(category(new SyntaxError("bad json")), "permanent");
  assert.equal(category(new RangeError("r")), "permanent");
});

Deno.test("classifyError() recognises fetch network failures by message and cause", () => {
  assert.equal(
    category(new TypeError("error sending request for url (https://x)")),
    "network",
  );
  assert.equal(
    category(new TypeError("fetch failed", { cause: withCode("ECONNRESET") })),
    "network",
  );
});

Deno.test("classifyError() marks aborts cancelled and timeouts retryable", () => {
  const abort = new DOMException("aborted", "AbortError");
  assert.deepEqual(classifyError(abort), {
    category: "cancelled",
    retryable: false,
    reason: "aborted",
  });
  assert.equal(
    category(new DOMException("signal timed out", "TimeoutError")),
    "timeout",
  );
  assert.equal(category(new AttemptTimeoutError(10, 1)), "timeout");
});

Deno.test("classifyError() reads HTTP statuses from status, statusCode, response.status and Response", () => {
  const status = (s: number) =>
    Object.assign(new Error(`HTTP ${s}`), { status: s });
  assert.equal(category(status(408)), "transient");
  assert.equal(category(status(425)), "transient");
  assert.equal(category(status(500)), "transient");
  assert.equal(category(status(503)), "transient");
  assert.equal(category(status(404)), "permanent");
  assert.equal(classifyError(status(400)).retryable, false);
  assert.equal(category({ statusCode: 502 }), "transient");
  assert.equal(category({ response: { status: 429 } }), "rate_limit");
  assert.equal(category(new Response(null, { status: 401 })), "permanent");
});

Deno.test("classifyError() reads the Retry-After hint of 429 and 503", () => {
  const err = Object.assign(new Error("429"), {
    status: 429,
    headers: { "Retry-After": "7" },
  });
  assert.deepEqual(classifyError(err), {
    category: "rate_limit",
    retryable: true,
    reason: "HTTP 429",
    delayHintMs: 7_000,
  });
  const r503 = new Response(null, {
    status: 503,
    headers: { "retry-after-ms": "1500" },
  });
  assert.equal(classifyError(r503).delayHintMs, 1_500);
  assert.equal(
    classifyError({ status: 429, response: { headers: new Headers() } })
      .delayHintMs,
    undefined,
  );
});

Deno.test("classifyError() turns an open circuit's retryAfterMs into a delay hint", () => {
  const open = Object.assign(new Error("open"), {
    code: "circuit_open",
    retryAfterMs: 1234,
  });
  assert.equal(classifyError(open).delayHintMs, 1234);
  assert.equal(classifyError(open).retryable, true);
});

Deno.test("classifyError() assumes an unknown error is transient", () => {
  assert.equal(classifyError(new Error("weird")).retryable, true);
  assert.equal(classifyError("a string").category, "transient");
  assert.equal(classifyError(undefined).retryable, true);
});

Deno.test("createClassifier() runs user rules first and merges their verdict", () => {
  class QuotaError extends Error {}
  const classify = createClassifier([
    (e) => e instanceof QuotaError ? { retryable: false } : undefined,
    () => undefined,
  ]);
  const verdict = classify(new QuotaError("quota"));
  assert.equal(verdict.retryable, false);
  assert.equal(verdict.category, "transient"); // merged over the built-in one
  assert.equal(classify(withCode("EBUSY")).retryable, true);
});
