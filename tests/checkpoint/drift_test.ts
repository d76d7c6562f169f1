import assert from "node:assert/strict";
import {
  type DriftFinding,
  type DriftInput,
  type DriftOptions,
  evaluateDrift,
} from "../../checkpoint/drift.ts";
import {
  ewmaChart,
  median,
  robustSpread,
  robustZ,
} from "../../checkpoint/_ewma.ts";
import type { CheckpointRef } from "../../checkpoint/types.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

/** A ref with sequence `seq`, created `seq` minutes after T0. */
function ref(
  seq: number,
  extra: { stateBytes?: number; at?: number } = {},
): CheckpointRef {
  return {
    id: `${String(seq).padStart(12, "0")}.routine`,
    seq,
    type: "routine",
    path: `/x/${seq}`,
    createdAt: new Date(extra.at ?? T0 + seq * 60_000).toISOString(),
    bytes: extra.stateBytes ?? 1000,
    sha256: "0".repeat(64),
    encoding: "json",
    stateBytes: extra.stateBytes ?? 1000,
    stateVersion: 1,
  };
}

/** Refs seq n … 1, newest first, all `bytes` big. */
function history(n: number, bytes = 1000): CheckpointRef[] {
  return Array.from(
    { length: n },
    (_, i) => ref(n - i, { stateBytes: bytes }),
  );
}

function input(partial: Partial<DriftInput> = {}): DriftInput {
  return {
    now: T0 + 3 * 60_000,
    history: [ref(1)],
    metrics: [],
    openOperations: [],
    ...partial,
  };
}

/** Previous and latest checkpoints holding `before` and `after`. */
function states(before: unknown, after: unknown): Partial<DriftInput> {
  return {
    latest: { ref: ref(2), verified: true, state: after },
    previous: { ref: ref(1), state: before },
    history: [ref(2), ref(1)],
  };
}

function series(name: string, values: number[]): DriftInput["metrics"] {
  return values.map((value, i) => ({ name, value, at: T0 + i }));
}

/** 30 values wandering in 95…105, deterministic. */
const NOISY = Array.from({ length: 30 }, (_, i) => 100 + ((i * 7) % 11) - 5);

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

interface Case {
  name: string;
  input: DriftInput;
  options?: DriftOptions;
  /** The expected `kind:level` of each finding, in order. */
  expect: string[];
  /** Each message must match the pattern at the same index. */
  messages?: RegExp[];
  check?: (findings: DriftFinding[]) => void;
}

const CASES: Case[] = [
  {
    name: "a healthy agent gives no findings",
    input: input({ ...states({ a: 1 }, { a: 2 }) }),
    expect: [],
  },
  {
    name:
      "a latest checkpoint that fails verification is critical and says why",
    input: input({
      latest: { ref: ref(2), verified: false, reason: "checksum mismatch" },
      history: [ref(2), ref(1)],
    }),
    expect: ["verification_failed:critical"],
    messages: [
      /000000000002\.routine \(seq 2\) fails verification: checksum mismatch/,
    ],
  },
  {
    name: "a state that fails validation is critical and quotes the validator",
    input: input({
      latest: {
        ref: ref(2),
        verified: true,
        state: {},
        valid: false,
        validationError: "/step: expected number",
      },
    }),
    expect: ["validation_failed:critical"],
    messages: [/fails validation: \/step: expected number/],
  },
  {
    name: "a retyped nested key is reported as path: old → new",
    input: input(states({ config: { retries: 3 } }, {
      config: { retries: "3" },
    })),
    expect: ["type_changed:warning"],
    messages: [
      /^config\.retries: number → string against checkpoint 000000000001\.routine \(seq 1\)$/,
    ],
    check: ([f]) => {
      assert.equal(f!.path, "config.retries");
      assert.equal(f!.baseline, "number");
      assert.equal(f!.value, "string");
    },
  },
  {
    name: "a removed key is reported with its old type",
    input: input(states({ a: 1, config: { url: "x", retries: 3 } }, {
      a: 1,
      config: { url: "x" },
    })),
    expect: ["key_removed:warning"],
    messages: [/^config\.retries: removed \(was number\)/],
  },
  {
    name: "a removed subtree is reported once, at its top",
    input: input(states({ config: { a: 1, b: { c: 2 } } }, {})),
    expect: ["key_removed:warning"],
    messages: [/^config: removed \(was object\)/],
  },
  {
    name: "added keys are growth, not drift",
    input: input(states({ a: 1 }, { a: 1, b: { c: 2 } })),
    expect: [],
  },
  {
    name: "null and arrays are types of their own",
    input: input(states({ a: null, b: [1], c: {} }, { a: 0, b: {}, c: [] })),
    expect: [
      "type_changed:warning",
      "type_changed:warning",
      "type_changed:warning",
    ],
    messages: [/^a: null → number/, /^b: array → object/, /^c: object → array/],
  },
  {
    name: "array contents are not walked",
    input: input(states({ list: [1, 2] }, { list: ["a"] })),
    expect: [],
  },
  {
    name: "a whole state that changes type is reported as (state)",
    input: input(states({ a: 1 }, [1])),
    expect: ["type_changed:warning"],
    messages: [/^\(state\): object → array/],
  },
  {
    name: "keys that are not identifiers are quoted in the path",
    input: input(states({ "a.b": { "x y": 1 } }, { "a.b": {} })),
    expect: ["key_removed:warning"],
    messages: [/^\["a\.b"\]\["x y"\]: removed/],
  },
  {
    name: "structure is walked only structureDepth levels deep",
    input: input(states({ a: { b: { c: 1 } }, d: 1 }, { a: { b: {} }, d: 1 })),
    options: { structureDepth: 2 },
    expect: [],
  },
  {
    name: "at the default depth 3 the same change is found",
    input: input(states({ a: { b: { c: 1 } } }, { a: { b: {} } })),
    expect: ["key_removed:warning"],
    messages: [/^a\.b\.c: removed/],
  },
  {
    name: "structural findings past the limit are counted in one finding",
    input: input(states({ a: 1, b: 1, c: 1, d: 1, e: 1 }, {})),
    options: { maxStructureFindings: 2 },
    expect: [
      "key_removed:warning",
      "key_removed:warning",
      "structure_truncated:warning",
    ],
    messages: [
      /^a:/,
      /^b:/,
      /^3 more structural change\(s\) not listed \(limit 2/,
    ],
  },
  {
    name: "structure is not compared when the latest checkpoint did not verify",
    input: input({
      latest: { ref: ref(2), verified: false, reason: "truncated", state: {} },
      previous: { ref: ref(1), state: { a: 1 } },
    }),
    expect: ["verification_failed:critical"],
  },
  {
    name: "a state 4× the median of the ones before is a size jump",
    input: input({ history: [ref(5, { stateBytes: 4000 }), ...history(4)] }),
    expect: ["size_jump:warning"],
    messages: [
      /grew 4×: 3\.9 KiB against a median of 1000 B over the 4 before it \(limit 3× either way\)/,
    ],
    check: ([f]) => {
      assert.equal(f!.value, 4000);
      assert.equal(f!.baseline, 1000);
      assert.equal(f!.limit, 3);
    },
  },
  {
    name: "a state that shrank to a quarter is a size jump too",
    input: input({ history: [ref(5, { stateBytes: 250 }), ...history(4)] }),
    expect: ["size_jump:warning"],
    messages: [/shrank to 25%/],
  },
  {
    name: "a state 2.9× the median is within the default ratio",
    input: input({ history: [ref(5, { stateBytes: 2900 }), ...history(4)] }),
    expect: [],
  },
  {
    name: "sizeJumpRatio lowers the limit",
    input: input({ history: [ref(5, { stateBytes: 2900 }), ...history(4)] }),
    options: { sizeJumpRatio: 2 },
    expect: ["size_jump:warning"],
  },
  {
    name: "size is not judged before minSizeHistory earlier checkpoints",
    input: input({ history: [ref(3, { stateBytes: 9000 }), ...history(2)] }),
    expect: [],
  },
  {
    name: "one earlier outlier does not move the size median",
    input: input({
      history: [
        ref(5, { stateBytes: 4000 }),
        ref(4, { stateBytes: 1000 }),
        ref(3, { stateBytes: 50_000 }),
        ref(2, { stateBytes: 1000 }),
        ref(1, { stateBytes: 1000 }),
      ],
    }),
    expect: ["size_jump:warning"],
    check: ([f]) => assert.equal(f!.baseline, 1000),
  },
  {
    name: "growth from empty states is reported as growth from nothing",
    input: input({ history: [ref(4, { stateBytes: 10 }), ...history(3, 0)] }),
    expect: ["size_jump:warning"],
    messages: [/grew from nothing/],
  },
  {
    name: "a metric spike fires both the z-score and the EWMA: critical",
    input: input({ metrics: series("latency_ms", [...NOISY, 200]) }),
    expect: ["metric_anomaly:critical"],
    messages: [
      /^Metric "latency_ms" is 200, against a median of 100 over the 30 values before it \(σ ≈ [\d.]+ from the MAD\): robust z-score [\d.]+ beyond ±3\.5; EWMA [\d.]+ outside \[/,
    ],
    check: ([f]) => {
      assert.equal(f!.metric, "latency_ms");
      assert.equal(f!.value, 200);
    },
  },
  {
    name: "a small sustained shift fires only the EWMA chart: warning",
    input: input({
      metrics: series("tokens", [...NOISY, 108, 108, 108, 108, 108, 108]),
    }),
    expect: ["metric_anomaly:warning"],
    messages: [/EWMA/],
    check: ([f]) => assert.doesNotMatch(f!.message, /z-score/),
  },
  {
    name: "a lone moderate outlier fires only the z-score: warning",
    input: input({ metrics: series("steps", [...NOISY, 120]) }),
    options: { ewmaWidth: 6 },
    expect: ["metric_anomaly:warning"],
    messages: [/robust z-score/],
    check: ([f]) => assert.doesNotMatch(f!.message, /EWMA/),
  },
  {
    name: "a usual value gives no metric finding",
    input: input({ metrics: series("latency_ms", [...NOISY, 103]) }),
    expect: [],
  },
  {
    name: "a change after a constant history is a finding even with MAD 0",
    input: input({ metrics: series("errors", [...Array(12).fill(0), 1]) }),
    expect: ["metric_anomaly:critical"],
    messages: [/every earlier value equal.*robust z-score \+∞/],
  },
  {
    name: "mostly equal values fall back to the mean absolute deviation",
    input: input({
      metrics: series("errors", [...Array(10).fill(0), 1, 1, 0, 9]),
    }),
    expect: ["metric_anomaly:critical"],
    messages: [/from the mean absolute deviation/],
  },
  {
    name: "a constant metric that stays constant is fine",
    input: input({ metrics: series("errors", Array(20).fill(0)) }),
    expect: [],
  },
  {
    name: "a metric is not judged before minMetricHistory earlier values",
    input: input({ metrics: series("x", [1, 1, 1, 1, 1, 1, 1, 1, 1, 900]) }),
    expect: [],
  },
  {
    name: "minMetricHistory lowers the warm-up",
    input: input({ metrics: series("x", [1, 2, 1, 2, 1, 900]) }),
    options: { minMetricHistory: 5 },
    expect: ["metric_anomaly:critical"],
  },
  {
    name: "values older than metricWindow are forgotten",
    input: input({
      metrics: series("x", [
        ...Array(20).fill(500),
        ...NOISY.slice(0, 20),
        100,
      ]),
    }),
    options: { metricWindow: 20 },
    expect: [],
  },
  {
    name: "each metric is judged against its own history",
    input: input({
      metrics: [
        ...series("a", [...NOISY, 200]),
        ...series("b", NOISY.map((v) => v * 10)),
      ],
    }),
    expect: ["metric_anomaly:critical"],
    check: ([f]) => assert.equal(f!.metric, "a"),
  },
  {
    name: "non-finite metric values are ignored",
    input: input({ metrics: series("x", [...NOISY, NaN, Infinity]) }),
    expect: [],
  },
  {
    name: "a checkpoint older than 3× the expected interval is stale",
    input: input({
      history: [ref(1)],
      now: T0 + 60_000 + 31 * 60_000,
      expectedIntervalMs: 10 * 60_000,
    }),
    expect: ["stale:warning"],
    messages: [/is 31m old, more than 3× the expected interval of 10m/],
    check: ([f]) => {
      assert.equal(f!.value, 31 * 60_000);
      assert.equal(f!.baseline, 10 * 60_000);
      assert.equal(f!.limit, 30 * 60_000);
    },
  },
  {
    name: "a checkpoint within 3× the expected interval is not stale",
    input: input({
      history: [ref(1)],
      now: T0 + 60_000 + 29 * 60_000,
      expectedIntervalMs: 10 * 60_000,
    }),
    expect: [],
  },
  {
    name: "the expected interval can come from the options",
    input: input({ history: [ref(1)], now: T0 + 2 * HOUR }),
    options: { expectedIntervalMs: HOUR / 2, staleFactor: 2 },
    expect: ["stale:warning"],
  },
  {
    name: "an interval inferred from history only gives an info finding",
    input: input({ history: history(5), now: T0 + 5 * 60_000 + HOUR }),
    expect: ["stale:info"],
    messages: [/more than 3× the usual interval between checkpoints of 1m/],
  },
  {
    name: "no interval is inferred from fewer than minIntervalHistory gaps",
    input: input({ history: history(3), now: T0 + 10 * HOUR }),
    expect: [],
  },
  {
    name: "no checkpoints at all is info, or a warning when one was expected",
    input: input({ history: [], expectedIntervalMs: 1000 }),
    expect: ["no_checkpoints:warning"],
  },
  {
    name: "no checkpoints and no schedule is only info",
    input: input({ history: [] }),
    expect: ["no_checkpoints:info"],
  },
  {
    name: "an operation open longer than the timeout is orphaned",
    input: input({
      history: [ref(1)],
      now: T0 + 2 * HOUR,
      openOperations: [
        { id: "op-1", name: "migrate", startedAt: T0 },
        { id: "op-2", name: "fresh", startedAt: T0 + 2 * HOUR - 1000 },
      ],
    }),
    expect: ["orphaned_operation:warning"],
    messages: [
      /^Operation "migrate" \(op-1\) has been open for 2h, longer than 1h/,
    ],
  },
  {
    name: "operationTimeoutMs sets the orphan threshold",
    input: input({
      history: [ref(1)],
      now: T0 + 10_000,
      openOperations: [{ id: "op-1", name: "m", startedAt: T0 }],
    }),
    options: { operationTimeoutMs: 5_000 },
    expect: ["orphaned_operation:warning"],
  },
  {
    name: "findings are sorted worst first, rule order within a level",
    input: input({
      latest: { ref: ref(3), verified: false, reason: "bad" },
      history: [ref(3), ref(2), ref(1)],
      now: T0 + 10 * HOUR,
      openOperations: [{ id: "op-1", name: "m", startedAt: T0 }],
      metrics: series("x", [...NOISY, 108, 108, 108, 108, 108, 108]),
    }),
    expect: [
      "verification_failed:critical",
      "metric_anomaly:warning",
      "orphaned_operation:warning",
    ],
  },
  {
    name: "disabled rules are skipped",
    input: input({
      latest: { ref: ref(3), verified: false, reason: "bad" },
      history: [ref(3), ref(2), ref(1)],
    }),
    options: { disable: ["verification"] },
    expect: [],
  },
];

for (const c of CASES) {
  Deno.test(`evaluateDrift: ${c.name}`, async () => {
    const report = await evaluateDrift(deepFreeze(c.input), c.options);
    assert.deepEqual(
      report.findings.map((f) => `${f.kind}:${f.level}`),
      c.expect,
      report.findings.map((f) => f.message).join("\n"),
    );
    for (const [i, pattern] of (c.messages ?? []).entries()) {
      assert.match(report.findings[i]!.message, pattern);
    }
    const worst = report.findings[0]?.level ?? "none";
    assert.equal(report.level, worst);
    assert.equal(report.drifted, worst === "warning" || worst === "critical");
    c.check?.(report.findings);
  });
}

Deno.test("evaluateDrift appends custom detectors' findings after the built-in ones of the same level", async () => {
  const report = await evaluateDrift(
    input(states({ a: 1 }, { a: "1" })),
    {
      detectors: [
        function configHash() {
          return [{ kind: "config_changed", level: "warning", message: "x" }];
        },
        async () => {
          await Promise.resolve();
          return [{ kind: "note", level: "info", message: "y" }];
        },
      ],
    },
  );
  assert.deepEqual(report.findings.map((f) => f.kind), [
    "type_changed",
    "config_changed",
    "note",
  ]);
  assert.equal(report.level, "warning");
});

Deno.test("evaluateDrift turns a throwing or malformed detector into detector_failed findings", async () => {
  const report = await evaluateDrift(input({ history: [ref(1)] }), {
    detectors: [
      function flaky() {
        throw new Error("socket closed");
      },
      () => Promise.reject("plain string"),
      () => "nope" as unknown as DriftFinding[],
      () => [
        { kind: "k", level: "severe", message: "m" } as unknown as DriftFinding,
      ],
      () => [],
    ],
  });
  assert.deepEqual(
    report.findings.map((f) => [f.kind, f.level]),
    Array(4).fill(["detector_failed", "warning"]),
  );
  const messages = report.findings.map((f) => f.message);
  assert.equal(messages[0], 'Drift detector "flaky" failed: socket closed');
  assert.equal(messages[1], "Drift detector #2 failed: plain string");
  assert.match(messages[2]!, /#3 failed: it returned string, not an array/);
  assert.match(messages[3]!, /#4 failed: .*"severe".* is not a finding/);
  assert.equal(report.drifted, true);
});

Deno.test("evaluateDrift passes detectors the input it was given", async () => {
  const given = input({ history: [ref(1)] });
  let seen: DriftInput | undefined;
  await evaluateDrift(given, {
    detectors: [(i) => {
      seen = i;
      return [];
    }],
  });
  assert.equal(seen, given);
});

Deno.test("evaluateDrift refuses thresholds that are not positive numbers", async () => {
  for (
    const options of [
      { sizeJumpRatio: 1 },
      { sizeJumpRatio: 0 },
      { ewmaLambda: 0 },
      { ewmaLambda: 1.5 },
      { staleFactor: -1 },
      { metricWindow: NaN },
      { expectedIntervalMs: 0 },
    ] as DriftOptions[]
  ) {
    await assert.rejects(
      () => evaluateDrift(input(), options),
      RangeError,
      JSON.stringify(options),
    );
  }
});

Deno.test("evaluateDrift gives the same report for the same input", async () => {
  const i = input({
    ...states({ a: { b: 1 } }, { a: {} }),
    metrics: series("x", [...NOISY, 300]),
    openOperations: [{ id: "o", name: "n", startedAt: T0 - 2 * HOUR }],
  });
  assert.deepEqual(await evaluateDrift(i), await evaluateDrift(i));
});

Deno.test("median, robustSpread and robustZ match hand-computed values", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const spread = robustSpread([1, 2, 3, 4, 100]);
  assert.equal(spread.median, 3);
  assert.equal(spread.basis, "mad");
  assert.ok(Math.abs(spread.sigma - 1.4826) < 1e-9); // MAD = 1
  assert.ok(Math.abs(robustZ(3 + 1.4826 * 4, spread) - 4) < 1e-9);
  const flat = robustSpread([5, 5, 5, 5, 9]);
  assert.equal(flat.basis, "mean_ad");
  assert.ok(Math.abs(flat.sigma - 1.2533 * 0.8) < 1e-9);
  assert.equal(robustZ(6, robustSpread([5, 5, 5])), Infinity);
  assert.equal(robustZ(4, robustSpread([5, 5, 5])), -Infinity);
  assert.equal(robustZ(5, robustSpread([5, 5, 5])), 0);
});

Deno.test("ewmaChart uses the exact time-varying limits", () => {
  const one = ewmaChart([10], 0, 1, 0.2, 3);
  assert.ok(Math.abs(one.ewma - 2) < 1e-12);
  // t = 1: L·σ·√(λ/(2−λ)·(1−(1−λ)²)) = 3·√(0.2/1.8·0.36) = 0.6
  assert.ok(Math.abs(one.upper - 0.6) < 1e-12);
  const long = ewmaChart(Array(200).fill(0), 0, 1, 0.2, 3);
  // Asymptotically 3·√(0.2/1.8) = 1.
  assert.ok(Math.abs(long.upper - 1) < 1e-9);
  assert.equal(long.lower, -long.upper);
});
