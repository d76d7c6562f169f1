// Drift detection: explainable rules over what the manager has gathered
// (the latest and previous checkpoints, their history, recorded metrics,
// open operations). No learning and no hidden state: the same input gives
// the same report, and every finding names what changed and by how much.

import {
  metricRule,
  orphanRule,
  type ResolvedDriftOptions,
  sizeRule,
  stalenessRule,
  structureRule,
  validationRule,
  verificationRule,
} from "./_drift_rules.ts";
import type { CheckpointRef } from "./types.ts";

/** Everything drift rules look at, gathered by the manager (or a test). */
export interface DriftInput {
  /** The time of the evaluation, in ms since the epoch. */
  now: number;
  /** The newest checkpoint, whether it verified, and its state if it did. */
  latest?: {
    ref: CheckpointRef;
    verified: boolean;
    reason?: string;
    state?: unknown;
    valid?: boolean;
    validationError?: string;
  };
  /** The checkpoint before the latest, to compare structure against. */
  previous?: { ref: CheckpointRef; state?: unknown };
  /** Checkpoints, newest first (sizes and intervals). */
  history: CheckpointRef[];
  /** Recorded metrics, oldest first. */
  metrics: Array<{ name: string; value: number; at: number }>;
  /** Operations begun and not completed. */
  openOperations: Array<{ id: string; name: string; startedAt: number }>;
  /** How often checkpoints are meant to be taken, for staleness. */
  expectedIntervalMs?: number;
}

/** How bad a finding is; a report's level is its worst finding's. */
export type DriftLevel = "info" | "warning" | "critical";

/** One thing that changed, with the numbers it was judged on. */
export interface DriftFinding {
  /**
   * What rule found it: `verification_failed`, `validation_failed`,
   * `key_removed`, `type_changed`, `structure_truncated`, `size_jump`,
   * `metric_anomaly`, `stale`, `no_checkpoints`, `orphaned_operation`,
   * `detector_failed`, or a custom detector's own kind.
   */
  kind: string;
  /** `warning` and `critical` findings make the report `drifted`. */
  level: DriftLevel;
  /** What changed and by how much, in one sentence. */
  message: string;
  /** The observed value. */
  value?: unknown;
  /** What it was compared with. */
  baseline?: unknown;
  /** The threshold it crossed. */
  limit?: unknown;
  /** The state path, for structural findings (`config.retries`). */
  path?: string;
  /** The metric's name, for metric findings. */
  metric?: string;
}

/** The outcome of a drift evaluation. */
export interface DriftReport {
  /** Whether any finding is a warning or worse. */
  drifted: boolean;
  /** The worst finding's level, or `"none"`. */
  level: "none" | DriftLevel;
  /** Every finding, worst first (rule order within a level). */
  findings: DriftFinding[];
}

/**
 * A custom rule. It may be async; if it throws or returns something other
 * than an array, the report gets a `detector_failed` finding instead.
 */
export type DriftDetector = (
  input: DriftInput,
) => DriftFinding[] | Promise<DriftFinding[]>;

/** The names of the built-in rules, for {@linkcode DriftOptions.disable}. */
export type DriftRule =
  | "verification"
  | "validation"
  | "structure"
  | "size"
  | "metrics"
  | "staleness"
  | "operations";

/** Thresholds of the built-in rules. */
export interface DriftOptions {
  /**
   * How many object levels the structure rule walks; deeper values compare
   * by type only.
   *
   * @default {3}
   */
  structureDepth?: number;
  /**
   * At most this many structural findings are listed; the rest are counted
   * in one `structure_truncated` finding.
   *
   * @default {20}
   */
  maxStructureFindings?: number;
  /**
   * A payload this many times larger, or smaller, than the median of the
   * recent ones is a `size_jump`.
   *
   * @default {3}
   */
  sizeJumpRatio?: number;
  /**
   * How many earlier checkpoints the size median (and the inferred
   * interval) is taken over.
   *
   * @default {10}
   */
  sizeWindow?: number;
  /**
   * The size rule waits for this many earlier checkpoints.
   *
   * @default {3}
   */
  minSizeHistory?: number;
  /**
   * How many earlier values of a metric form its baseline.
   *
   * @default {50}
   */
  metricWindow?: number;
  /**
   * A metric is judged only once it has this many earlier values.
   *
   * @default {10}
   */
  minMetricHistory?: number;
  /**
   * The EWMA chart's smoothing weight λ (0 < λ ≤ 1).
   *
   * @default {0.2}
   */
  ewmaLambda?: number;
  /**
   * The EWMA chart's band half-width, in σ (L).
   *
   * @default {3}
   */
  ewmaWidth?: number;
  /**
   * The modified z-score beyond which a metric value is an outlier.
   *
   * @default {3.5}
   */
  robustZLimit?: number;
  /**
   * How often checkpoints are meant to be taken, when the input does not
   * say. Without either, the median gap between recent checkpoints is used
   * and a stale finding is only `info`.
   *
   * @default {undefined}
   */
  expectedIntervalMs?: number;
  /**
   * The latest checkpoint is stale when older than this many expected
   * intervals.
   *
   * @default {3}
   */
  staleFactor?: number;
  /**
   * An interval is inferred only from at least this many gaps.
   *
   * @default {3}
   */
  minIntervalHistory?: number;
  /**
   * An operation open longer than this is reported as orphaned.
   *
   * @default {3_600_000 (1 hour)}
   */
  operationTimeoutMs?: number;
  /**
   * Built-in rules to skip.
   *
   * @default {[]}
   */
  disable?: DriftRule[];
  /**
   * Custom rules, run after the built-in ones, in order.
   *
   * @default {[]}
   */
  detectors?: DriftDetector[];
}

const LEVEL_RANK = { none: 0, info: 1, warning: 2, critical: 3 } as const;

function resolve(options: DriftOptions): ResolvedDriftOptions {
  const positive = (value: number | undefined, name: string, d: number) => {
    const v = value ?? d;
    if (!(v > 0)) {
      throw new RangeError(
        `Invalid drift option ${name} ${v}: use a number above 0`,
      );
    }
    return v;
  };
  const lambda = positive(options.ewmaLambda, "ewmaLambda", 0.2);
  if (lambda > 1) {
    throw new RangeError(
      `Invalid drift option ewmaLambda ${lambda}: use a number in (0, 1]`,
    );
  }
  const ratio = positive(options.sizeJumpRatio, "sizeJumpRatio", 3);
  if (ratio <= 1) {
    throw new RangeError(
      `Invalid drift option sizeJumpRatio ${ratio}: use a number above 1`,
    );
  }
  return {
    structureDepth: positive(options.structureDepth, "structureDepth", 3),
    maxStructureFindings: positive(
      options.maxStructureFindings,
      "maxStructureFindings",
      20,
    ),
    sizeJumpRatio: ratio,
    sizeWindow: positive(options.sizeWindow, "sizeWindow", 10),
    minSizeHistory: positive(options.minSizeHistory, "minSizeHistory", 3),
    metricWindow: positive(options.metricWindow, "metricWindow", 50),
    minMetricHistory: positive(
      options.minMetricHistory,
      "minMetricHistory",
      10,
    ),
    ewmaLambda: lambda,
    ewmaWidth: positive(options.ewmaWidth, "ewmaWidth", 3),
    robustZLimit: positive(options.robustZLimit, "robustZLimit", 3.5),
    expectedIntervalMs: options.expectedIntervalMs === undefined
      ? undefined
      : positive(options.expectedIntervalMs, "expectedIntervalMs", 1),
    staleFactor: positive(options.staleFactor, "staleFactor", 3),
    minIntervalHistory: positive(
      options.minIntervalHistory,
      "minIntervalHistory",
      3,
    ),
    operationTimeoutMs: positive(
      options.operationTimeoutMs,
      "operationTimeoutMs",
      3_600_000,
    ),
  };
}

const RULES: Array<
  [DriftRule, (input: DriftInput, o: ResolvedDriftOptions) => DriftFinding[]]
> = [
  ["verification", verificationRule],
  ["validation", validationRule],
  ["structure", structureRule],
  ["size", sizeRule],
  ["metrics", metricRule],
  ["staleness", stalenessRule],
  ["operations", orphanRule],
];

/**
 * Evaluates the built-in drift rules, then each custom detector, over
 * `input`. It is pure: time comes from `input.now`, and nothing is read or
 * written. The rules are:
 * - the latest checkpoint fails verification, or its state fails
 *   validation (critical);
 * - keys removed or types changed against the previous checkpoint, as
 *   paths like `config.retries: number → string` (warning);
 * - the payload size jumped by `sizeJumpRatio` either way against the
 *   median of recent checkpoints (warning);
 * - a metric's latest value is outside its EWMA band or beyond the robust
 *   z-score limit (warning; critical when both);
 * - the latest checkpoint is older than `staleFactor` expected intervals
 *   (warning; info when the interval is only inferred);
 * - an operation has been open longer than `operationTimeoutMs` (warning).
 *
 * @param input What the rules look at; `CheckpointManager.detectDrift()`
 * gathers it from disk.
 * @param options Thresholds, rules to skip, and custom detectors.
 * @returns The findings, worst first, with the overall level; `drifted` is
 * true when any finding is a warning or worse.
 * @throws {RangeError} When a threshold is not a positive number.
 *
 * @example Report a retyped key and a failing custom detector
 * ```ts
 * import { evaluateDrift } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const ref = (seq: number) => ({
 *   id: `ck-${seq}`, seq, type: "routine" as const, path: `ck-${seq}`,
 *   createdAt: new Date(seq * 1000).toISOString(), bytes: 100, sha256: "",
 *   encoding: "json" as const, stateBytes: 100, stateVersion: 1,
 * });
 * const report = await evaluateDrift({
 *   now: 3000,
 *   latest: { ref: ref(2), verified: true, state: { config: { retries: "3" } } },
 *   previous: { ref: ref(1), state: { config: { retries: 3 } } },
 *   history: [ref(2), ref(1)],
 *   metrics: [],
 *   openOperations: [],
 * }, { detectors: [() => { throw new Error("no network"); }] });
 *
 * assert.equal(report.drifted, true);
 * assert.deepEqual(report.findings.map((f) => f.kind), ["type_changed", "detector_failed"]);
 * assert.match(report.findings[0]!.message, /^config\.retries: number → string/);
 * ```
 */
export async function evaluateDrift(
  input: DriftInput,
  options: DriftOptions = {},
): Promise<DriftReport> {
  const resolved = resolve(options);
  const disabled = new Set(options.disable ?? []);
  const findings: DriftFinding[] = [];
  for (const [name, rule] of RULES) {
    if (!disabled.has(name)) findings.push(...rule(input, resolved));
  }
  const detectors = options.detectors ?? [];
  for (const [i, detector] of detectors.entries()) {
    findings.push(...await runDetector(detector, i, input));
  }
  // Stable: rule order is kept within a level.
  findings.sort((a, b) => LEVEL_RANK[b.level] - LEVEL_RANK[a.level]);
  const level = findings[0]?.level ?? "none";
  return {
    drifted: LEVEL_RANK[level] >= LEVEL_RANK.warning,
    level,
    findings,
  };
}

/** Runs one custom detector; a throw or a malformed result becomes a finding. */
async function runDetector(
  detector: DriftDetector,
  index: number,
  input: DriftInput,
): Promise<DriftFinding[]> {
  const name = detector.name ? `"${detector.name}"` : `#${index + 1}`;
  const failed = (why: string): DriftFinding[] => [{
    kind: "detector_failed",
    level: "warning",
    message: `Drift detector ${name} failed: ${why}`,
    value: why,
  }];
  let result: unknown;
  try {
    result = await detector(input);
  } catch (err) {
    return failed(err instanceof Error ? err.message : String(err));
  }
  if (!Array.isArray(result)) {
    return failed(`it returned ${typeName(result)}, not an array of findings`);
  }
  const bad = result.find((f) => !isFinding(f));
  if (bad !== undefined) {
    return failed(
      `it returned ${
        JSON.stringify(bad) ?? String(bad)
      }, which is not a finding (needs kind, level info|warning|critical, message)`,
    );
  }
  return result as DriftFinding[];
}

function typeName(value: unknown): string {
  return value === null ? "null" : typeof value;
}

function isFinding(value: unknown): value is DriftFinding {
  if (typeof value !== "object" || value === null) return false;
  const f = value as Record<string, unknown>;
  return typeof f.kind === "string" && typeof f.message === "string" &&
    typeof f.level === "string" && Object.hasOwn(LEVEL_RANK, f.level) &&
    f.level !== "none";
}
