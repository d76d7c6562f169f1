/**
 * Removes secrets from text before it is written to a log or an
 * escalation: credentials in URLs (`https://user:pass@host` →
 * `https://***@host`), bearer and basic tokens, `Authorization:` header
 * values, and `token`/`key`/`secret`/`password`-like parameters
 * (`?api_key=…`, `password: …`). It errs on the side of hiding too much.
 *
 * @param text Text that may hold secrets.
 * @returns The text with every secret replaced by `***`.
 *
 * @example Redact an error message
 * ```ts
 * import { redactSecrets } from "@sturdy/sturdy/recovery";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   redactSecrets("GET https://bob:hunter2@api.example.com/x?api_key=abc123 failed"),
 *   "GET https://***@api.example.com/x?api_key=*** failed",
 * );
 * assert.equal(
 *   redactSecrets("401 with Authorization: Bearer eyJhbGciOi.x.y"),
 *   "401 with Authorization: Bearer ***",
 * );
 * ```
 */
export function redactSecrets(text: string): string {
  return text
    // scheme://user:pass@host or scheme://token@host
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(?::[^\s/@]*)?@/gi, "$1***@")
    // Authorization: Bearer xxx / Basic xxx / token xxx
    .replace(/\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{4,}/gi, "$1 ***")
    // Authorization header with a bare value
    .replace(
      /\b(authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)(?!bearer\b|basic\b|token\b)[^\s"',;]+/gi,
      "$1$2***",
    )
    // key=value and key: value pairs whose key names a secret
    .replace(
      /\b([A-Za-z0-9_-]*(?:token|secret|passw(?:or)?d|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret|session|cookie|sig(?:nature)?)[A-Za-z0-9_-]*)(["']?\s*[:=]\s*["']?)(?!\*\*\*)[^\s"'&,;]+/gi,
      "$1$2***",
    );
}
