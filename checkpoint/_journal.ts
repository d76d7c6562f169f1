// The agent's journal: one JSON line per event (create, restore, fallback,
// quarantine, poisoned, prune, trash, purge, undelete, operation events).
// Events that record evidence of damage are synced; routine ones are left
// to the OS: losing the last routine line in a power cut loses no state
// (the checkpoint file itself is durable) and saves an fsync on every
// create. The journal is an audit log: nothing reads it to decide what to
// restore, keep or count.
//
// The lines of one call (a create's create, healthy, trash and prune
// events) are appended together with one write (fs/'s appendJsonlBatch), in the order
// they happened.

import { appendJsonlBatch, isNotFound, readJsonl } from "../fs/mod.ts";
import type { Clock } from "../retry/mod.ts";

/** The kinds of journal events. */
export type JournalEventKind =
  | "create"
  | "restore"
  | "fallback"
  | "quarantine"
  | "poisoned"
  | "prune"
  | "trash"
  | "purge"
  | "undelete"
  | "operation_begin"
  | "operation_complete"
  | "healthy";

/** One line of `journal.jsonl`. */
export interface JournalEvent {
  /** When, as an ISO 8601 string. */
  at: string;
  /** What happened. */
  event: JournalEventKind;
  /** The checkpoint concerned, if any. */
  id?: string;
  /** Why, for skips, quarantines and retention. */
  reason?: string;
  /** Further fields per event. */
  [field: string]: unknown;
}

const SYNCED: ReadonlySet<JournalEventKind> = new Set([
  "fallback",
  "quarantine",
  "poisoned",
  "operation_begin",
  "operation_complete",
]);

/** Appends to and reads one agent's journal file. */
export class Journal {
  readonly #path: string;
  readonly #clock: Clock;

  constructor(path: string, clock: Clock) {
    this.#path = path;
    this.#clock = clock;
  }

  get path(): string {
    return this.#path;
  }

  /** The line for one event, timed now. */
  record(
    event: JournalEventKind,
    fields: Omit<JournalEvent, "at" | "event"> = {},
  ): JournalEvent {
    return { at: new Date(this.#clock.now()).toISOString(), event, ...fields };
  }

  /** Appends one event. */
  append(
    event: JournalEventKind,
    fields: Omit<JournalEvent, "at" | "event"> = {},
  ): Promise<void> {
    return this.appendAll([this.record(event, fields)]);
  }

  /**
   * Appends events with one write, in order; synced when any of them is
   * an event that must survive a power cut.
   */
  async appendAll(records: readonly JournalEvent[]): Promise<void> {
    await appendJsonlBatch(this.#path, records, {
      durability: records.some((r) => SYNCED.has(r.event)) ? "durable" : "none",
    });
  }

  /** Reads the journal, oldest first; the newest `limit` when given. */
  async read(limit?: number): Promise<JournalEvent[]> {
    try {
      const { records } = await readJsonl<JournalEvent>(this.#path, {
        onCorrupt: "skip",
      });
      return limit === undefined ? records : records.slice(-limit);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }
}
