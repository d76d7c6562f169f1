import assert from "node:assert/strict";
import {
  AttemptTimeoutError,
  classifyError,
  DeadlineExceededError,
  retry,
  RetryBudget,
  RetryBudgetExceededError,
  RetryError,
  type RetryEvent,
  RetryMetrics,
  sleep,
} from "../../mod.ts";
import { FakeClock, flush } from "../_helpers/fake_clock.ts";

const fail = (message = "flaky") => () => {
  throw new Error(message);
};

function failTimes<T>(n: number, value: T) {
  let calls = 0;
  const fn = () => {
    calls++;
    if (calls <= n) throw new Error(`failure ${calls}`);
    return value;
  };
  return { fn, calls: () => calls };
}

Deno.test("retry() returns the first success and passes the attempt context", async () => {
  const seen: { attempt: number; aborted: boolean; remainingMs: number }[] = [];
  const clock = new FakeClock();
  const value = await clock.run(retry(({ attempt, signal, remainingMs }) => {
    seen.push({ attempt, aborted: signal.aborted, remainingMs });
    if (attempt < 3) throw new Error("flaky");
    return "ok";
  }, { clock }));
  assert.equal(value, "ok");
  assert.deepEqual(seen.map((s) => s.attempt), [1, 2, 3]);
  assert.ok(seen.every((s) => !s.aborted && s.remainingMs === Infinity));
});

Deno.test("retry() with std's defaults waits 1s, 2s, 4s, 8s and gives up after 5 attempts", async () => {
  const clock = new FakeClock();
  const { fn, calls } = failTimes(99, "never");
  const err = await clock.run(retry(fn, { clock, random: () => 0 })).catch((
    e,
  ) => e);
  assert.ok(err instanceof RetryError);
  assert.equal(err.name, "RetryError");
  assert.equal(err.message, "Retrying exceeded the maxAttempts (5).");
  assert.equal((err.cause as Error).message, "failure 5");
  assert.equal(err.attempts, 5);
  assert.equal(err.errors.length, 5);
  assert.equal(err.reason, "exhausted");
  assert.equal(calls(), 5);
  assert.deepEqual(clock.sleeps, [1000, 2000, 4000, 8000]);
});

Deno.test("retry() full jitter scales the delay by (1 - random), as std does", async () => {
  const clock = new FakeClock();
  await clock.run(
    retry(fail(), { clock, random: () => 0.75, maxAttempts: 3 }),
  ).catch(() => {});
  assert.deepEqual(clock.sleeps, [250, 500]);
});

Deno.test("retry() caps each delay at maxTimeout", async () => {
  const clock = new FakeClock();
  await clock.run(
    retry(fail(), {
      clock,
      jitter: "none",
      maxAttempts: 6,
      minTimeout: 100,
      maxTimeout: 500,
      multiplier: 3,
    }),
  ).catch(() => {});
  assert.deepEqual(clock.sleeps, [100, 300, 500, 500, 500]);
});

Deno.test("retry() rejects invalid options with std's RangeErrors", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ maxAttempts: 0 }, /'maxAttempts' must be a positive integer/],
    [{ maxAttempts: 1.5 }, /'maxAttempts' must be a positive integer/],
    [{ maxAttempts: NaN }, /'maxAttempts'/],
    [{ multiplier: 0.5 }, /'multiplier' must be a finite number >= 1/],
    [{ multiplier: Infinity }, /'multiplier'/],
    [{ maxTimeout: 0 }, /'maxTimeout' must be a positive number/],
    [{ minTimeout: -1 }, /'minTimeout' must be >= 0/],
    [{ minTimeout: 10, maxTimeout: 5 }, /'minTimeout' must be <= 'maxTimeout'/],
    [{ jitter: 1.5 }, /'jitter' must be between 0 and 1/],
    [{ jitter: "wobbly" }, /'jitter' must be "full"/],
    [{ timeout: 0 }, /'timeout' must be a positive number/],
    [{ deadline: -5 }, /'deadline'/],
    [{ minTimeout: 1, minDelay: 2 }, /same option with different values/],
  ];
  for (const [options, message] of cases) {
    let called = false;
    const promise = retry(() => {
      called = true;
    }, options);
    await assert.rejects(promise, (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, message);
      return true;
    });
    assert.equal(called, false);
  }
});

Deno.test("retry() accepts minDelay/maxDelay as aliases of std's names", async () => {
  const clock = new FakeClock();
  await clock.run(
    retry(fail(), {
      clock,
      jitter: "none",
      maxAttempts: 3,
      minDelay: 10,
      maxDelay: 15,
    }),
  ).catch(() => {});
  assert.deepEqual(clock.sleeps, [10, 15]);
});

Deno.test("retry() rethrows an error isRetriable rejects, untouched and at once", async () => {
  const boom = new Error("fatal");
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw boom;
    }, { isRetriable: (e) => e !== boom }),
    (e) => e === boom,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() with classify retries transient errors and rethrows permanent ones", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const value = await clock.run(retry(() => {
    calls++;
    if (calls === 1) throw Object.assign(new Error("busy"), { code: "EBUSY" });
    return "ok";
  }, { clock, classify: classifyError }));
  assert.equal(value, "ok");
  calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw new Deno.errors.PermissionDenied("nope");
    }, { clock, classify: classifyError }),
    Deno.errors.PermissionDenied,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() gives shouldRetry the attempt, classification and errors", async () => {
  const clock = new FakeClock();
  const infos: { attempt: number; category: string; errors: number }[] = [];
  await clock.run(retry(fail(), {
    clock,
    shouldRetry: (_e, info) => {
      infos.push({
        attempt: info.attempt,
        category: info.classification.category,
        errors: info.errors.length,
      });
      return info.attempt < 2;
    },
  })).catch(() => {});
  assert.deepEqual(infos, [
    { attempt: 1, category: "transient", errors: 1 },
    { attempt: 2, category: "transient", errors: 2 },
  ]);
});

Deno.test("retry() rejects with signal.reason without calling fn when already aborted", async () => {
  const controller = new AbortController();
  const reason = new Error("stop");
  controller.abort(reason);
  let called = false;
  await assert.rejects(
    retry(() => {
      called = true;
    }, { signal: controller.signal }),
    (e) => e === reason,
  );
  assert.equal(called, false);
});

Deno.test("retry() rejects at once when aborted during a wait, and calls fn no more", async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  let calls = 0;
  const promise = retry(() => {
    calls++;
    throw new Error("flaky");
  }, { clock, signal: controller.signal, minTimeout: 10_000 });
  promise.catch(() => {});
  await flush();
  assert.equal(calls, 1);
  assert.equal(clock.pending, 1); // the backoff wait
  controller.abort("user quit");
  await assert.rejects(promise, (e) => e === "user quit");
  assert.equal(clock.pending, 0);
  assert.equal(calls, 1);
});

Deno.test("retry() rejects at once when aborted mid-attempt, even if fn ignores the signal", async () => {
  const controller = new AbortController();
  let release!: () => void;
  const stuck = new Promise<void>((r) => release = r);
  const promise = retry(() => stuck, { signal: controller.signal });
  promise.catch(() => {});
  await flush();
  controller.abort(new Error("cancelled"));
  await assert.rejects(promise, /cancelled/);
  release();
});

Deno.test("retry() never retries the caller's abort, even when fn throws something else", async () => {
  const controller = new AbortController();
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      controller.abort("bye");
      throw new Error("failed because of the abort");
    }, { signal: controller.signal }),
    (e) => e === "bye",
  );
  assert.equal(calls, 1);
});

Deno.test("retry() times out each attempt, aborts its signal and retries", async () => {
  const clock = new FakeClock();
  const seenReasons: unknown[] = [];
  const promise = retry(async ({ signal }) => {
    signal.addEventListener("abort", () => seenReasons.push(signal.reason));
    await clock.sleep(5_000, signal);
    return "never";
  }, { clock, timeout: 1_000, maxAttempts: 3, minTimeout: 100 });
  const err = await clock.run(promise).catch((e) => e);
  assert.ok(err instanceof RetryError);
  assert.ok(err.cause instanceof AttemptTimeoutError);
  assert.equal(err.cause.timeoutMs, 1_000);
  assert.equal(seenReasons.length, 3);
  assert.ok(seenReasons.every((r) => r instanceof AttemptTimeoutError));
  assert.equal(clock.pending, 0);
});

Deno.test("retry() lets an attempt that beats its timeout succeed", async () => {
  const clock = new FakeClock();
  const value = await clock.run(retry(async ({ signal }) => {
    await clock.sleep(200, signal);
    return 7;
  }, { clock, timeout: 1_000 }));
  assert.equal(value, 7);
  assert.equal(clock.pending, 0);
});

Deno.test("retry() with a deadline shorter than one delay shortens the wait to fit one more attempt", async () => {
  const clock = new FakeClock();
  const starts: number[] = [];
  const err = await clock.run(retry(() => {
    starts.push(clock.now());
    throw new Error("down");
  }, { clock, deadline: 3_000, minTimeout: 10_000, jitter: "none" }))
    .catch((e) => e);
  assert.ok(err instanceof DeadlineExceededError);
  assert.ok(err instanceof RetryError);
  assert.equal(err.reason, "deadline");
  assert.equal(err.code, "deadline_exceeded");
  assert.equal(starts.length, 2);
  assert.ok(starts[1]! < 3_000, `second attempt at ${starts[1]}`);
  assert.match(err.message, /3000ms deadline/);
});

Deno.test("retry() cuts off an attempt still running at the deadline", async () => {
  const clock = new FakeClock();
  const err = await clock.run(retry(async ({ signal, remainingMs }) => {
    assert.equal(remainingMs, 2_000);
    await clock.sleep(10_000, signal);
  }, { clock, deadline: 2_000 })).catch((e) => e);
  assert.ok(err instanceof DeadlineExceededError);
  assert.ok(err.cause instanceof AttemptTimeoutError);
  assert.equal(clock.now(), 2_000);
});

Deno.test("retry() fails fast when Retry-After asks for more than the deadline leaves", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const err = await clock.run(retry(() => {
    calls++;
    throw Object.assign(new Error("slow down"), {
      status: 429,
      headers: { "retry-after": "10" },
    });
  }, { clock, deadline: 5_000 })).catch((e) => e);
  assert.ok(err instanceof DeadlineExceededError);
  assert.equal(err.reason, "retry_after_exceeds_deadline");
  assert.equal(calls, 1);
  assert.deepEqual(clock.sleeps.filter((ms) => ms > 0 && ms < 5_000), []);
});

Deno.test("retry() honours Retry-After as a minimum delay, capped by maxRetryAfter", async () => {
  const clock = new FakeClock();
  const limited = (seconds: string) => () => {
    throw Object.assign(new Error("429"), {
      status: 429,
      headers: new Headers({ "retry-after": seconds }),
    });
  };
  await clock.run(
    retry(limited("3"), { clock, maxAttempts: 2, minTimeout: 100 }),
  ).catch(() => {});
  assert.deepEqual(clock.sleeps, [3_000]);
  const clock2 = new FakeClock();
  await clock2.run(
    retry(limited("600"), {
      clock: clock2,
      maxAttempts: 2,
      maxRetryAfter: 9_000,
    }),
  ).catch(() => {});
  assert.deepEqual(clock2.sleeps, [9_000]);
});

Deno.test("retry() emits onRetry once per retry that will happen", async () => {
  const clock = new FakeClock();
  const events: RetryEvent[] = [];
  await clock.run(retry(fail("x"), {
    clock,
    maxAttempts: 3,
    jitter: "none",
    minTimeout: 50,
    onRetry: (e) => events.push(e),
  })).catch(() => {});
  assert.deepEqual(
    events.map((e) => [e.attempt, e.maxAttempts, e.delayMs]),
    [[1, 3, 50], [2, 3, 100]],
  );
  assert.equal((events[0]!.error as Error).message, "x");
  assert.equal(events[0]!.classification.category, "transient");
  assert.equal(events[1]!.elapsedMs, 50);
});

Deno.test("retry() keeps going when an onRetry hook throws, and reports the hook's error", async () => {
  const clock = new FakeClock();
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const { fn } = failTimes(1, "ok");
    const value = await clock.run(retry(fn, {
      clock,
      onRetry: () => {
        throw new Error("bad hook");
      },
    }));
    await flush();
    assert.equal(value, "ok");
    assert.equal((reported[0] as Error).message, "bad hook");
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("retry() returns the fallback's value when it gives up, with the give-up error", async () => {
  const clock = new FakeClock();
  const metrics = new RetryMetrics();
  let seen: unknown;
  const value = await clock.run(retry<string>(fail(), {
    clock,
    maxAttempts: 2,
    metrics,
    fallback: (err, info) => {
      seen = err;
      return `cached after ${info.attempt}`;
    },
  }));
  assert.equal(value, "cached after 2");
  assert.ok(seen instanceof RetryError);
  const s = metrics.snapshot();
  assert.equal(s.fallbacks, 1);
  assert.equal(s.successes, 1);
});

Deno.test("retry() does not use the fallback when the caller aborts", async () => {
  const controller = new AbortController();
  let used = false;
  await assert.rejects(
    retry(() => {
      controller.abort("stop");
      throw new Error("x");
    }, {
      signal: controller.signal,
      fallback: () => {
        used = true;
        return 1;
      },
    }),
    (e) => e === "stop",
  );
  assert.equal(used, false);
});

Deno.test("retry() stops retrying when the shared budget is spent but still makes first attempts", async () => {
  const clock = new FakeClock();
  const budget = new RetryBudget({ maxTokens: 4, tokenRatio: 1 });
  let calls = 0;
  const down = () => {
    calls++;
    throw new Error("503");
  };
  const err1 = await clock.run(retry(down, { clock, budget, maxAttempts: 10 }))
    .catch((e) => e);
  assert.ok(err1 instanceof RetryBudgetExceededError);
  assert.equal(err1.code, "retry_budget_exceeded");
  assert.equal(calls, 2); // 4 → 3 (retry allowed) → 2 (not > half): stop
  calls = 0;
  const err2 = await clock.run(retry(down, { clock, budget, maxAttempts: 10 }))
    .catch((e) => e);
  assert.ok(err2 instanceof RetryBudgetExceededError);
  assert.equal(calls, 1); // first attempt still made, no retry
  // Successes refill the bucket and retries resume.
  await retry(() => 1, { budget });
  await retry(() => 1, { budget });
  assert.equal(budget.tokens, 3);
  assert.equal(budget.canRetry(), true);
});

Deno.test("retry() feeds metrics with calls, retries and failures", async () => {
  const clock = new FakeClock();
  const metrics = new RetryMetrics();
  await clock.run(retry(failTimes(2, 1).fn, { clock, metrics }));
  await clock.run(retry(fail(), { clock, metrics, maxAttempts: 2 }))
    .catch(() => {});
  assert.deepEqual(metrics.snapshot(), {
    calls: 2,
    successes: 1,
    failures: 1,
    retries: 3,
    fallbacks: 0,
    successRate: 0.5,
    meanAttempts: 2.5,
  });
  metrics.reset();
  assert.equal(metrics.snapshot().calls, 0);
});

Deno.test("retry() uses the global setTimeout by default, so std-style fake time works", async () => {
  const original = globalThis.setTimeout;
  const requested: number[] = [];
  // A stand-in that records the delay and fires at once, as fake-timer
  // libraries do when time is advanced.
  globalThis.setTimeout = ((cb: () => void, ms?: number) => {
    requested.push(ms ?? 0);
    return original(cb, 0);
  }) as typeof setTimeout;
  try {
    const { fn } = failTimes(2, "ok");
    assert.equal(await retry(fn, { random: () => 0 }), "ok");
  } finally {
    globalThis.setTimeout = original;
  }
  assert.deepEqual(requested, [1000, 2000]);
});

Deno.test("retry() leaves no timer or listener behind with a real clock, timeout and signal", async () => {
  // The test sanitizers fail this test if a timer or listener leaks.
  const controller = new AbortController();
  const value = await retry(async ({ signal }) => {
    await sleep(1, signal);
    return "done";
  }, { timeout: 5_000, deadline: 10_000, signal: controller.signal });
  assert.equal(value, "done");
});

Deno.test("retry() passes a value through from a synchronous fn", async () => {
  assert.equal(await retry(() => 5), 5);
});
