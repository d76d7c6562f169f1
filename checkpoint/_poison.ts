// Poison detection: how often each checkpoint was restored since the agent
// last proved healthy, kept beside the checkpoints so it survives the
// crashes it is counting. Two files:
//
//   restores.json   the base: counts folded in so far, the poisoned ids,
//                   and `epoch`, a random id naming the count lines that
//                   belong to this base (format sturdy.restores/1)
//   restores.jsonl  one line per restore, {"epoch","id","at"}, appended
//
// A checkpoint's count is its count in the base plus the lines of the
// base's epoch. A restore appends one line (one write, a few microseconds)
// instead of rewriting the base (a temp file and a rename, which is what
// made a restore's bookkeeping cost more than its checksum).
//
// Invariants:
// - The count line is written before the state is handed to the agent,
//   so a process that crashes while applying it, even by kill -9, has
//   been counted (the line is in the page cache, which a process crash
//   keeps). It is not synced: poison detection counts process crashes; a
//   power cut may lose the newest line, which only delays detection by
//   one restore.
// - Marking a checkpoint poisoned and clearing the counts (the agent
//   proved healthy) fold: under the agent lock, a new base with a fresh
//   epoch is written with a durable atomic replace, so a power cut cannot
//   undo it, and only then is the log removed. Lines of any other epoch
//   never count, so a crash between the two steps, or a removal undone by
//   a power cut, changes nothing.
// - A restore that passes its checks counts without the agent lock, so a
//   line may be written against an epoch a fold has just replaced (or
//   into a log being removed): that restore goes uncounted. Either way
//   detection moves by one restore, never skips a poisoned checkpoint for
//   good. A checkpoint restored `poisonAfter` times without a healthy
//   sign in between is poisoned: skipped from then on (not deleted) and
//   listed in `poisoned`, which a healthy sign does not clear.
// - Old files: a base without `epoch` (written before the log existed) is
//   read as epoch "" and counts lines written against it the same way.

import { appendJsonl, writeJson } from "../fs/mod.ts";
import { parseLines, readSmallSync } from "./_read_small.ts";

const FORMAT = "sturdy.restores/1";

/**
 * The log grows between folds (a healthy sign, a poisoning); past this
 * size, a create or a restore that can take the agent lock at once folds
 * it, so reading it stays cheap.
 */
const FOLD_LOG_BYTES = 65_536;

/** Restore counts of one checkpoint. */
export interface RestoreCount {
  count: number;
  firstAt: number;
  lastAt: number;
}

/** The counts and poisoned ids as they stand. */
export interface RestoreMarks {
  counts: Record<string, RestoreCount>;
  poisoned: Record<string, { at: number; count: number }>;
}

interface RestoresFile extends RestoreMarks {
  format: typeof FORMAT;
  epoch?: string;
}

/** The marks as read, with what a count line needs. */
export interface LoadedMarks extends RestoreMarks {
  /** The base's epoch, which a count line names. */
  epoch: string;
  /** The log's size. */
  logBytes: number;
}

/** Reads and updates the restore counts; folds run under the agent lock. */
export class RestoreMarkers {
  readonly #path: string;
  readonly #log: string;

  constructor(path: string) {
    this.#path = path;
    this.#log = path.replace(/\.json$/, "") + ".jsonl";
  }

  /** The counts and poisoned ids (empty when missing or unreadable). */
  load(): LoadedMarks {
    const base = this.#base();
    const epoch = base.epoch ?? "";
    const counts: Record<string, RestoreCount> = { ...base.counts };
    const log = readSmallSync(this.#log);
    for (const line of log ? parseLines(log) : []) {
      const { epoch: of, id, at } = line as Record<string, unknown>;
      if (of !== epoch || typeof id !== "string" || typeof at !== "number") {
        continue;
      }
      const previous = counts[id];
      counts[id] = {
        count: (previous?.count ?? 0) + 1,
        firstAt: previous?.firstAt ?? at,
        lastAt: at,
      };
    }
    return {
      counts,
      poisoned: base.poisoned,
      epoch,
      logBytes: log?.byteLength ?? 0,
    };
  }

  #base(): RestoresFile {
    try {
      const bytes = readSmallSync(this.#path);
      if (bytes) {
        const data = JSON.parse(new TextDecoder().decode(bytes));
        if (
          data?.format === FORMAT && isRecord(data.counts) &&
          isRecord(data.poisoned) &&
          (data.epoch === undefined || typeof data.epoch === "string")
        ) {
          return data;
        }
      }
    } catch (err) {
      // A damaged marker file must not block restores: start over.
      if (!(err instanceof SyntaxError)) throw err;
    }
    return { format: FORMAT, counts: {}, poisoned: {} };
  }

  /**
   * Counts one more restore of `id` against `marks` (as just loaded, else
   * read now); returns the new count and whether the log has grown past
   * the size a fold should take it back from.
   */
  async record(
    id: string,
    now: number,
    marks: LoadedMarks = this.load(),
  ): Promise<{ count: number; foldDue: boolean }> {
    const line = { epoch: marks.epoch, id, at: now };
    await appendJsonl(this.#log, line, { durability: "none" });
    return {
      count: (marks.counts[id]?.count ?? 0) + 1,
      foldDue: marks.logBytes > FOLD_LOG_BYTES,
    };
  }

  /** Marks `id` poisoned for good. */
  async poison(id: string, now: number, count: number): Promise<void> {
    const marks = this.load();
    marks.poisoned[id] = { at: now, count };
    await this.#fold(marks);
  }

  /**
   * Forgets restore counts (the agent proved healthy); keeps poisoned ids.
   * Returns whether there was anything to forget.
   */
  async clearCounts(): Promise<boolean> {
    const marks = this.load();
    if (Object.keys(marks.counts).length === 0) {
      // Nothing counted; a log of other epochs' lines only is dropped
      // once it grows.
      if (marks.logBytes > FOLD_LOG_BYTES) await this.#fold(marks);
      return false;
    }
    marks.counts = {};
    await this.#fold(marks);
    return true;
  }

  /**
   * Folds a log that has grown large into the base, keeping every count.
   * Call under the agent lock.
   */
  async compact(): Promise<void> {
    const marks = this.load();
    if (marks.logBytes > FOLD_LOG_BYTES) await this.#fold(marks);
  }

  /** Writes `marks` as the new base with a fresh epoch, then drops the log. */
  async #fold(marks: RestoreMarks): Promise<void> {
    const epoch = Array.from(
      crypto.getRandomValues(new Uint8Array(8)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await writeJson(
      this.#path,
      {
        format: FORMAT,
        counts: marks.counts,
        poisoned: marks.poisoned,
        epoch,
      } satisfies RestoresFile,
    );
    try {
      Deno.removeSync(this.#log);
    } catch {
      // Missing, or left for the next fold: its lines are of an older
      // epoch now and count for nothing.
    }
  }
}

function isRecord(value: unknown): value is Record<string, never> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
