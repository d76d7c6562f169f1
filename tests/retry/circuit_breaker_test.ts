import assert from "node:assert/strict";
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitStateChange,
} from "../../retry/circuit_breaker.ts";
import { CircuitOpenError } from "../../retry/circuit_open_error.ts";
import { SturdyError } from "../../retry/sturdy_error.ts";

/** A clock that only moves when told to. */
function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    sleep: () => Promise.resolve(),
    advance(ms: number) {
      now += ms;
    },
  };
}

function setup(options: CircuitBreakerOptions = {}) {
  const clock = fakeClock();
  const events: CircuitStateChange[] = [];
  const breaker = new CircuitBreaker({
    name: "api",
    clock,
    onStateChange: (e) => events.push(e),
    ...options,
  });
  return { clock, events, breaker };
}

const down = () => Promise.reject(new Error("down"));
const fail = (breaker: CircuitBreaker) =>
  breaker.execute(down).then(
    () => assert.fail("expected a rejection"),
    (err: unknown) => err,
  );
const transitions = (events: CircuitStateChange[]) =>
  events.map((e) => `${e.from}>${e.to}:${e.reason}`);

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "sturdy_breaker_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("CircuitBreaker trips open after failureThreshold consecutive failures, and a success resets the count", async () => {
  const { breaker, events } = setup({ failureThreshold: 3 });
  await fail(breaker);
  await fail(breaker);
  assert.equal(await breaker.execute(() => "ok"), "ok");
  assert.equal(breaker.stats().consecutiveFailures, 0);
  await fail(breaker);
  await fail(breaker);
  assert.equal(breaker.state, "closed");
  await fail(breaker);
  assert.equal(breaker.state, "open");
  assert.deepEqual(transitions(events), ["closed>open:consecutive_failures"]);
  assert.equal(events[0]!.detail, "3 consecutive failures");
  const stats = breaker.stats();
  assert.equal(stats.calls, 6);
  assert.equal(stats.failures, 5);
  assert.equal(stats.successes, 1);
});

Deno.test("CircuitBreaker in rate mode waits for minimumThroughput and forgets calls that slid out of the window", async () => {
  const { breaker, clock, events } = setup({
    failureRateThreshold: 0.5,
    minimumThroughput: 4,
    windowMs: 10_000,
    failureThreshold: 1, // ignored in rate mode
  });
  for (let i = 0; i < 3; i++) await fail(breaker);
  assert.equal(breaker.state, "closed", "3 calls are below minimumThroughput");
  assert.deepEqual(breaker.stats().window, {
    windowMs: 10_000,
    calls: 3,
    failures: 3,
    failureRate: 1,
  });

  clock.advance(10_000);
  assert.equal(breaker.stats().window.calls, 0, "old calls slid out");

  for (let i = 0; i < 3; i++) await breaker.execute(() => "ok");
  await fail(breaker); // 1 of 4
  clock.advance(4_000);
  await fail(breaker); // 2 of 5
  assert.equal(breaker.state, "closed");
  await fail(breaker); // 3 of 6 = 50%
  assert.equal(breaker.state, "open");
  assert.deepEqual(transitions(events), ["closed>open:failure_rate"]);
  assert.equal(events[0]!.detail, "3 of 6 calls failed in the last 10s");
});

Deno.test("CircuitBreaker counts a call slower than slowCallMs as a failure but still returns its value", async () => {
  const { breaker, clock } = setup({ failureThreshold: 2, slowCallMs: 100 });
  const slow = () => {
    clock.advance(150);
    return Promise.resolve("late");
  };
  assert.equal(await breaker.execute(slow), "late");
  assert.equal(await breaker.execute(slow), "late");
  assert.equal(breaker.state, "open");
  const stats = breaker.stats();
  assert.equal(stats.slowCalls, 2);
  assert.equal(stats.failures, 2);
  assert.equal(stats.successes, 0);
  assert.equal(stats.detail, "2 consecutive failures");
});

Deno.test("CircuitBreaker counts errors that isFailure rejects as successes and still throws them", async () => {
  class NotFound extends Error {}
  const { breaker } = setup({
    failureThreshold: 1,
    isFailure: (err) => !(err instanceof NotFound),
  });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      breaker.execute(() => {
        throw new NotFound("missing");
      }),
      NotFound,
    );
  }
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.stats().successes, 3);
  await fail(breaker);
  assert.equal(breaker.state, "open");
});

Deno.test("CircuitBreaker refuses calls while open with a retryAfterMs that shrinks as time passes", async () => {
  const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 30_000 });
  await fail(breaker);
  let calls = 0;
  const counted = () => ++calls;

  let err = await breaker.execute(counted).catch((e) => e);
  assert.ok(err instanceof CircuitOpenError);
  assert.ok(err instanceof SturdyError);
  assert.equal(err.code, "circuit_open");
  assert.equal(err.breaker, "api");
  assert.equal(err.state, "open");
  assert.equal(err.retryAfterMs, 30_000);
  assert.equal(
    err.message,
    'Circuit "api" is open: 1 consecutive failures; retry in 30.0s',
  );

  clock.advance(17_600);
  err = await breaker.execute(counted).catch((e) => e);
  assert.equal(err.retryAfterMs, 12_400);
  assert.match(err.message, /retry in 12\.4s$/);
  assert.equal(calls, 0, "fn never runs while open");
  assert.equal(breaker.stats().rejected, 2);
  assert.equal(breaker.stats().retryAfterMs, 12_400);
});

Deno.test("CircuitBreaker goes half-open after the cooldown and admits at most halfOpenMaxCalls concurrent trials", async () => {
  const { breaker, clock, events } = setup({
    failureThreshold: 1,
    cooldownMs: 1_000,
    halfOpenMaxCalls: 2,
    successThreshold: 2,
  });
  await fail(breaker);
  clock.advance(999);
  assert.equal(breaker.state, "open");
  clock.advance(1);
  assert.equal(breaker.state, "half_open");

  const first = Promise.withResolvers<string>();
  const second = Promise.withResolvers<string>();
  let thirdRan = false;
  const a = breaker.execute(() => first.promise);
  const b = breaker.execute(() => second.promise);
  const c = breaker.execute(() => (thirdRan = true)).catch((e) => e);
  const refused = await c;
  assert.ok(refused instanceof CircuitOpenError);
  assert.equal(refused.state, "half_open");
  assert.equal(refused.retryAfterMs, 0);
  assert.equal(
    refused.message,
    'Circuit "api" is half-open: 2 of 2 trial calls in flight; retry when a trial call finishes',
  );
  assert.equal(thirdRan, false);
  assert.equal(breaker.stats().trialsInFlight, 2);

  first.resolve("one");
  assert.equal(await a, "one");
  assert.equal(breaker.state, "half_open", "one success of two needed");
  second.resolve("two");
  assert.equal(await b, "two");
  assert.equal(breaker.state, "closed");
  assert.deepEqual(transitions(events), [
    "closed>open:consecutive_failures",
    "open>half_open:cooldown_elapsed",
    "half_open>closed:trial_succeeded",
  ]);
  assert.equal(events[1]!.at, 1_000_000 + 1_000, "at = end of the cooldown");
});

Deno.test("CircuitBreaker reopens for a whole new cooldown when a half-open trial fails", async () => {
  const { breaker, clock, events } = setup({
    failureThreshold: 1,
    cooldownMs: 5_000,
  });
  await fail(breaker);
  clock.advance(6_000);
  await fail(breaker);
  assert.equal(breaker.state, "open");
  const err = await breaker.execute(() => "x").catch((e) => e);
  assert.equal(err.retryAfterMs, 5_000);
  assert.match(err.message, /a trial call failed/);
  assert.deepEqual(transitions(events), [
    "closed>open:consecutive_failures",
    "open>half_open:cooldown_elapsed",
    "half_open>open:trial_failed",
  ]);
});

Deno.test("CircuitBreaker needs successThreshold trial successes in a row to close", async () => {
  const { breaker, clock } = setup({
    failureThreshold: 1,
    cooldownMs: 1_000,
    successThreshold: 3,
  });
  await fail(breaker);
  clock.advance(1_000);
  await breaker.execute(() => 1);
  await breaker.execute(() => 2);
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.stats().halfOpenSuccesses, 2);
  await breaker.execute(() => 3);
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.stats().consecutiveFailures, 0);
});

Deno.test("CircuitBreaker trips exactly once when concurrent calls fail together", async () => {
  const { breaker, events } = setup({ failureThreshold: 2 });
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  const calls = gates.map((g) =>
    breaker.execute(() => g.promise).catch((e) => e)
  );
  for (const g of gates) g.reject(new Error("down"));
  await Promise.all(calls);
  assert.equal(breaker.state, "open");
  assert.equal(events.length, 1);
  assert.equal(breaker.stats().failures, 5);
});

Deno.test("CircuitBreaker ignores the outcome of a call admitted before the last state change", async () => {
  const { breaker, clock } = setup({ failureThreshold: 1, cooldownMs: 1_000 });
  const old = Promise.withResolvers<void>();
  const late = breaker.execute(() => old.promise).catch((e) => e);
  await fail(breaker);
  clock.advance(1_000);
  assert.equal(breaker.state, "half_open");
  old.reject(new Error("late failure"));
  await late;
  assert.equal(breaker.state, "half_open", "a stale failure does not reopen");
  assert.equal(breaker.stats().failures, 2, "but it is still counted");
});

Deno.test("CircuitBreaker reports state changes as plain objects and survives a throwing onStateChange", async () => {
  const clock = fakeClock();
  const seen: CircuitStateChange[] = [];
  const uncaught: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    uncaught.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const breaker = new CircuitBreaker({
      name: "api",
      failureThreshold: 1,
      cooldownMs: 100,
      clock,
      onStateChange(event) {
        seen.push(event);
        throw new Error(`handler broke on ${event.to}`);
      },
    });
    await fail(breaker);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(breaker.state, "open");
    clock.advance(100);
    assert.equal(await breaker.execute(() => "ok"), "ok");
    assert.equal(breaker.state, "closed");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(seen[0], {
      breaker: "api",
      from: "closed",
      to: "open",
      reason: "consecutive_failures",
      detail: "1 consecutive failures",
      at: 1_000_000,
    });
    assert.deepEqual(transitions(seen), [
      "closed>open:consecutive_failures",
      "open>half_open:cooldown_elapsed",
      "half_open>closed:trial_succeeded",
    ]);
    assert.deepEqual(
      uncaught.map((e) => (e as Error).message),
      [
        "handler broke on open",
        "handler broke on half_open",
        "handler broke on closed",
      ],
    );
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("CircuitBreaker.isolate() holds it open until every hold is released, and works with using", async () => {
  const { breaker, events } = setup();
  {
    using _outer = breaker.isolate();
    const inner = breaker.isolate();
    assert.equal(breaker.state, "open");
    const err = await breaker.execute(() => "x").catch((e) => e);
    assert.ok(err instanceof CircuitOpenError);
    assert.equal(err.isolated, true);
    assert.equal(err.retryAfterMs, Infinity);
    assert.match(err.message, /^Circuit "api" is isolated: /);
    inner.release();
    inner.release(); // a second release does nothing
    assert.equal(breaker.state, "open", "the outer hold is still active");
    assert.equal(breaker.stats().isolated, true);
  }
  assert.equal(breaker.state, "closed");
  assert.equal(await breaker.execute(() => "x"), "x");
  {
    await using _hold = breaker.isolate();
    assert.equal(breaker.state, "open");
  }
  assert.equal(breaker.state, "closed");
  assert.deepEqual(transitions(events), [
    "closed>open:isolated",
    "open>closed:released",
    "closed>open:isolated",
    "open>closed:released",
  ]);
});

Deno.test("CircuitBreaker.reset() closes it and clears the counts", async () => {
  const { breaker, events } = setup({ failureThreshold: 1 });
  await fail(breaker);
  await breaker.reset();
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.stats().calls, 0);
  assert.deepEqual(transitions(events), [
    "closed>open:consecutive_failures",
    "open>closed:reset",
  ]);
});

Deno.test("CircuitBreaker.toJSON() and fromJSON() round-trip the state through JSON", async () => {
  const { breaker, clock } = setup({
    failureThreshold: 2,
    cooldownMs: 10_000,
  });
  await breaker.execute(() => "ok");
  await fail(breaker);
  await fail(breaker);
  const text = JSON.stringify(breaker);
  const snapshot = JSON.parse(text);
  assert.equal(snapshot.format, "sturdy.breaker/1");
  assert.equal(snapshot.name, "api");
  assert.equal(snapshot.state, "open");

  const copy = CircuitBreaker.fromJSON(snapshot, {
    clock,
    failureThreshold: 2,
    cooldownMs: 10_000,
  });
  assert.equal(copy.name, "api");
  assert.equal(copy.state, "open");
  assert.deepEqual(copy.toJSON(), breaker.toJSON());
  assert.deepEqual(copy.stats(), breaker.stats());
  clock.advance(10_000);
  assert.equal(copy.state, "half_open");

  const other = new CircuitBreaker({
    clock,
    name: "other",
    cooldownMs: 10_000,
  });
  await other.restore(snapshot);
  assert.equal(other.state, "half_open");
  assert.equal(other.stats().failures, 2);
});

Deno.test("CircuitBreaker.fromJSON() and restore() refuse a corrupt snapshot with corrupt_state", async () => {
  const good = new CircuitBreaker({ name: "api" }).toJSON();
  const bad: unknown[] = [
    null,
    "text",
    { ...good, format: "sturdy.breaker/2" },
    { ...good, state: "ajar" },
    { ...good, generation: -1 },
    { ...good, totals: { ...good.totals, calls: "3" } },
    { ...good, window: { bucketMs: 6000, buckets: [[1, 2]] } },
    { ...good, trials: [{ id: 3 }] },
  ];
  for (const snapshot of bad) {
    assert.throws(() => CircuitBreaker.fromJSON(snapshot), (err) => {
      assert.ok(err instanceof SturdyError);
      assert.equal(err.code, "corrupt_state");
      assert.match(
        err.message,
        /^Cannot restore the circuit breaker snapshot: /,
      );
      return true;
    });
  }
  const breaker = new CircuitBreaker({ failureThreshold: 1 });
  await fail(breaker);
  await assert.rejects(breaker.restore({ ...good, state: "ajar" }), {
    code: "corrupt_state",
    message:
      'Cannot restore the circuit breaker snapshot: field "state" is "ajar", expected one of "closed", "open", "half_open"; pass a value returned by toJSON()',
  });
  assert.equal(breaker.state, "open", "a refused snapshot changes nothing");
});

Deno.test("CircuitBreaker.execute() rejects with the reason of an aborted signal and counts nothing", async () => {
  const { breaker } = setup({ failureThreshold: 1 });
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  let ran = false;
  await assert.rejects(
    breaker.execute(() => (ran = true), { signal: controller.signal }),
    { message: "stop" },
  );
  assert.equal(ran, false);
  assert.equal(breaker.stats().calls, 0);

  // An abort while the call runs ends it without counting a failure.
  const during = new AbortController();
  const result = breaker.execute(
    ({ signal }) =>
      new Promise((_, reject) =>
        signal!.addEventListener("abort", () => reject(signal!.reason))
      ),
    { signal: during.signal },
  );
  during.abort(new Error("cancelled"));
  await assert.rejects(result, { message: "cancelled" });
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.stats().calls, 0);
});

Deno.test("CircuitBreaker validates its options", () => {
  assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), RangeError);
  assert.throws(
    () => new CircuitBreaker({ failureRateThreshold: 1.5 }),
    /'failureRateThreshold' must be in \(0, 1\]: current value is 1\.5/,
  );
  assert.throws(() => new CircuitBreaker({ windowMs: 0 }), RangeError);
  assert.throws(() => new CircuitBreaker({ cooldownMs: -1 }), RangeError);
  assert.throws(
    () => new CircuitBreaker({ halfOpenMaxCalls: 1.5 }),
    RangeError,
  );
  assert.throws(() => new CircuitBreaker({ slowCallMs: 0 }), RangeError);
  assert.throws(
    () => new CircuitBreaker({ name: "../x", stateFile: "/tmp/x.json" }),
    { code: "invalid_name" },
  );
  assert.equal(new CircuitBreaker({ name: "any name" }).name, "any name");
});

Deno.test("CircuitBreaker with a stateFile shares one breaker between two objects in one process", async () => {
  await withTempDir(async (dir) => {
    const stateFile = `${dir}/state.json`;
    const options = { name: "api", stateFile, failureThreshold: 4 };
    const clock = fakeClock();
    const a = new CircuitBreaker({ ...options, clock });
    const events: CircuitStateChange[] = [];
    const b = new CircuitBreaker({
      ...options,
      clock,
      onStateChange: (e) => events.push(e),
    });
    // Concurrent failures from both objects: none may be lost.
    await Promise.all([fail(a), fail(b), fail(a), fail(b)]);
    await a.refresh();
    await b.refresh();
    assert.equal(a.state, "open");
    assert.equal(b.state, "open");
    assert.equal(b.stats().failures, 4);
    assert.equal(b.stats().consecutiveFailures, 4);
    assert.equal(events.at(-1)?.to, "open");

    // b learns about the trip from the file and refuses without calling.
    const err = await b.execute(() => "x").catch((e) => e);
    assert.ok(err instanceof CircuitOpenError);

    const saved = JSON.parse(await Deno.readTextFile(stateFile));
    assert.equal(saved.format, "sturdy.breaker/1");
    assert.equal(saved.state, "open");

    await a.reset();
    await b.refresh();
    assert.equal(b.state, "closed");
    assert.equal(await b.execute(() => "ok"), "ok");
    assert.deepEqual(await listDir(dir), ["state.json", "state.json.lock"]);
  });
});

Deno.test("CircuitBreaker with a stateFile shares the half-open trial limit and restores snapshots into the file", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    const options = {
      name: "api",
      stateFile: `${dir}/state.json`,
      failureThreshold: 1,
      cooldownMs: 1_000,
      clock,
    };
    const a = new CircuitBreaker(options);
    const b = new CircuitBreaker(options);
    await fail(a);
    clock.advance(1_000);
    const gate = Promise.withResolvers<string>();
    const trial = a.execute(() => gate.promise);
    // Wait until a's trial lease is on disk, then b must be refused.
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      await b.refresh();
      if (b.stats().trialsInFlight === 1) {
        refused = await b.execute(() => "x").catch((e) => e);
      } else await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(refused instanceof CircuitOpenError);
    assert.equal(refused.state, "half_open");
    gate.resolve("done");
    assert.equal(await trial, "done");
    await b.refresh();
    assert.equal(b.state, "closed");

    const tripped = new CircuitBreaker({ failureThreshold: 1, clock });
    await fail(tripped);
    await b.restore(tripped.toJSON());
    await a.refresh();
    assert.equal(a.state, "open");
  });
});

Deno.test("CircuitBreaker with a stateFile combines failures recorded by two processes", async () => {
  await withTempDir(async (dir) => {
    const stateFile = `${dir}/state.json`;
    const perChild = 25;
    const child = new URL("./_breaker_child.ts", import.meta.url);
    const startAt = Date.now() + 800;
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-lock",
          `--allow-read=${dir}`,
          `--allow-write=${dir}`,
          child.href,
          stateFile,
          String(perChild),
          String(perChild * 2),
          String(startAt),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const outputs = await Promise.all([run(), run()]);
    for (const out of outputs) {
      assert.equal(
        out.code,
        0,
        new TextDecoder().decode(out.stderr),
      );
      const seen = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(seen, { failures: perChild, refused: 0 });
    }
    const breaker = new CircuitBreaker({ name: "shared", stateFile });
    await breaker.refresh();
    const stats = breaker.stats();
    assert.equal(stats.state, "open");
    assert.equal(stats.failures, perChild * 2);
    assert.equal(stats.consecutiveFailures, perChild * 2);
    assert.equal(stats.detail, `${perChild * 2} consecutive failures`);
    assert.deepEqual(await listDir(dir), ["state.json", "state.json.lock"]);
  });
});

Deno.test("CircuitBreaker with a corrupt stateFile fails with corrupt_state naming the file and the fix", async () => {
  await withTempDir(async (dir) => {
    const stateFile = `${dir}/state.json`;
    const breaker = new CircuitBreaker({ name: "api", stateFile });
    await Deno.writeTextFile(stateFile, "{ not json");
    let ran = false;
    const err = await breaker.execute(() => (ran = true)).catch((e) => e);
    assert.equal(ran, false);
    assert.ok(err instanceof SturdyError);
    assert.equal(err.code, "corrupt_state");
    assert.equal(err.path, stateFile);
    assert.ok(err.message.startsWith(
      `Cannot use circuit breaker state file "${stateFile}": it is not valid JSON`,
    ));
    assert.match(err.message, /delete the file to reset the breaker$/);

    await Deno.writeTextFile(stateFile, '{"format":"other/1"}');
    await assert.rejects(breaker.refresh(), {
      code: "corrupt_state",
      message:
        `Cannot use circuit breaker state file "${stateFile}": its format is "other/1", expected "sturdy.breaker/1"; delete the file to reset the breaker`,
    });

    await Deno.remove(stateFile);
    assert.equal(await breaker.execute(() => "fresh"), "fresh");
    assert.deepEqual(await listDir(dir), ["state.json", "state.json.lock"]);
  });
});
