// The operations ledger, `operations.json`: every open operation and the
// most recent completed ones. Retention reads it to pin the checkpoint of
// an open operation; an operation still open after its process died (a
// crash) stays open here until someone completes it, so its checkpoint is
// never trashed and drift reports it.
//
// Invariant: an operation is recorded open (durably) before its
// pre_operation checkpoint is written, so a crash in between leaves an
// open operation without a checkpoint (reported), never an unpinned
// pre_operation checkpoint.

import { isNotFound, readJson, writeJson } from "../fs/mod.ts";
import type { OperationOutcome, OperationRecord } from "./types.ts";
import { readSmallSync } from "./_read_small.ts";

const FORMAT = "sturdy.operations/1";
/** Completed operations remembered (open ones are always kept). */
const KEEP_COMPLETED = 100;

interface LedgerFile {
  format: typeof FORMAT;
  operations: OperationRecord[];
}

/** Reads and updates `operations.json`; call writes under the agent lock. */
export class OperationLedger {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  /**
   * Every recorded operation, oldest first. Read with synchronous calls
   * (a create reads it under the agent lock; see _read_small.ts for why);
   * anything but a missing or well-formed file goes to fs/'s readJson,
   * which retries and reports a typed error.
   */
  async all(): Promise<OperationRecord[]> {
    try {
      const bytes = readSmallSync(this.#path);
      if (!bytes) return [];
      return operationsOf(JSON.parse(new TextDecoder().decode(bytes)));
    } catch { /* read again below, for the typed error */ }
    try {
      return operationsOf(await readJson<LedgerFile>(this.#path));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  async #save(operations: OperationRecord[]): Promise<void> {
    const completed = operations.filter((o) => o.status !== "open");
    const drop = new Set(
      completed.slice(0, Math.max(0, completed.length - KEEP_COMPLETED)),
    );
    await writeJson(
      this.#path,
      {
        format: FORMAT,
        operations: operations.filter((o) => !drop.has(o)),
      } satisfies LedgerFile,
    );
  }

  /** Records a new open operation. */
  async open(record: OperationRecord): Promise<void> {
    const operations = await this.all();
    operations.push(record);
    await this.#save(operations);
  }

  /**
   * Completes an operation; returns it, or `undefined` if unknown. An
   * operation already completed keeps its first outcome.
   */
  async complete(
    id: string,
    outcome: OperationOutcome,
    now: number,
  ): Promise<OperationRecord | undefined> {
    const operations = await this.all();
    const record = operations.find((o) => o.id === id);
    if (!record) return undefined;
    if (record.status !== "open") return record;
    record.status = outcome;
    record.endedAt = now;
    await this.#save(operations);
    return record;
  }
}

function operationsOf(data: LedgerFile | undefined): OperationRecord[] {
  return data?.format === FORMAT && Array.isArray(data.operations)
    ? data.operations
    : [];
}
