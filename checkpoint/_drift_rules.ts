// The built-in drift rules. Each is a pure function of the gathered input
// and the resolved options, and each finding carries the numbers it was
// decided on (value, baseline, limit), so a reader can check it by hand.

import { formatDuration } from "../retry/mod.ts";
import { ewmaChart, median, robustSpread, robustZ } from "./_ewma.ts";
import type { CheckpointRef } from "./types.ts";
import type { DriftFinding, DriftInput } from "./drift.ts";

/** Every option of the built-in rules, defaults applied. */
export interface ResolvedDriftOptions {
  structureDepth: number;
  maxStructureFindings: number;
  sizeJumpRatio: number;
  sizeWindow: number;
  minSizeHistory: number;
  metricWindow: number;
  minMetricHistory: number;
  ewmaLambda: number;
  ewmaWidth: number;
  robustZLimit: number;
  expectedIntervalMs: number | undefined;
  staleFactor: number;
  minIntervalHistory: number;
  operationTimeoutMs: number;
}

/** The checkpoint the rules judge: the verified latest, else the newest listed. */
function latestRef(input: DriftInput): CheckpointRef | undefined {
  return input.latest?.ref ?? input.history[0];
}

/** The latest checkpoint fails verification: its bytes cannot be trusted. */
export function verificationRule(input: DriftInput): DriftFinding[] {
  const latest = input.latest;
  if (!latest || latest.verified) return [];
  return [{
    kind: "verification_failed",
    level: "critical",
    message:
      `Latest checkpoint ${latest.ref.id} (seq ${latest.ref.seq}) fails verification: ${
        latest.reason ?? "no reason given"
      }`,
    value: latest.reason ?? null,
  }];
}

/** The latest state fails the manager's validator or schema. */
export function validationRule(input: DriftInput): DriftFinding[] {
  const latest = input.latest;
  if (!latest || latest.valid !== false) return [];
  return [{
    kind: "validation_failed",
    level: "critical",
    message:
      `State in checkpoint ${latest.ref.id} (seq ${latest.ref.seq}) fails validation: ${
        latest.validationError ?? "no reason given"
      }`,
    value: latest.validationError ?? null,
  }];
}

/** What a JSON value is, as a finding names it. */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `config.retries`, or `config["a.b"]` for keys that are not identifiers. */
function childPath(parent: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) {
    return parent === "" ? key : `${parent}.${key}`;
  }
  return `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Keys removed and types changed since the previous checkpoint. Objects are
 * walked `structureDepth` levels deep (arrays and deeper values compare by
 * type only), and a removed or retyped subtree is reported once, at its top.
 * Added keys are growth, not drift, and are not reported.
 */
export function structureRule(
  input: DriftInput,
  options: ResolvedDriftOptions,
): DriftFinding[] {
  const before = input.previous?.state;
  const after = input.latest?.state;
  if (before === undefined || after === undefined) return [];
  if (input.latest?.verified === false) return [];
  const findings: DriftFinding[] = [];
  let more = 0;
  const push = (finding: DriftFinding): void => {
    if (findings.length < options.maxStructureFindings) findings.push(finding);
    else more++;
  };
  const from = `against checkpoint ${input.previous!.ref.id} (seq ${
    input.previous!.ref.seq
  })`;
  const walk = (a: unknown, b: unknown, path: string, depth: number): void => {
    const ta = typeName(a);
    const tb = typeName(b);
    if (ta !== tb) {
      push({
        kind: "type_changed",
        level: "warning",
        message: `${path || "(state)"}: ${ta} → ${tb} ${from}`,
        path: path || "(state)",
        value: tb,
        baseline: ta,
      });
      return;
    }
    if (!isRecord(a) || !isRecord(b) || depth >= options.structureDepth) {
      return;
    }
    for (const key of Object.keys(a)) {
      const p = childPath(path, key);
      if (!Object.hasOwn(b, key)) {
        push({
          kind: "key_removed",
          level: "warning",
          message: `${p}: removed (was ${typeName(a[key])}) ${from}`,
          path: p,
          value: null,
          baseline: typeName(a[key]),
        });
      } else {
        walk(a[key], b[key], p, depth + 1);
      }
    }
  };
  walk(before, after, "", 0);
  if (more > 0) {
    findings.push({
      kind: "structure_truncated",
      level: "warning",
      message:
        `${more} more structural change(s) not listed (limit ${options.maxStructureFindings}; raise maxStructureFindings to see them)`,
      value: more,
      limit: options.maxStructureFindings,
    });
  }
  return findings;
}

/** `12 B`, `1.5 KiB`, `64.0 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The latest state's JSON size (before compression, so switching encoding
 * is not drift) against the median of the checkpoints before it: a
 * jump by `sizeJumpRatio` either way (growth, or a shrink that may mean
 * lost state) is a warning. The median, not the mean, so one earlier jump
 * does not hide the next.
 */
export function sizeRule(
  input: DriftInput,
  options: ResolvedDriftOptions,
): DriftFinding[] {
  const latest = latestRef(input);
  if (!latest) return [];
  const earlier = input.history
    .filter((ref) => ref.id !== latest.id && ref.seq < latest.seq)
    .slice(0, options.sizeWindow)
    .map((ref) => ref.stateBytes);
  if (earlier.length < options.minSizeHistory) return [];
  const base = median(earlier);
  const ratio = base === 0
    ? (latest.stateBytes === 0 ? 1 : Infinity)
    : latest.stateBytes / base;
  const limit = options.sizeJumpRatio;
  if (ratio < limit && ratio > 1 / limit) return [];
  const grew = ratio >= limit;
  const how = grew
    ? `grew ${Number.isFinite(ratio) ? round(ratio, 1) + "×" : "from nothing"}`
    : `shrank to ${round(ratio * 100, 1)}%`;
  return [{
    kind: "size_jump",
    level: "warning",
    message: `State of checkpoint ${latest.id} (seq ${latest.seq}) ${how}: ${
      formatBytes(latest.stateBytes)
    } against a median of ${
      formatBytes(base)
    } over the ${earlier.length} before it (limit ${limit}× either way)`,
    value: latest.stateBytes,
    baseline: base,
    limit,
  }];
}

/**
 * Each recorded metric's latest value against its own recent history: an
 * EWMA chart (λ, ±L·σ) and the modified z-score (|z| > limit), both centred
 * on the median with σ from the MAD. One signal firing is a warning, both a
 * critical finding. Needs `minMetricHistory` earlier points first.
 */
export function metricRule(
  input: DriftInput,
  options: ResolvedDriftOptions,
): DriftFinding[] {
  const byName = new Map<string, number[]>();
  for (const m of input.metrics) {
    if (!Number.isFinite(m.value)) continue;
    let series = byName.get(m.name);
    if (!series) byName.set(m.name, series = []);
    series.push(m.value);
  }
  const findings: DriftFinding[] = [];
  for (const [name, all] of byName) {
    const window = all.slice(-(options.metricWindow + 1));
    const baseline = window.slice(0, -1);
    if (baseline.length < options.minMetricHistory) continue;
    const x = window[window.length - 1]!;
    const spread = robustSpread(baseline);
    const z = robustZ(x, spread);
    const chart = ewmaChart(
      window,
      spread.median,
      spread.sigma,
      options.ewmaLambda,
      options.ewmaWidth,
    );
    const zFires = Math.abs(z) > options.robustZLimit;
    const ewmaFires = chart.ewma > chart.upper || chart.ewma < chart.lower;
    if (!zFires && !ewmaFires) continue;
    const reasons: string[] = [];
    if (zFires) {
      reasons.push(
        `robust z-score ${
          Number.isFinite(z) ? round(z) : z > 0 ? "+∞" : "−∞"
        } beyond ±${options.robustZLimit}`,
      );
    }
    if (ewmaFires) {
      reasons.push(
        `EWMA ${round(chart.ewma, 4)} outside [${round(chart.lower, 4)}, ${
          round(chart.upper, 4)
        }] (λ ${options.ewmaLambda}, ±${options.ewmaWidth}σ)`,
      );
    }
    const sigmaNote = spread.sigma === 0
      ? "every earlier value equal"
      : `σ ≈ ${round(spread.sigma, 4)} from the ${
        spread.basis === "mad" ? "MAD" : "mean absolute deviation"
      }`;
    findings.push({
      kind: "metric_anomaly",
      level: zFires && ewmaFires ? "critical" : "warning",
      metric: name,
      message: `Metric "${name}" is ${x}, against a median of ${
        round(spread.median, 4)
      } over the ${baseline.length} values before it (${sigmaNote}): ${
        reasons.join("; ")
      }`,
      value: x,
      baseline: {
        median: spread.median,
        sigma: spread.sigma,
        ewma: chart.ewma,
        lower: chart.lower,
        upper: chart.upper,
        z: Number.isFinite(z) ? z : String(z),
        points: baseline.length,
      },
      limit: options.robustZLimit,
    });
  }
  return findings;
}

/**
 * The newest checkpoint is older than `staleFactor` × the expected
 * interval. The interval comes from the input (autoCheckpoint), the
 * options, or else the median gap between recent checkpoints; an inferred
 * interval only guesses at the agent's schedule, so it yields "info".
 */
export function stalenessRule(
  input: DriftInput,
  options: ResolvedDriftOptions,
): DriftFinding[] {
  const latest = latestRef(input);
  if (!latest) {
    return [{
      kind: "no_checkpoints",
      level: input.expectedIntervalMs === undefined &&
          options.expectedIntervalMs === undefined
        ? "info"
        : "warning",
      message: "No checkpoints yet: nothing to restore",
      value: 0,
    }];
  }
  const createdAt = Date.parse(latest.createdAt);
  if (!Number.isFinite(createdAt)) return [];
  let expected = input.expectedIntervalMs ?? options.expectedIntervalMs;
  let inferred = false;
  if (expected === undefined) {
    const times = input.history.map((ref) => Date.parse(ref.createdAt))
      .filter(Number.isFinite)
      .slice(0, options.sizeWindow + 1);
    const gaps: number[] = [];
    for (let i = 1; i < times.length; i++) {
      const gap = times[i - 1]! - times[i]!;
      if (gap > 0) gaps.push(gap);
    }
    if (gaps.length < options.minIntervalHistory) return [];
    expected = median(gaps);
    inferred = true;
  }
  if (expected <= 0) return [];
  const age = input.now - createdAt;
  const limit = options.staleFactor * expected;
  if (age <= limit) return [];
  return [{
    kind: "stale",
    level: inferred ? "info" : "warning",
    message: `Latest checkpoint ${latest.id} (seq ${latest.seq}) is ${
      formatDuration(age)
    } old, more than ${options.staleFactor}× the ${
      inferred ? "usual interval between checkpoints" : "expected interval"
    } of ${formatDuration(expected)}`,
    value: age,
    baseline: expected,
    limit,
  }];
}

/** An operation still open after `operationTimeoutMs`: likely left by a crash. */
export function orphanRule(
  input: DriftInput,
  options: ResolvedDriftOptions,
): DriftFinding[] {
  return input.openOperations
    .filter((op) => input.now - op.startedAt > options.operationTimeoutMs)
    .map((op) => ({
      kind: "orphaned_operation",
      level: "warning",
      message: `Operation "${op.name}" (${op.id}) has been open for ${
        formatDuration(input.now - op.startedAt)
      }, longer than ${
        formatDuration(options.operationTimeoutMs)
      }: complete it, or restore its pre_operation checkpoint if the agent crashed`,
      value: input.now - op.startedAt,
      limit: options.operationTimeoutMs,
    } satisfies DriftFinding));
}
