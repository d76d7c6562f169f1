// State → JSON bytes, in chunks, refusing what JSON would silently drop or
// mangle.
//
// Why not one JSON.stringify: for a 256 MiB state that builds a 256 MiB
// string and then a 256 MiB byte copy of it, three copies with the state
// itself. Here the top two levels of the value are written by hand and
// everything below them is stringified one child at a time, so the text
// exists only in chunks of about `chunkBytes` that the caller hashes,
// compresses or buffers and lets go. A single huge leaf (one 200 MiB
// string) is still stringified whole: nothing can split it cheaply.
//
// The refusals (function, symbol, bigint, non-finite number, cycle,
// undefined top level) are found by one walk, by default before any text
// is made, so a refused state costs no output and the message names the
// JSON pointer. That walk is cheap: it keeps no path and no set of
// ancestors (a cycle shows up as unbounded recursion), and only when it
// finds something, or overflows the stack, does the precise walk run to
// name what and where. It was the largest CPU cost of a create (3×
// JSON.stringify itself); it is still about a third of one, which is why
// the manager runs it itself (`check: false`) where it overlaps other
// work, and always before anything it made is stored. Without the walk
// first, a cycle or a bigint still stops the serialisation (JSON.stringify
// throws), and is named the same way.

import { CheckpointError } from "./errors.ts";
import { findJsonProblem, jsonPointer } from "../fs/mod.ts";

/** Options of {@linkcode serializeState}. */
export interface SerializeOptions {
  /** Refuse a state whose JSON is larger than this, in bytes. */
  maxBytes: number;
  /** Emit chunks of about this many bytes. */
  chunkBytes: number;
  /**
   * Receives each chunk as UTF-8 bytes, in order; awaited before the next
   * one is made. Give this or `onText`.
   */
  onChunk?: (chunk: Uint8Array) => void | Promise<void>;
  /**
   * Receives the text instead, to encode it itself (e.g. into a buffer it
   * reuses), piece by piece, in order, and returns each piece's length in
   * UTF-8 bytes; a promise is awaited before the next piece. Pieces are
   * handed over in chunks of about `chunkBytes`, never joined.
   */
  onText?: (piece: string) => number | Promise<number>;
  /** For messages. */
  agentId: string;
  /**
   * Refuse what JSON cannot hold before any text is made. With `false`
   * the caller must run {@linkcode checkSerializable} before it stores the
   * text (a cycle or a bigint is still refused here, by name).
   *
   * @default {true}
   */
  check?: boolean;
}

/** How the state went out. */
export interface SerializeResult {
  /** Bytes of JSON emitted. */
  bytes: number;
}

/**
 * Throws `invalid_state` naming the first place in `value` that JSON
 * cannot hold faithfully.
 */
export function checkSerializable(value: unknown, agentId: string): void {
  const problem = findJsonProblem(value);
  if (!problem) return;
  const where = problem.path.length === 0
    ? "the state itself"
    : jsonPointer(problem.path);
  throw new CheckpointError(
    `Cannot checkpoint the state of agent "${agentId}": ${where} ${problem.reason}, ` +
      `which JSON cannot hold; convert it or leave it out of the state`,
    { code: "invalid_state", agentId, operation: "create" },
  );
}

// toJSON as JSON.stringify applies it (once, with the item's key).
function resolveToJson(value: unknown, key: string): unknown {
  if (value !== null && typeof value === "object" && "toJSON" in value) {
    const toJSON = (value as { toJSON: unknown }).toJSON;
    if (typeof toJSON === "function") return toJSON.call(value, key);
  }
  return value;
}

function mib(n: number): string {
  return `${(n / 1_048_576).toFixed(1)} MiB`;
}

/**
 * Serialises `value` as JSON (exactly what `JSON.stringify(value)` gives)
 * into chunks, after checking it can be held faithfully.
 */
export async function serializeState(
  value: unknown,
  options: SerializeOptions,
): Promise<SerializeResult> {
  if (options.check !== false) checkSerializable(value, options.agentId);
  const encoder = new TextEncoder();
  // The text not yet handed over, in the pieces it was made in: joining
  // them would copy the whole chunk into one more string, and strings of
  // this size are allocated in V8's large-object space, whose growth is
  // what brings on full collections (of the whole heap, the state
  // included). Kept in pieces, most of the text never leaves the young
  // generation.
  let pieces: string[] = [];
  let pending = 0;
  let bytes = 0;
  // Sizes of the top-level keys, for the too_large message.
  const topSizes = new Map<string, number>();
  let currentTop: string | undefined;

  const flush = async (): Promise<void> => {
    if (pending === 0) return;
    const text = pieces;
    pieces = [];
    pending = 0;
    let chunk: Uint8Array | undefined;
    if (options.onText) {
      for (const piece of text) {
        const n = options.onText(piece);
        bytes += typeof n === "number" ? n : await n;
      }
    } else {
      chunk = encoder.encode(text.join(""));
      bytes += chunk.byteLength;
    }
    if (bytes > options.maxBytes) {
      const largest = [...topSizes].sort((a, b) => b[1] - a[1]).slice(0, 3)
        .map(([k, n]) => `"${k}" ~${mib(n)}`).join(", ");
      throw new CheckpointError(
        `Cannot checkpoint the state of agent "${options.agentId}": its JSON is larger than ` +
          `maxBytes (${options.maxBytes} bytes) after ${bytes} bytes` +
          (largest ? `; largest top-level keys so far: ${largest}` : "") +
          `; shrink the state, or raise maxBytes`,
        { code: "too_large", agentId: options.agentId, operation: "create" },
      );
    }
    if (chunk) await options.onChunk?.(chunk);
  };
  const add = (text: string): void => {
    pieces.push(text);
    pending += text.length;
    if (currentTop !== undefined) {
      // UTF-16 units: an estimate of bytes, good enough to name the culprit.
      topSizes.set(currentTop, (topSizes.get(currentTop) ?? 0) + text.length);
    }
  };
  // Compares UTF-16 length: close enough to bytes for chunking purposes.
  const full = (): boolean => pending >= options.chunkBytes;
  // The text of one batch of leaf items: small enough to stay out of the
  // large-object space (see above).
  const batchText = Math.min(options.chunkBytes / 4, 32_768);

  // Writes `v` (already checked) at `depth`; containers in the top two
  // levels are written by hand so their children become separate pieces.
  // Only a full buffer is awaited, so small items cost no extra ticks.
  const emit = async (
    raw: unknown,
    key: string,
    depth: number,
  ): Promise<void> => {
    const v = resolveToJson(raw, key);
    if (depth >= 2 || v === null || typeof v !== "object") {
      add(JSON.stringify(raw) ?? "null");
      if (full()) await flush();
      return;
    }
    if (Array.isArray(v) && depth + 1 >= 2) {
      // Leaf items: stringify them in batches sized from what came before
      // (about 32 KiB of text each), so a million small items cost some
      // ten thousand native calls, and one huge item is never batched.
      add("[");
      let batch = 1;
      for (let i = 0; i < v.length;) {
        const end = Math.min(v.length, i + batch);
        const inner = JSON.stringify(v.slice(i, end)).slice(1, -1);
        if (i > 0) add(",");
        add(inner);
        const perItem = Math.max(1, inner.length / (end - i));
        batch = Math.max(1, Math.min(4096, Math.floor(batchText / perItem)));
        i = end;
        if (full()) await flush();
      }
      add("]");
      return;
    }
    if (Array.isArray(v)) {
      add("[");
      for (let i = 0; i < v.length; i++) {
        if (i > 0) add(",");
        const item = v[i];
        if (item === undefined) add("null");
        else await emit(item, String(i), depth + 1);
        if (full()) await flush();
      }
      add("]");
      return;
    }
    add("{");
    let first = true;
    for (const k of Object.keys(v)) {
      const item = (v as Record<string, unknown>)[k];
      if (item === undefined) continue;
      if (depth === 0) currentTop = k;
      add(`${first ? "" : ","}${JSON.stringify(k)}:`);
      first = false;
      await emit(item, k, depth + 1);
    }
    if (depth === 0) currentTop = undefined;
    add("}");
  };

  try {
    await emit(value, "", 0);
  } catch (err) {
    // JSON.stringify throws a TypeError for a cycle or a bigint (and a
    // deep cycle in the top levels overflows the stack): name it.
    if (err instanceof TypeError || err instanceof RangeError) {
      checkSerializable(value, options.agentId);
    }
    throw err;
  }
  await flush();
  return { bytes };
}
