// The agent's journal: one JSON line per event (create, restore, fallback,
// quarantine, poisoned, prune, trash, purge, undelete, operation events),
// appended through fs/. Events that record evidence of damage are synced;
// routine ones are left to the OS: losing the last routine line in a power
// cut loses no state (the checkpoint file itself is durable) and saves an
// fsync on every create.

import { appendJsonl, isNotFound, readJsonl } from "../fs/mod.ts";
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

  /** Appends one event. */
  async append(
    event: JournalEventKind,
    fields: Omit<JournalEvent, "at" | "event"> = {},
  ): Promise<void> {
    const record: JournalEvent = {
      at: new Date(this.#clock.now()).toISOString(),
      event,
      ...fields,
    };
    await appendJsonl(this.#path, record, {
      durability: SYNCED.has(event) ? "durable" : "none",
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
