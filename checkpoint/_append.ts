// Appending JSON lines to the agent's small logs (the journal, the restore
// counts) and reading small metadata files, with synchronous calls.
//
// Why synchronous: each async file call costs 50–100 µs of event-loop
// round trip on the machines measured, and an append through fs/'s
// appendJsonl is five of them (open, stat, read the last byte, write,
// close): 0.3–0.6 ms, against about 10 µs for the same system calls made
// synchronously. A create and a restore each make one such append, so
// this is the difference between bookkeeping that costs a tenth of a
// 1 MiB checkpoint and bookkeeping that costs nothing measurable. The
// price, as for lock/'s metadata steps: a file system that hangs blocks
// the event loop, not just the call. An fsync, which can take long, is
// still awaited asynchronously.
//
// Invariant (as fs/'s appendJsonl keeps it): every complete line in the
// file is one whole record. The lines of one call go down in a single
// write (looping only on a short write), and a torn last line left by a
// crash is cut off first, so it never glues onto a new record. Cutting
// and writing happen in one synchronous stretch, so no other append of
// this process can run in between. A failure before the lines are written
// falls back to appendJsonl, which retries transient errors and reports a
// typed error.

import { appendJsonl, FileWriteError } from "../fs/mod.ts";

const NEWLINE = 0x0a;
const encoder = new TextEncoder();

/**
 * Appends `records`, one JSON line each, with one write; with `durable`
 * the lines are synced to the device before this resolves.
 */
export async function appendRecords(
  path: string,
  records: readonly unknown[],
  durable: boolean,
): Promise<void> {
  if (records.length === 0) return;
  // JSON.stringify escapes every newline inside strings, so each record
  // is exactly one line.
  const bytes = encoder.encode(
    records.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path, { read: true, append: true, create: true });
    cutTornTail(file);
    let written = 0;
    while (written < bytes.length) {
      const n = file.writeSync(bytes.subarray(written));
      if (n <= 0) throw new Error("short write");
      written += n;
    }
  } catch {
    file?.close();
    // The robust path: retries, cuts whatever part of a line got written,
    // and throws a typed error.
    for (const record of records) {
      await appendJsonl(path, record, {
        durability: durable ? "durable" : "none",
      });
    }
    return;
  }
  try {
    if (durable) {
      try {
        await file.syncData();
      } catch (err) {
        throw new FileWriteError(
          `Cannot write "${path}": flushing the appended lines to the device failed; they may be lost after a crash (check the device)`,
          { code: "sync_failed", path, operation: "appendJsonl", cause: err },
        );
      }
    }
  } finally {
    file.close();
  }
}

/** Cuts off a torn last line (no final newline), read back from the end. */
function cutTornTail(file: Deno.FsFile): void {
  let end = file.statSync().size;
  if (end === 0) return;
  // The common case: the file ends with a newline. One byte tells.
  const last = new Uint8Array(1);
  file.seekSync(end - 1, Deno.SeekMode.Start);
  if (file.readSync(last) === 1 && last[0] === NEWLINE) return;
  const buffer = new Uint8Array(1 << 16);
  while (end > 0) {
    const start = Math.max(0, end - buffer.length);
    file.seekSync(start, Deno.SeekMode.Start);
    const chunk = buffer.subarray(0, end - start);
    let got = 0;
    while (got < chunk.length) {
      const n = file.readSync(chunk.subarray(got));
      if (n === null) break;
      got += n;
    }
    const at = chunk.subarray(0, got).lastIndexOf(NEWLINE);
    if (at !== -1) return file.truncateSync(start + at + 1);
    end = start;
  }
  file.truncateSync(0);
}

/**
 * Reads a small file whole, or `undefined` when it does not exist; other
 * failures are thrown.
 */
export function readSmallSync(path: string): Uint8Array | undefined {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Parses JSON lines, leaving out blank, torn and invalid ones (a crash
 * can leave the last line torn; a line that does not parse is not a
 * record).
 */
export function parseLines(bytes: Uint8Array): unknown[] {
  const records: unknown[] = [];
  const text = new TextDecoder().decode(bytes);
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    if (nl === -1) break; // torn: no newline at the end
    const line = text.slice(start, nl).trim();
    start = nl + 1;
    if (line === "") continue;
    try {
      records.push(JSON.parse(line));
    } catch { /* not a record */ }
  }
  return records;
}
