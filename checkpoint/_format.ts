// The checkpoint file format, version 1:
//
//   {"format":"sturdy.checkpoint/1","agentId":…,"seq":…,"sha256":…,"size":…,…}\n
//   <size payload bytes: the state as UTF-8 JSON, or that JSON gzip'd>
//
// Why a header line and raw payload bytes instead of DESIGN.md's single
// JSON envelope with the payload inside: the envelope's payload would have
// to be a JSON string (escaping every quote of the state) or base64 (a
// third bigger, and two more whole copies in memory to build and to read),
// and listing checkpoints would mean parsing every payload. With a header
// line, `head -1` or `list()` reads a few hundred bytes, the payload is
// written straight from the serialiser's chunks, and the envelope's fields
// (format, agentId, type, seq, createdAt, sha256, size, encoding) are all
// in the header. The format string carries the version; a reader refuses
// any other, so a future `/2` is never misread.
//
// The file store writes the payload before its hash is known and the
// header over room kept in front of it afterwards, so the header line is
// padded with spaces before its newline (JSON allows them); readers treat
// it as any header line.
//
// Checks on read, in order (each failure names itself): header present and
// parseable, format known, ids match the file name, length equal to
// `size` (a truncated file fails here, before any hashing), SHA-256 of the
// exact payload bytes, decompression, JSON. (UTF-8 is not checked apart:
// a payload whose checksum matches is the encoder's valid UTF-8.)

import { createHash } from "node:crypto";
import type { CheckpointEncoding, CheckpointType } from "./types.ts";
import { CHECKPOINT_TYPES } from "./types.ts";
import { serializeState } from "./_serialize.ts";

/** The format string of version 1. */
export const CHECKPOINT_FORMAT = "sturdy.checkpoint/1";

/** The largest header line read, in bytes (meta is limited well below). */
export const MAX_HEADER_BYTES = 65_536;

/** The header line of a checkpoint file. */
export interface CheckpointHeader {
  format: typeof CHECKPOINT_FORMAT;
  agentId: string;
  id: string;
  type: CheckpointType;
  seq: number;
  createdAt: string;
  stateVersion: number;
  encoding: CheckpointEncoding;
  /** Payload bytes as stored. */
  size: number;
  /** SHA-256 of the stored payload bytes. */
  sha256: string;
  /** Bytes of JSON before compression. */
  stateBytes: number;
  label?: string;
  operationId?: string;
  meta?: Record<string, unknown>;
  /** The agent lock's fencing token when it was written. */
  fence?: number;
}

/** Why a checkpoint file cannot be used. */
export class CheckFailure extends Error {
  /**
   * @param kind What check failed.
   * @param message The reason, for skip lists and reason files.
   * @param quarantine Whether the file itself is bad (moved aside) rather
   *   than this program unable to read it (left in place).
   */
  constructor(
    readonly kind:
      | "header"
      | "format"
      | "mismatch"
      | "truncated"
      | "checksum"
      | "decode"
      | "json"
      | "version"
      | "migration"
      | "validation"
      | "poisoned",
    message: string,
    readonly quarantine = true,
  ) {
    super(message);
  }
}

/**
 * A payload's stored bytes, not hashed yet: in one buffer (up to
 * {@linkcode SINGLE_WRITE_BYTES}, with room for the header in front) or
 * in chunks.
 */
export interface PayloadChunks {
  /** The bytes in pieces, when not in `buffer`. */
  chunks: Uint8Array[];
  /**
   * The buffer holding the payload at `[room, room + size)`, when it is
   * in one; the bytes in front are free for the header line.
   */
  buffer?: Uint8Array;
  size: number;
  stateBytes: number;
  encoding: CheckpointEncoding;
}

/** A payload ready to store. */
export interface EncodedPayload extends PayloadChunks {
  sha256: string;
}

/** Options of {@linkcode encodePayload}. */
export interface EncodeOptions {
  encoding: CheckpointEncoding | "auto";
  autoGzipBytes: number;
  maxBytes: number;
  agentId: string;
  /**
   * Whether to refuse what JSON cannot hold before any text is made;
   * `false` leaves that to the caller, who must call checkSerializable()
   * before the payload is stored.
   *
   * @default {true}
   */
  check?: boolean;
  /**
   * Bytes to leave free in front of a payload kept in one buffer.
   *
   * @default {0}
   */
  room?: number;
  /** A buffer to encode into, reused from an earlier payload. */
  scratch?: Uint8Array;
}

const CHUNK_BYTES = 1_048_576;
const encoder = new TextEncoder();

class Collector {
  readonly chunks: Uint8Array[] = [];
  size = 0;
  add(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }
}

/**
 * Plain JSON bytes, encoded straight into one buffer that leaves `room`
 * bytes in front (grown as needed, up to SINGLE_WRITE_BYTES of payload),
 * then in chunks. Encoding into a buffer that is reused from one
 * checkpoint to the next saves both the copy that would put the header in
 * front and, more, the page faults of fresh memory, which on a virtual
 * machine cost as much as the encoding itself.
 */
class PlainCollector {
  readonly chunks: Uint8Array[] = [];
  readonly #room: number;
  #buffer: Uint8Array | undefined;
  #at: number;
  size = 0;

  constructor(room: number, scratch: Uint8Array | undefined) {
    this.#room = room;
    this.#buffer = scratch && scratch.byteLength >= room + 4_096
      ? scratch
      : new Uint8Array(room + 65_536);
    this.#at = room;
  }

  /** The buffer holding every byte at `[room, room + size)`, if one does. */
  get buffer(): Uint8Array | undefined {
    return this.#buffer;
  }

  /** Takes the bytes out, as chunks (for compression); empties this. */
  take(): Uint8Array[] {
    if (this.#buffer) {
      this.chunks.unshift(this.#buffer.subarray(this.#room, this.#at));
      this.#buffer = undefined;
    }
    this.size = 0;
    return this.chunks.splice(0);
  }

  /**
   * Encodes `text`; returns how many bytes that made. With `upToFull`,
   * encodes only what fits in one buffer and returns the rest of the
   * text too, if any (the caller streams from there on).
   */
  addText(text: string, upToFull?: false): number;
  addText(
    text: string,
    upToFull: true,
  ): { written: number; rest: string | undefined };
  addText(
    text: string,
    upToFull = false,
  ): number | { written: number; rest: string | undefined } {
    let written = 0;
    let rest = text;
    while (this.#buffer) {
      const into = this.#buffer.subarray(this.#at);
      const done = encoder.encodeInto(rest, into);
      this.#at += done.written;
      written += done.written;
      if (done.read === rest.length) {
        this.size += written;
        return upToFull ? { written, rest: undefined } : written;
      }
      rest = rest.slice(done.read);
      this.#grow(rest.length);
      if (upToFull && !this.#buffer) {
        this.size += written;
        return { written, rest };
      }
    }
    const chunk = encoder.encode(rest);
    this.chunks.push(chunk);
    written += chunk.byteLength;
    this.size += written;
    return written;
  }

  /**
   * Makes room for at least `units` more bytes (UTF-16 units: a lower
   * bound on their UTF-8 bytes), or moves to chunks once the payload
   * would pass SINGLE_WRITE_BYTES.
   */
  #grow(units: number): void {
    const buffer = this.#buffer!;
    const most = this.#room + SINGLE_WRITE_BYTES;
    if (buffer.byteLength >= most) {
      this.chunks.push(buffer.subarray(this.#room, this.#at));
      this.#buffer = undefined;
      return;
    }
    const next = new Uint8Array(
      Math.min(most, Math.max(buffer.byteLength * 2, this.#at + units + 16)),
    );
    next.set(buffer.subarray(0, this.#at));
    this.#buffer = next;
  }
}

class Gzipper {
  readonly out = new Collector();
  readonly #writer: WritableStreamDefaultWriter<BufferSource>;
  readonly #reading: Promise<void>;
  constructor() {
    const stream = new CompressionStream("gzip");
    this.#writer = stream.writable.getWriter();
    this.#reading = (async () => {
      for await (const chunk of stream.readable) this.out.add(chunk);
    })();
    this.#reading.catch(() => {});
  }
  write(chunk: Uint8Array): Promise<void> {
    return this.#writer.write(chunk as Uint8Array<ArrayBuffer>);
  }
  async close(): Promise<Collector> {
    await this.#writer.close();
    await this.#reading;
    return this.out;
  }
  async abort(reason: unknown): Promise<void> {
    await this.#writer.abort(reason).catch(() => {});
    await this.#reading.catch(() => {});
  }
}

/**
 * Serialises `state` into stored payload chunks and hashes them. Memory:
 * the stored payload once (smaller when gzip'd) plus one chunk of text.
 */
export async function encodePayload(
  state: unknown,
  options: EncodeOptions,
): Promise<EncodedPayload> {
  const payload = await encodeChunks(state, options);
  const chunks = payload.buffer
    ? [payload.buffer.subarray(
      options.room ?? 0,
      (options.room ?? 0) + payload.size,
    )]
    : payload.chunks;
  return {
    chunks,
    size: payload.size,
    stateBytes: payload.stateBytes,
    encoding: payload.encoding,
    sha256: sha256OfChunks(chunks),
  };
}

/** Hex SHA-256 of the concatenation of `chunks`. */
export function sha256OfChunks(chunks: readonly Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * A plain JSON payload too large for one buffer, written into its file as
 * it is serialised: the serialiser makes the next chunk while the one
 * before is written, and no more than two chunks are held at a time. Its
 * size and checksum are known only at the end, so the file starts with
 * room for the header line, filled in then (fs/'s rewriteStart).
 */
export interface StreamedPayload {
  encoding: "json";
  /**
   * The whole file, to be read once: `room` bytes kept for the header
   * line, then the payload as it is serialised. It errors with the
   * serialiser's error (e.g. `too_large`).
   */
  readonly stream: ReadableStream<Uint8Array>;
  /** Once the stream has ended: the payload's size, SHA-256 and JSON bytes. */
  result(): { size: number; sha256: string; stateBytes: number };
  /** Stops the serialiser if the stream will not be read to its end. */
  cancel(reason: unknown): void;
}

/**
 * Encodes text into chunks of CHUNK_BYTES and feeds them into a stream
 * read by one consumer that writes each before it asks for the next (the
 * file store's write): one chunk is queued ahead, the producer waits for
 * room, and with `drop` a chunk is freed as soon as the consumer has
 * written it.
 */
class Pipe {
  readonly stream: ReadableStream<Uint8Array>;
  readonly #hash = createHash("sha256");
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #room: (() => void) | undefined;
  #cancelled: { reason: unknown } | undefined;
  #latest: Uint8Array | undefined;
  #before: Uint8Array | undefined;
  #chunk = new Uint8Array(CHUNK_BYTES);
  #at = 0;
  size = 0;

  constructor(placeholder: Uint8Array, drop: boolean) {
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        controller.enqueue(placeholder);
      },
      pull: () => {
        // A read took the latest chunk: the one before it is written.
        if (drop && this.#before) dropChunk(this.#before);
        this.#before = undefined;
        const room = this.#room;
        this.#room = undefined;
        room?.();
      },
      cancel: (reason) => {
        this.#cancelled = { reason };
        const room = this.#room;
        this.#room = undefined;
        room?.();
      },
    }, { highWaterMark: 1 });
  }

  /**
   * Encodes `text` into the current chunk, handing chunks over as they
   * fill; returns its length in bytes (at once, when no chunk filled).
   */
  write(text: string): number | Promise<number> {
    const done = encoder.encodeInto(text, this.#chunk.subarray(this.#at));
    this.#at += done.written;
    if (done.read === text.length) return done.written;
    return this.#writeRest(text.slice(done.read), done.written);
  }

  async #writeRest(rest: string, written: number): Promise<number> {
    for (;;) {
      await this.#handOver();
      const done = encoder.encodeInto(rest, this.#chunk.subarray(this.#at));
      this.#at += done.written;
      written += done.written;
      if (done.read === rest.length) return written;
      rest = rest.slice(done.read);
    }
  }

  /** Hands the current chunk over (if it holds anything) and starts one. */
  async #handOver(): Promise<void> {
    if (this.#at === 0) return;
    const chunk = this.#at === this.#chunk.byteLength
      ? this.#chunk
      : this.#chunk.subarray(0, this.#at);
    this.#chunk = new Uint8Array(CHUNK_BYTES);
    this.#at = 0;
    await this.push(chunk);
  }

  /** Queues one payload chunk, then waits until the consumer wants more. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#cancelled) throw this.#cancelled.reason;
    this.#hash.update(chunk);
    this.size += chunk.byteLength;
    this.#before = this.#latest;
    this.#latest = chunk;
    this.#controller.enqueue(chunk);
    if ((this.#controller.desiredSize ?? 0) <= 0) {
      await new Promise<void>((resolve) => this.#room = resolve);
      const cancelled = this.#cancelled as { reason: unknown } | undefined;
      if (cancelled) throw cancelled.reason;
    }
  }

  /** Hands over the last chunk and ends the stream. */
  close(): void {
    if (this.#cancelled) return;
    if (this.#at > 0) {
      const chunk = this.#chunk.subarray(0, this.#at);
      this.#hash.update(chunk);
      this.size += chunk.byteLength;
      this.#controller.enqueue(chunk);
    }
    this.#controller.close();
  }

  error(err: unknown): void {
    if (!this.#cancelled) this.#controller.error(err);
  }

  digest(): string {
    return this.#hash.digest("hex");
  }
}

/** The payload of {@linkcode encodeChunks}: whole, or streamed. */
export type EncodedState = PayloadChunks | StreamedPayload;

/** Whether an encoded state is being streamed. */
export function isStreamed(payload: EncodedState): payload is StreamedPayload {
  return "stream" in payload;
}

/**
 * Serialises `state` into its stored payload, not hashed: plain JSON in
 * one buffer up to SINGLE_WRITE_BYTES (`options.scratch` when it is given
 * and big enough), else in chunks, gzip'd in chunks. Memory: the stored
 * payload once (smaller when gzip'd) plus one chunk of text.
 *
 * With `stream` (for a store whose writes can rewrite the file's start),
 * plain JSON that outgrows one buffer is not held whole: this resolves
 * as soon as it does, to a {@linkcode StreamedPayload} whose stream goes
 * on serialising as it is read, with `stream.room` bytes in front.
 */
export async function encodeChunks(
  state: unknown,
  options: EncodeOptions,
): Promise<PayloadChunks>;
export async function encodeChunks(
  state: unknown,
  options: EncodeOptions & { stream: { room: number; drop: boolean } },
): Promise<EncodedState>;
export async function encodeChunks(
  state: unknown,
  options: EncodeOptions & { stream?: { room: number; drop: boolean } },
): Promise<EncodedState> {
  let plain: PlainCollector | undefined = options.encoding === "gzip"
    ? undefined
    : new PlainCollector(options.room ?? 0, options.scratch);
  let gzip: Gzipper | undefined = options.encoding === "gzip"
    ? new Gzipper()
    : undefined;
  let pipe: Pipe | undefined;
  let streamed!: (payload: StreamedPayload) => void;
  const handedOver = new Promise<StreamedPayload>((resolve) =>
    streamed = resolve
  );
  // Only plain JSON is streamed: "auto" may still turn to gzip.
  const canStream = options.stream && options.encoding === "json";
  try {
    // How the serialisation ends, for a stream handed over before then
    // (possibly from within its first, synchronous step).
    let ended!: (outcome: Promise<{ bytes: number }>) => void;
    const ending = new Promise<{ bytes: number }>((resolve) => ended = resolve);
    ending.catch(() => {}); // handled where a stream is handed over
    const serialising = serializeState(state, {
      maxBytes: options.maxBytes,
      chunkBytes: CHUNK_BYTES,
      agentId: options.agentId,
      check: options.check ?? true,
      onText: (text) => {
        if (pipe) return pipe.write(text);
        if (gzip) {
          const chunk = encoder.encode(text);
          return gzip.write(chunk).then(() => chunk.byteLength);
        }
        if (!canStream) {
          const written = plain!.addText(text);
          if (
            options.encoding === "auto" && plain!.size > options.autoGzipBytes
          ) {
            // Crossed the threshold: compress what is buffered and the
            // rest.
            const compressor = gzip = new Gzipper();
            const buffered = plain!.take();
            plain = undefined;
            return (async () => {
              for (const c of buffered) await compressor.write(c);
              return written;
            })();
          }
          return written;
        }
        const { written, rest } = plain!.addText(text, true);
        if (plain!.buffer) return written;
        // Outgrew one buffer: write from here on, as it is made.
        const room = options.stream!.room;
        const open = new Pipe(
          new Uint8Array(room).fill(0x20),
          options.stream!.drop,
        );
        pipe = open;
        const buffered = plain!.take();
        plain = undefined;
        let stateBytes = 0;
        ending.then(
          (result) => {
            stateBytes = result.bytes;
            open.close();
          },
          (err) => open.error(err),
        );
        streamed({
          encoding: "json",
          stream: open.stream,
          result: () => ({
            size: open.size,
            sha256: open.digest(),
            stateBytes,
          }),
          cancel: (reason) => {
            open.stream.cancel(reason).catch(() => {});
          },
        });
        return (async () => {
          for (const c of buffered) await open.push(c);
          return written + (rest === undefined ? 0 : await open.write(rest));
        })();
      },
    });
    ended(serialising);
    const outcome = await Promise.race([
      serialising,
      handedOver.then((payload) => ({ payload })),
    ]);
    if ("payload" in outcome) return outcome.payload;
    const { bytes } = outcome;
    if (gzip) {
      const out = await (gzip as Gzipper).close();
      return {
        chunks: out.chunks,
        size: out.size,
        stateBytes: bytes,
        encoding: "gzip",
      };
    }
    const buffer = plain!.buffer;
    return {
      chunks: buffer ? [] : plain!.chunks,
      ...(buffer ? { buffer } : {}),
      size: plain!.size,
      stateBytes: bytes,
      encoding: "json",
    };
  } catch (err) {
    await (gzip as Gzipper | undefined)?.abort(err);
    throw err;
  }
}

/** The header line's bytes, newline included. */
export function encodeHeader(header: CheckpointHeader): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(header) + "\n");
}

/**
 * The header line padded with spaces to exactly `room` bytes, newline
 * included: for a file that kept `room` bytes for it in front of its
 * payload (a streamed payload; see fs/'s rewriteStart). JSON allows the
 * spaces, so readers parse it as any header line.
 */
export function encodeHeaderPadded(
  header: CheckpointHeader,
  room: number,
): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  if (json.byteLength + 1 > room) {
    // Not reached: room is an upper bound on the header's length.
    throw new RangeError(
      `header of ${json.byteLength} bytes does not fit in ${room}`,
    );
  }
  const line = new Uint8Array(room).fill(0x20);
  line.set(json);
  line[room - 1] = 0x0a;
  return line;
}

/**
 * An upper bound on the bytes of the header line of a checkpoint with
 * these extras: every field the lock decides (seq, time, fence) and the
 * payload decides (size, hash) at its longest.
 */
export function headerRoom(
  agentId: string,
  extras: Pick<CheckpointHeader, "label" | "meta" | "operationId">,
): number {
  const most = Number.MAX_SAFE_INTEGER;
  return encodeHeader({
    format: CHECKPOINT_FORMAT,
    agentId,
    id: `${most}.pre_operation`,
    type: "pre_operation",
    seq: most,
    createdAt: new Date(8.64e15).toISOString(), // the latest Date there is
    stateVersion: most,
    encoding: "gzip",
    size: most,
    sha256: "0".repeat(64),
    stateBytes: most,
    ...extras,
    fence: most,
  }).byteLength;
}

/** Up to this size a checkpoint file is built in memory and written whole. */
export const SINGLE_WRITE_BYTES = 8_388_608;

/** A payload laid out for its file, with its hash under way. */
export interface FileBody {
  /** Hex SHA-256 of the payload bytes. */
  readonly sha256: Promise<string>;
  /**
   * The buffer the payload was encoded into, free for reuse once the
   * file is written, if it was one.
   */
  readonly scratch: Uint8Array | undefined;
  /** Whether `withHeader` may be called again (bytes, not a stream). */
  readonly rewritable: boolean;
  /**
   * The whole file, the header line first: one buffer for a small
   * payload, else a stream (then call it once).
   */
  withHeader(head: Uint8Array): Uint8Array | ReadableStream<Uint8Array>;
  /**
   * The whole file with the payload after `room` bytes left for a header
   * line written over them once the hash is known (a padded header, see
   * encodeHeaderPadded; fs/'s rewriteStart), so the payload is written
   * while it is hashed. Only when `rewritable`.
   */
  withRoom(): Uint8Array;
}

/**
 * Frees a chunk's memory now, if the chunk is all of its buffer (so no
 * other chunk can share it), instead of at some later collection: a large
 * payload's chunks, dropped as soon as each is written, then never add up
 * to the external memory that makes V8 collect (a full collection of a
 * large state's heap costs as much as writing the state).
 */
function dropChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (
    buffer instanceof ArrayBuffer && chunk.byteOffset === 0 &&
    chunk.byteLength === buffer.byteLength
  ) {
    buffer.transfer(0);
  }
}

/**
 * Lays out a payload for its file (emptying `payload.chunks`) and starts
 * hashing it. With `written`, the consumer of the stream is known to be
 * done with a chunk once it asks for the next (the file store's write is),
 * so each chunk is freed then. A small payload (up to {@linkcode SINGLE_WRITE_BYTES}) is
 * written with the header line in front of it, in one buffer: where it
 * was encoded (`room` bytes were left free there), else copied once; it
 * is hashed with WebCrypto, which works off the JavaScript thread, so the
 * caller's next steps (taking the lock, listing) overlap the hash. A
 * large payload is hashed here, stays in its chunks and is streamed so it
 * is never held twice: each chunk is dropped once taken.
 */
export function fileBody(
  payload: PayloadChunks,
  room: number,
  written = false,
): FileBody {
  const chunks = payload.chunks.splice(0);
  if (!payload.buffer && payload.size > SINGLE_WRITE_BYTES) {
    return {
      sha256: Promise.resolve(sha256OfChunks(chunks)),
      scratch: undefined,
      rewritable: false,
      withRoom() {
        throw new TypeError("a streamed body has no room to write over");
      },
      withHeader(head) {
        chunks.unshift(head);
        let taken: Uint8Array | undefined;
        return new ReadableStream<Uint8Array>({
          pull(controller) {
            // Asked for the next chunk: the one before is written.
            if (written && taken) dropChunk(taken);
            const next = chunks.shift();
            taken = next;
            if (next) controller.enqueue(next);
            else controller.close();
          },
        }, { highWaterMark: 0 });
      },
    };
  }
  let bytes = payload.buffer;
  if (!bytes) {
    bytes = new Uint8Array(room + payload.size);
    let at = room;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
  }
  const body = bytes.subarray(room, room + payload.size);
  const whole = bytes;
  const sha256 = sha256HexAside(body);
  return {
    sha256,
    scratch: payload.buffer,
    rewritable: true,
    withHeader(head) {
      if (head.byteLength > room) {
        // Not reached (room is an upper bound), but stay correct.
        const file = new Uint8Array(head.byteLength + body.byteLength);
        file.set(head);
        file.set(body, head.byteLength);
        return file;
      }
      const start = room - head.byteLength;
      whole.set(head, start);
      return whole.subarray(start, room + payload.size);
    },
    withRoom() {
      return whole.subarray(0, room + payload.size);
    },
  };
}

function hex(digest: ArrayBuffer): string {
  const bytes = new Uint8Array(digest);
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    out += bytes[i]!.toString(16).padStart(2, "0");
  }
  return out;
}

/** Where the header line ends in `bytes` (index of the newline), or -1. */
export function headerEnd(bytes: Uint8Array): number {
  const limit = Math.min(bytes.byteLength, MAX_HEADER_BYTES);
  for (let i = 0; i < limit; i++) if (bytes[i] === 0x0a) return i;
  return -1;
}

/**
 * Parses and checks a header line against what its file name says:
 * format version, agent, id, type, seq and field types.
 */
export function parseHeader(
  bytes: Uint8Array,
  expect: { agentId: string; id: string; seq: number; type: CheckpointType },
): CheckpointHeader {
  const end = headerEnd(bytes);
  if (end < 0) {
    throw new CheckFailure(
      "header",
      bytes.byteLength === 0
        ? "empty file: no header line"
        : `no header line in the first ${
          Math.min(bytes.byteLength, MAX_HEADER_BYTES)
        } bytes`,
    );
  }
  let header: Record<string, unknown>;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(0, end),
    );
    const parsed: unknown = JSON.parse(text);
    if (
      parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
    ) {
      throw new Error("not a JSON object");
    }
    header = parsed as Record<string, unknown>;
  } catch (err) {
    throw new CheckFailure(
      "header",
      `unreadable header line: ${(err as Error).message}`,
    );
  }
  if (header.format !== CHECKPOINT_FORMAT) {
    throw new CheckFailure(
      "format",
      `unsupported format ${
        JSON.stringify(header.format)
      }: this version reads "${CHECKPOINT_FORMAT}"`,
      // A newer writer's file is not damaged: leave it for newer code.
      !(typeof header.format === "string" &&
        header.format.startsWith("sturdy.checkpoint/")),
    );
  }
  const fields: Array<[string, "string" | "number"]> = [
    ["agentId", "string"],
    ["id", "string"],
    ["type", "string"],
    ["seq", "number"],
    ["createdAt", "string"],
    ["stateVersion", "number"],
    ["encoding", "string"],
    ["size", "number"],
    ["sha256", "string"],
    ["stateBytes", "number"],
  ];
  for (const [name, type] of fields) {
    const value = header[name];
    const ok = type === "string"
      ? typeof value === "string"
      : typeof value === "number" && Number.isFinite(value);
    if (!ok) {
      throw new CheckFailure(
        "header",
        `header field "${name}" is ${
          JSON.stringify(header[name])
        }, not a ${type}`,
      );
    }
  }
  if (
    !CHECKPOINT_TYPES.includes(header.type as CheckpointType) ||
    (header.encoding !== "json" && header.encoding !== "gzip") ||
    !/^[0-9a-f]{64}$/.test(header.sha256 as string) ||
    !Number.isSafeInteger(header.size) || (header.size as number) < 0
  ) {
    throw new CheckFailure("header", "header fields out of range");
  }
  if (
    header.agentId !== expect.agentId || header.id !== expect.id ||
    header.seq !== expect.seq || header.type !== expect.type
  ) {
    throw new CheckFailure(
      "mismatch",
      `header names agent "${header.agentId}" checkpoint "${header.id}", ` +
        `but the file is agent "${expect.agentId}" checkpoint "${expect.id}" (copied or renamed by hand?)`,
    );
  }
  return header as unknown as CheckpointHeader;
}

/** Hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Checks a whole file's length and checksum and returns the header and
 * the payload bytes (a view into `bytes`).
 */
export function checkFile(
  bytes: Uint8Array,
  expect: { agentId: string; id: string; seq: number; type: CheckpointType },
): { header: CheckpointHeader; payload: Uint8Array } {
  const { header, payload } = checkLength(bytes, expect);
  checkSha256(header, sha256Hex(payload));
  return { header, payload };
}

/**
 * Checks a whole file's header and length (not its checksum: see
 * {@linkcode checkSha256}) and returns the header and the payload bytes
 * (a view into `bytes`).
 */
export function checkLength(
  bytes: Uint8Array,
  expect: { agentId: string; id: string; seq: number; type: CheckpointType },
): { header: CheckpointHeader; payload: Uint8Array } {
  const header = parseHeader(bytes, expect);
  const payload = bytes.subarray(headerEnd(bytes) + 1);
  if (payload.byteLength !== header.size) {
    throw new CheckFailure(
      "truncated",
      payload.byteLength < header.size
        ? `truncated: the header says ${header.size} payload bytes, the file holds ${payload.byteLength}`
        : `too long: the header says ${header.size} payload bytes, the file holds ${payload.byteLength}`,
    );
  }
  return { header, payload };
}

/** Throws the checksum failure unless `actual` is the header's SHA-256. */
export function checkSha256(header: CheckpointHeader, actual: string): void {
  if (actual !== header.sha256) {
    throw new CheckFailure(
      "checksum",
      `checksum mismatch: the header says sha256 ${
        header.sha256.slice(0, 12)
      }…, ` +
        `the payload hashes to ${actual.slice(0, 12)}… (bytes changed on disk)`,
    );
  }
}

/**
 * Hex SHA-256 of `bytes`, computed off the JavaScript thread (WebCrypto),
 * so that the caller can do other work meanwhile.
 */
export function sha256HexAside(bytes: Uint8Array): Promise<string> {
  const digest = crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  ).then(hex);
  digest.catch(() => {}); // the caller may fail before awaiting it
  return digest;
}

/**
 * Decodes a checked payload into its JSON text. The decode is lenient:
 * the checksum already proved these are the bytes written, which came
 * from a TextEncoder and so are valid UTF-8; a strict decode would cost a
 * second full pass for nothing.
 */
export async function decodePayload(
  header: CheckpointHeader,
  payload: Uint8Array,
): Promise<string> {
  if (header.encoding === "json") return new TextDecoder().decode(payload);
  try {
    const parts: string[] = [];
    const text = new Blob([payload as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"))
      .pipeThrough(new TextDecoderStream());
    for await (const part of text) parts.push(part);
    return parts.join("");
  } catch (err) {
    throw new CheckFailure(
      "decode",
      `cannot decompress the gzip payload: ${(err as Error).message}`,
    );
  }
}

/** Parses the JSON text of a payload. */
export function parseState(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckFailure(
      "json",
      `invalid JSON in the payload: ${(err as Error).message}`,
    );
  }
}
