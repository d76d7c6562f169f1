// Retention as a pure, explainable plan: every checkpoint gets keep or
// trash and the reasons why, from (history, policy, now) alone.
//
// Invariants (each has a property test over random histories):
// 1. The newest checkpoint not known to be invalid is always kept.
// 2. A pre_operation checkpoint of an open operation is always kept.
// 3. At least `recoveryKeepAtLeast` recovery checkpoints are kept (when
//    that many exist).
// 4. Age is measured from the newest checkpoint by default, so an agent
//    that stopped long ago never ages out everything; a checkpoint dated
//    after the reference (clock skew) is never old.
// 5. Applying a plan and planning again trashes nothing more.

import { formatDuration } from "../retry/mod.ts";
import type { CheckpointType, OperationRecord } from "./types.ts";
import { CheckpointError } from "./errors.ts";

/**
 * What retention keeps. Every field is optional; the defaults are the
 * project's policy.
 *
 * @example Keep more routine checkpoints
 * ```ts
 * import { type RetentionPolicy, planRetention } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const policy: RetentionPolicy = { routineKeepLast: 5 };
 * const history = Array.from({ length: 6 }, (_, i) => ({
 *   id: `r${i + 1}`, seq: i + 1, type: "routine" as const, createdAt: i * 1000,
 * }));
 * assert.deepEqual(planRetention(history, policy, 10_000).trash, ["r1"]);
 * ```
 */
export interface RetentionPolicy {
  /**
   * How many of the newest routine checkpoints to keep.
   *
   * @default {3}
   */
  routineKeepLast?: number;
  /**
   * Keep recovery checkpoints (and those of failed or abandoned
   * operations) this many milliseconds old or younger.
   *
   * @default {604_800_000} (7 days)
   */
  recoveryKeepWithinMs?: number;
  /**
   * Keep at least this many recovery checkpoints, however old.
   *
   * @default {1}
   */
  recoveryKeepAtLeast?: number;
  /**
   * What ages are measured from: the newest checkpoint's time, so a
   * stopped agent never ages out everything, or the current time (for
   * erasure policies).
   *
   * @default {"newest"}
   */
  relativeTo?: "newest" | "now";
  /**
   * Trashed checkpoints older than this are deleted for good when
   * retention runs; `Infinity` keeps the trash until `purge()`.
   *
   * @default {86_400_000} (1 day)
   */
  trashTtlMs?: number;
  /**
   * Apply retention after every `create()`.
   *
   * @default {true}
   */
  auto?: boolean;
}

/** A {@linkcode RetentionPolicy} with every default filled in. */
export type ResolvedRetentionPolicy = Required<RetentionPolicy>;

/** One checkpoint as retention sees it. */
export interface RetentionCandidate {
  /** The checkpoint's id. */
  id: string;
  /** Its sequence number (higher is newer). */
  seq: number;
  /** Its type. */
  type: CheckpointType;
  /** When it was created: an ISO string or epoch milliseconds. */
  createdAt: string | number;
  /**
   * Whether it verifies: `false` when known bad; `undefined` when not
   * checked (taken as valid).
   */
  valid?: boolean;
  /** For a pre_operation checkpoint: its operation's id, name and status. */
  operation?: Pick<OperationRecord, "id" | "status"> & { name?: string };
}

/** What retention decided for one checkpoint. */
export interface RetentionDecision {
  /** The checkpoint's id. */
  id: string;
  /** Its sequence number. */
  seq: number;
  /** Its type. */
  type: CheckpointType;
  /** `keep`, or `trash` (moved to the trash folder, not deleted). */
  action: "keep" | "trash";
  /** Why: every rule that applied, e.g. `"one of the last 3 routine"`. */
  reasons: string[];
}

/** A retention plan: a decision for every checkpoint, newest first. */
export interface RetentionPlan {
  /** When it was planned (epoch milliseconds). */
  at: number;
  /** The time ages were measured from (epoch milliseconds). */
  reference: number;
  /** The policy used, defaults filled in. */
  policy: ResolvedRetentionPolicy;
  /** Every checkpoint, newest first. */
  decisions: RetentionDecision[];
  /** Ids kept, newest first. */
  keep: string[];
  /** Ids to trash, newest first. */
  trash: string[];
}

const DAY = 86_400_000;

/**
 * Fills in a policy's defaults and checks its numbers.
 *
 * @param policy The policy given.
 * @returns The policy with every field set.
 *
 * @example Defaults
 * ```ts
 * import { resolveRetentionPolicy } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveRetentionPolicy().routineKeepLast, 3);
 * assert.equal(resolveRetentionPolicy({ routineKeepLast: 1 }).routineKeepLast, 1);
 * ```
 */
export function resolveRetentionPolicy(
  policy?: RetentionPolicy,
): ResolvedRetentionPolicy {
  const resolved: ResolvedRetentionPolicy = {
    routineKeepLast: policy?.routineKeepLast ?? 3,
    recoveryKeepWithinMs: policy?.recoveryKeepWithinMs ?? 7 * DAY,
    recoveryKeepAtLeast: policy?.recoveryKeepAtLeast ?? 1,
    relativeTo: policy?.relativeTo ?? "newest",
    trashTtlMs: policy?.trashTtlMs ?? DAY,
    auto: policy?.auto ?? true,
  };
  const counts = ["routineKeepLast", "recoveryKeepAtLeast"] as const;
  for (const key of counts) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 0) {
      throw new CheckpointError(
        `Invalid retention ${key} ${
          resolved[key]
        }: use a whole number, 0 or more`,
        { code: "invalid_option" },
      );
    }
  }
  const spans = ["recoveryKeepWithinMs", "trashTtlMs"] as const;
  for (const key of spans) {
    if (!(resolved[key] >= 0)) {
      throw new CheckpointError(
        `Invalid retention ${key} ${
          resolved[key]
        }: use milliseconds, 0 or more (Infinity allowed)`,
        { code: "invalid_option" },
      );
    }
  }
  if (resolved.relativeTo !== "newest" && resolved.relativeTo !== "now") {
    throw new CheckpointError(
      `Invalid retention relativeTo ${
        JSON.stringify(resolved.relativeTo)
      }: use "newest" or "now"`,
      { code: "invalid_option" },
    );
  }
  return resolved;
}

/** A duration for reasons: days when a day or more, else as formatDuration. */
function span(ms: number): string {
  return ms >= DAY && Number.isFinite(ms)
    ? `${Number((ms / DAY).toFixed(1))}d`
    : formatDuration(ms);
}

function timeOf(createdAt: string | number): number {
  const t = typeof createdAt === "number" ? createdAt : Date.parse(createdAt);
  return Number.isFinite(t) ? t : NaN;
}

/**
 * Decides which checkpoints to keep and which to trash, and says why. A
 * pure function: the same history, policy and time give the same plan.
 *
 * @param history Every live checkpoint of one agent, in any order.
 * @param policy The retention policy; defaults fill the gaps.
 * @param now The current time (epoch milliseconds); used for ages only
 *   with `relativeTo: "now"`.
 * @returns A decision with reasons for every checkpoint, newest first.
 *
 * @example An open operation's checkpoint is pinned
 * ```ts
 * import { planRetention } from "@sturdy/sturdy/checkpoint";
 * import assert from "node:assert/strict";
 *
 * const plan = planRetention([
 *   { id: "p1", seq: 1, type: "pre_operation", createdAt: 0, operation: { id: "op-1", status: "open" } },
 *   { id: "p2", seq: 2, type: "pre_operation", createdAt: 1, operation: { id: "op-2", status: "succeeded" } },
 *   { id: "r3", seq: 3, type: "routine", createdAt: 2 },
 * ], {}, 10);
 * assert.deepEqual(plan.keep, ["r3", "p1"]);
 * assert.deepEqual(plan.trash, ["p2"]);
 * assert.match(plan.decisions[2]!.reasons[0]!, /pinned: operation op-1 is open/);
 * ```
 */
export function planRetention(
  history: readonly RetentionCandidate[],
  policy: RetentionPolicy | undefined,
  now: number,
): RetentionPlan {
  const p = resolveRetentionPolicy(policy);
  const sorted = [...history].sort((a, b) => b.seq - a.seq);
  const newestValid = sorted.find((c) => c.valid !== false);
  // The newest valid checkpoint is always kept, so measuring from its time
  // gives the same reference after the plan is applied (idempotence).
  // (When every checkpoint is known bad, the newest readable time serves.)
  const anchor = [newestValid, ...sorted].find((c) =>
    c !== undefined && !Number.isNaN(timeOf(c.createdAt))
  );
  const reference = p.relativeTo === "now" || !anchor
    ? now
    : timeOf(anchor.createdAt);
  const window = span(p.recoveryKeepWithinMs);
  let routineRank = 0;
  let recoveryRank = 0;

  const decisions = sorted.map((c): RetentionDecision => {
    const keep: string[] = [];
    const drop: string[] = [];
    if (c === newestValid) keep.push("newest valid checkpoint");
    if (c.valid === false) drop.push("fails verification");
    const t = timeOf(c.createdAt);
    const age = reference - t;
    const withinWindow = (what: string): void => {
      if (Number.isNaN(t)) {
        keep.push(`${what}: unreadable creation time, never treated as old`);
      } else if (age < 0) {
        keep.push(
          `${what}: dated after the reference time (clock skew), never treated as old`,
        );
      } else if (age <= p.recoveryKeepWithinMs) {
        keep.push(
          `${what} within ${window} of ${p.relativeTo} (age ${span(age)})`,
        );
      } else {
        drop.push(`${what} older than ${window} (age ${span(age)})`);
      }
    };
    switch (c.type) {
      case "routine": {
        if (c.valid !== false) {
          routineRank++;
          if (routineRank <= p.routineKeepLast) {
            keep.push(
              `one of the last ${p.routineKeepLast} routine (#${routineRank})`,
            );
          } else {
            drop.push(`routine beyond the last ${p.routineKeepLast}`);
          }
        }
        break;
      }
      case "recovery": {
        recoveryRank++;
        withinWindow("recovery");
        if (recoveryRank <= p.recoveryKeepAtLeast) {
          keep.push(
            `one of the newest ${p.recoveryKeepAtLeast} recovery (keep at least ${p.recoveryKeepAtLeast})`,
          );
        }
        break;
      }
      case "pre_operation": {
        const op = c.operation;
        const named = op
          ? `operation ${op.id}${op.name ? ` (${op.name})` : ""}`
          : "";
        if (!op) {
          withinWindow(
            "pre_operation with no operation record, kept as recovery evidence",
          );
        } else if (op.status === "open") {
          keep.push(`pinned: ${named} is open`);
        } else if (op.status === "succeeded") {
          drop.push(
            `${named} succeeded: its pre_operation checkpoint is no longer needed`,
          );
        } else {
          withinWindow(`${named} ${op.status}: kept as a recovery checkpoint`);
        }
        break;
      }
    }
    const action = keep.length > 0 ? "keep" : "trash";
    return {
      id: c.id,
      seq: c.seq,
      type: c.type,
      action,
      reasons: action === "keep" ? keep : drop,
    };
  });
  return {
    at: now,
    reference,
    policy: p,
    decisions,
    keep: decisions.filter((d) => d.action === "keep").map((d) => d.id),
    trash: decisions.filter((d) => d.action === "trash").map((d) => d.id),
  };
}
