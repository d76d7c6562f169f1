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

/** A payload ready to store. */
export interface EncodedPayload {
  chunks: Uint8Array[];
  size: number;
  sha256: string;
  stateBytes: number;
  encoding: CheckpointEncoding;
}

/** Options of {@linkcode encodePayload}. */
export interface EncodeOptions {
  encoding: CheckpointEncoding | "auto";
  autoGzipBytes: number;
  maxBytes: number;
  agentId: string;
}

const CHUNK_BYTES = 1_048_576;

class Collector {
  readonly chunks: Uint8Array[] = [];
  readonly #hash = createHash("sha256");
  size = 0;
  add(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.#hash.update(chunk);
    this.size += chunk.byteLength;
  }
  digest(): string {
    return this.#hash.digest("hex");
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
  let plain: Collector | undefined = options.encoding === "gzip"
    ? undefined
    : new Collector();
  let gzip: Gzipper | undefined = options.encoding === "gzip"
    ? new Gzipper()
    : undefined;
  try {
    const { bytes } = await serializeState(state, {
      maxBytes: options.maxBytes,
      chunkBytes: CHUNK_BYTES,
      agentId: options.agentId,
      onChunk: async (chunk) => {
        if (gzip) return await gzip.write(chunk);
        plain!.add(chunk);
        if (
          options.encoding === "auto" && plain!.size > options.autoGzipBytes
        ) {
          // Crossed the threshold: compress what is buffered and the rest.
          gzip = new Gzipper();
          const buffered = plain!.chunks;
          plain = undefined;
          for (const c of buffered.splice(0)) await gzip.write(c);
        }
      },
    });
    if (gzip) {
      const out = await (gzip as Gzipper).close();
      return {
        chunks: out.chunks,
        size: out.size,
        sha256: out.digest(),
        stateBytes: bytes,
        encoding: "gzip",
      };
    }
    return {
      chunks: plain!.chunks,
      size: plain!.size,
      sha256: plain!.digest(),
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
  const actual = sha256Hex(payload);
  if (actual !== header.sha256) {
    throw new CheckFailure(
      "checksum",
      `checksum mismatch: the header says sha256 ${
        header.sha256.slice(0, 12)
      }…, ` +
        `the payload hashes to ${actual.slice(0, 12)}… (bytes changed on disk)`,
    );
  }
  return { header, payload };
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
