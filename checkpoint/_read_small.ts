// Reading the agent's small metadata files (the ledger, restore counts)
// with synchronous calls: each async file call costs 50-100 µs of
// event-loop round trip on the machines measured, against about 10 µs for
// the same read made synchronously, and a restore reads them every time.
// The price, as for lock/'s metadata steps: a file system that hangs
// blocks the event loop, not just the call. Appends go through fs/'s
// appendJsonl and appendJsonlBatch (whose default file system is
// synchronous for small calls too).

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
