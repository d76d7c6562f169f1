import type { Clock } from "../retry/mod.ts";
import type { LockKind } from "../lock/mod.ts";
import type { DriftDetector, DriftOptions } from "./drift.ts";
import type { RetentionPolicy } from "./retention.ts";
import type { CheckpointStore } from "./store.ts";
import type {
  CheckpointRef,
  StandardSchemaLike,
  StateValidator,
} from "./types.ts";

/**
 * Options of {@linkcode CheckpointManager}: only `agentId` is required.
 *
 * @example A manager that validates and migrates
 * ```ts
 * import { type CheckpointManagerOptions, openCheckpoints } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const options: CheckpointManagerOptions<{ step: number }> = {
 *   agentId: "planner",
 *   root,
 *   stateVersion: 2,
 *   migrate: (state) => ({ step: (state as { n: number }).n }),
 *   validate: (state) => Number.isInteger(state.step) || "step must be an integer",
 * };
 * await using checkpoints = await openCheckpoints(options);
 * await checkpoints.create("routine", { state: { step: 3 } });
 * assert.equal((await checkpoints.restore()).state.step, 3);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export interface CheckpointManagerOptions<S> {
  /**
   * The agent whose checkpoints these are: 1-117 characters of
   * `[A-Za-z0-9._-]`, not `.` or `..`. Files live under
   * `<root>/checkpoints/<agentId>/` and nowhere else.
   */
  agentId: string;
  /**
   * The Sturdy root directory.
   *
   * @default {".sturdy"}
   */
  root?: string;
  /**
   * Returns the agent's current state, for `create()` without a `state`,
   * `beginOperation()` without one, and `autoCheckpoint()`.
   *
   * @default {undefined}
   */
  collect?: () => S | Promise<S>;
  /**
   * Receives a restored state (after it is counted for poison detection).
   *
   * @default {undefined}
   */
  apply?: (state: S, ref: CheckpointRef) => void | Promise<void>;
  /**
   * What retention keeps.
   *
   * @default {{}} (routine: last 3; recovery: 7 days; pre_operation: until completed)
   */
  retention?: RetentionPolicy;
  /**
   * Checks a state before it is saved and after it is restored.
   *
   * @default {undefined}
   */
  validate?: StateValidator<S>;
  /**
   * A Standard Schema (Zod, Valibot, ArkType…) checked like `validate`;
   * on restore its output value is the state returned.
   *
   * @default {undefined}
   */
  schema?: StandardSchemaLike<S>;
  /**
   * The version of the state's shape, stored in every checkpoint. A
   * checkpoint with a lower version is passed through `migrate`.
   *
   * @default {1}
   */
  stateVersion?: number;
  /**
   * Upgrades a state saved with an older `stateVersion`; returns the state
   * in the current shape. A throw makes restore fall back.
   *
   * @default {undefined}
   */
  migrate?: (state: unknown, fromVersion: number) => unknown;
  /**
   * How payloads are stored: `"json"`, `"gzip"`, or `"auto"` (gzip when
   * the JSON is larger than `autoGzipBytes`).
   *
   * @default {"json"}
   */
  encoding?: "json" | "gzip" | "auto";
  /**
   * The size above which `encoding: "auto"` compresses, in bytes.
   *
   * @default {1_048_576}
   */
  autoGzipBytes?: number;
  /**
   * The largest state accepted, as JSON bytes; larger is `too_large`.
   *
   * @default {67_108_864} (64 MiB)
   */
  maxBytes?: number;
  /**
   * The time source, for creation times, retention and autoCheckpoint.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Where checkpoint files live.
   *
   * @default {new FileCheckpointStore(<root>/checkpoints/<agentId>)}
   */
  store?: CheckpointStore;
  /**
   * Custom drift detectors, run after the built-in rules.
   *
   * @default {[]}
   */
  detectors?: DriftDetector[];
  /**
   * Thresholds of the built-in drift rules.
   *
   * @default {{}}
   */
  drift?: DriftOptions;
  /**
   * How often checkpoints are expected, for the staleness rule; set
   * automatically by `autoCheckpoint()`.
   *
   * @default {undefined}
   */
  expectedIntervalMs?: number;
  /**
   * Restores of one checkpoint, without the agent proving healthy in
   * between, after which it is poisoned and skipped.
   *
   * @default {3}
   */
  poisonAfter?: number;
  /**
   * Milliseconds to wait for the agent's lock.
   *
   * @default {30_000}
   */
  lockTimeout?: number;
  /**
   * The agent lock's mechanism (see lock/).
   *
   * @default {"dir"}
   */
  lockKind?: LockKind;
}
