// Poison detection: how often each checkpoint was restored since the agent
// last proved healthy, kept in `restores.json` beside the checkpoints so
// it survives the crashes it is counting.
//
// Invariant: the count is written (atomically: temp file and rename)
// before the state is handed to the agent, so a process that crashes while
// applying it, even by kill -9, has been counted. The count is not synced
// to the device: poison detection counts process crashes, which keep the
// page cache; a power cut may lose the newest count, which only delays
// detection by one restore. Marking a checkpoint poisoned and clearing the
// counts are synced: neither may be undone by a power cut.
//
// A restore that passes its checks counts without the agent lock (a
// read-modify-write of this small file), so two processes restoring the
// same agent at the same instant may count once between them, and a
// count may land just after a routine create cleared the counts; either
// way detection moves by one restore, never skips a poisoned checkpoint
// for good. A checkpoint restored `poisonAfter` times without a healthy
// sign in between is poisoned: skipped from then on (not deleted) and
// listed in `poisoned`, which a healthy sign does not clear.

import { isNotFound, readJson, writeJson } from "../fs/mod.ts";

const FORMAT = "sturdy.restores/1";

/** Restore counts of one checkpoint. */
export interface RestoreCount {
  count: number;
  firstAt: number;
  lastAt: number;
}

interface RestoresFile {
  format: typeof FORMAT;
  counts: Record<string, RestoreCount>;
  poisoned: Record<string, { at: number; count: number }>;
}

/** Reads and updates `restores.json`; call under the agent lock. */
export class RestoreMarkers {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  /** The current file (empty when missing or unreadable). */
  async load(): Promise<RestoresFile> {
    try {
      const data = await readJson<RestoresFile>(this.#path);
      if (data?.format === FORMAT && data.counts && data.poisoned) return data;
    } catch (err) {
      // A damaged marker file must not block restores: start over.
      const code = (err as { code?: string }).code;
      if (
        !isNotFound(err) && code !== "invalid_json" && code !== "invalid_data"
      ) {
        throw err;
      }
    }
    return { format: FORMAT, counts: {}, poisoned: {} };
  }

  /**
   * Counts one more restore of `id`; returns the new count. `alongside`
   * runs with the new count while it is written (e.g. the journal line),
   * and both are done when this resolves.
   */
  async record(
    id: string,
    now: number,
    alongside?: (count: number) => Promise<void>,
  ): Promise<number> {
    const data = await this.load();
    const previous = data.counts[id];
    const count = (previous?.count ?? 0) + 1;
    data.counts[id] = {
      count,
      firstAt: previous?.firstAt ?? now,
      lastAt: now,
    };
    const written = writeJson(this.#path, data, {
      durability: "none",
      space: 0,
    });
    const side = alongside ? alongside(count) : Promise.resolve();
    const [a, b] = await Promise.allSettled([written, side]);
    if (a.status === "rejected") throw a.reason;
    if (b.status === "rejected") throw b.reason;
    return count;
  }

  /** Marks `id` poisoned for good. */
  async poison(id: string, now: number, count: number): Promise<void> {
    const data = await this.load();
    data.poisoned[id] = { at: now, count };
    await writeJson(this.#path, data);
  }

  /** Forgets restore counts (the agent proved healthy); keeps poisoned ids. */
  async clearCounts(): Promise<boolean> {
    const data = await this.load();
    if (Object.keys(data.counts).length === 0) return false;
    data.counts = {};
    // Synced: a clear lost to a power cut would bring back counts the
    // agent had earned its way out of.
    await writeJson(this.#path, data);
    return true;
  }
}
