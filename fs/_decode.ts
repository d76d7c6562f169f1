// Turning bytes into text and JSON with errors that point at the problem.

import { FileReadError } from "./errors.ts";
import { jsonErrorOffset } from "./_json_error_offset.ts";

// fatal: bad bytes throw instead of becoming U+FFFD; the BOM is dropped.
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The offset of the first byte that breaks UTF-8, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    // Lead byte: length, and the allowed range of the second byte (which
    // excludes overlong forms, surrogates and code points above U+10FFFF).
    let len: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < len; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += len;
  }
  return -1;
}

/** Decodes UTF-8 strictly (dropping a BOM); bad bytes are `invalid_data`. */
export function decodeUtf8(
  bytes: Uint8Array,
  operation: string,
  path: string,
): string {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    const at = firstInvalidUtf8(bytes);
    const byte = bytes[at]?.toString(16).padStart(2, "0") ?? "??";
    throw new FileReadError(
      `Cannot read "${path}" as text: byte ${at} (0x${byte}) is not valid UTF-8; read it with readBytes or convert it to UTF-8`,
      { code: "invalid_data", path, operation, cause: err },
    );
  }
}

/** The 1-based line and column of a character offset in `text`. */
export function lineColumn(
  text: string,
  offset: number,
): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (
    let i = text.indexOf("\n");
    i !== -1 && i < offset;
    i = text.indexOf("\n", i + 1)
  ) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** JSON.parse, with a FileReadError (`invalid_json`) naming line and column. */
export function parseJson(
  text: string,
  operation: string,
  path: string,
  lineOffset = 0,
): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const m = /at position (\d+)/.exec(message);
    const { line, column } = lineColumn(
      text,
      m ? Number(m[1]) : jsonErrorOffset(text),
    );
    const why = message.replace(/ in JSON at position.*$/, "")
      .replace(/^Unexpected end of JSON input$/, "the JSON ends too early")
      .replace(/^(Unexpected token '.+?').*$/s, "$1");
    throw new FileReadError(
      `Cannot read "${path}": invalid JSON at line ${
        line + lineOffset
      }, column ${column}: ${why}; fix the file or restore it from a backup`,
      { code: "invalid_json", path, operation, cause: err },
    );
  }
}
