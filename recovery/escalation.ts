import type { DecisionRecord, ErrorRecord } from "./types.ts";

/** How a person resolved an escalation. */
export type ResolutionAction = "retry" | "skip" | "rollback" | "fail";

/** Every {@linkcode ResolutionAction}. */
export const RESOLUTION_ACTIONS: readonly ResolutionAction[] = Object.freeze([
  "retry",
  "skip",
  "rollback",
  "fail",
]);

/** A person's answer to an escalation. */
export interface Resolution {
  /** What to do with the task. */
  action: ResolutionAction;
  /** Who resolved it, e.g. `"cli:alice"`. */
  by: string;
  /** When (epoch ms). */
  at: number;
  /** Their note, redacted. */
  note?: string;
}

/**
 * An escalation, `<root>/recovery/escalations/<task>.json`, written
 * atomically. `manual` asks a person and a running task waits for the
 * answer; `escalation` hands the task over and the task stops. An open
 * escalation is never deleted automatically.
 */
export interface Escalation {
  /** Format marker. */
  format: "sturdy.escalation/1";
  /** Its id: `esc-<task>-<execution>`. */
  id: string;
  /** `manual` (someone must answer) or `escalation` (someone must act). */
  type: "manual" | "escalation";
  /** `open` until resolved. */
  status: "open" | "resolved";
  /** The task's id. */
  taskId: string;
  /** When written (epoch ms). */
  createdAt: number;
  /** When last changed (epoch ms). */
  updatedAt: number;
  /** One line: what failed, how often, with what. */
  summary: string;
  /** For `manual`: the question. */
  prompt?: string;
  /** The last error, with its cause chain. */
  error?: ErrorRecord;
  /** Runs made. */
  attempts: number;
  /** Every decision taken, oldest first. */
  timeline: DecisionRecord[];
  /** Commands that resolve it. */
  suggested: string[];
  /** The answer, once resolved. */
  resolution?: Resolution;
}
