import { parseRetryAfter } from "./retry_after.ts";

/** The kinds of failure Sturdy tells apart. */
export type ErrorCategory =
  | "network"
  | "rate_limit"
  | "resource"
  | "transient"
  | "timeout"
  | "permanent"
  | "cancelled";

/** What {@linkcode classifyError} says about an error. */
export interface ErrorClassification {
  /** The kind of failure. */
  category: ErrorCategory;
  /** Whether trying again may succeed. */
  retryable: boolean;
  /** A short human reason, e.g. `"EBUSY"` or `"HTTP 503"`. */
  reason: string;
  /** The least time to wait before retrying, e.g. from `Retry-After`. */
  delayHintMs?: number;
}

/**
 * A user rule: return a classification (or part of one, merged over the
 * built-in verdict) to take over, or `undefined` to pass.
 */
export type ClassifyRule = (
  error: unknown,
) => Partial<ErrorClassification> | undefined;

/** Options for {@linkcode classifyError}. */
export interface ClassifyOptions {
  /** Rules tried in order before the built-in ones. @default {[]} */
  rules?: readonly ClassifyRule[];
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "EAI_AGAIN",
  "ENOTCONN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);
const TRANSIENT_CODES = new Set([
  "EAGAIN",
  "EWOULDBLOCK",
  "EBUSY",
  "EINTR",
  "EIO",
  "ETXTBSY",
  "ESTALE",
]);
const RESOURCE_CODES = new Set([
  "EMFILE",
  "ENFILE",
  "ENOSPC",
  "ENOMEM",
  "EDQUOT",
  "ENOBUFS",
]);
const PERMANENT_CODES = new Set([
  "ENOENT",
  "EACCES",
  "EPERM",
  "EEXIST",
  "EISDIR",
  "ENOTDIR",
  "ENOTEMPTY",
  "EINVAL",
  "EROFS",
  "ENAMETOOLONG",
  "ELOOP",
  "EXDEV",
  "EBADF",
  "ENOTSUP",
  "EOPNOTSUPP",
  "ENOTFOUND",
]);

// Deno's error classes by name, for errors that carry no errno code.
const DENO_NAMES: Record<string, [ErrorCategory, boolean]> = {
  NotFound: ["permanent", false],
  PermissionDenied: ["permanent", false],
  NotCapable: ["permanent", false],
  AlreadyExists: ["permanent", false],
  IsADirectory: ["permanent", false],
  NotADirectory: ["permanent", false],
  InvalidData: ["permanent", false],
  NotSupported: ["permanent", false],
  FilesystemLoop: ["permanent", false],
  FilenameTooLong: ["permanent", false],
  BadResource: ["permanent", false],
  AddrInUse: ["permanent", false],
  AddrNotAvailable: ["network", true],
  ConnectionRefused: ["network", true],
  ConnectionReset: ["network", true],
  ConnectionAborted: ["network", true],
  NotConnected: ["network", true],
  BrokenPipe: ["network", true],
  UnexpectedEof: ["network", true],
  Http: ["network", true],
  TimedOut: ["timeout", true],
  Interrupted: ["transient", true],
  WouldBlock: ["transient", true],
  Busy: ["transient", true],
  // Programming errors never heal by themselves.
  TypeError: ["permanent", false],
  SyntaxError: ["permanent", false],
  RangeError: ["permanent", false],
  ReferenceError: ["permanent", false],
};

const FETCH_FAILURE =
  /error sending request|fetch failed|failed to fetch|networkerror|network error|connection (?:reset|refused|closed)|dns error|tcp connect error/i;

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/**
 * The HTTP status an error carries, read from `status`, `statusCode` or
 * `response.status` (a thrown `Response`, an SDK's error, a fetch
 * wrapper's), as {@linkcode classifyError} reads it.
 *
 * @param error Whatever was thrown.
 * @returns The status (100-599), or `undefined` when there is none.
 *
 * @example Read a status
 * ```ts
 * import { httpStatus } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(httpStatus({ response: { status: 503 } }), 503);
 * assert.equal(httpStatus(new Error("no status")), undefined);
 * ```
 */
export function httpStatus(error: unknown): number | undefined {
  for (
    const candidate of [
      field(error, "status"),
      field(error, "statusCode"),
      field(field(error, "response"), "status"),
    ]
  ) {
    if (
      typeof candidate === "number" && Number.isInteger(candidate) &&
      candidate >= 100 && candidate <= 599
    ) {
      return candidate;
    }
  }
  return undefined;
}

function retryAfterOf(error: unknown): number | undefined {
  if (error instanceof Response) return parseRetryAfter(error);
  const headers = field(error, "headers") ??
    field(field(error, "response"), "headers");
  if (headers instanceof Headers) return parseRetryAfter(headers);
  if (typeof headers === "object" && headers !== null) {
    return parseRetryAfter(headers as Record<string, string>);
  }
  return undefined;
}

function classifyHttp(status: number, error: unknown): ErrorClassification {
  const reason = `HTTP ${status}`;
  const hint = status === 429 || status === 503
    ? retryAfterOf(error)
    : undefined;
  const withHint = (c: ErrorClassification): ErrorClassification =>
    hint === undefined ? c : { ...c, delayHintMs: hint };
  if (status === 429) {
    return withHint({ category: "rate_limit", retryable: true, reason });
  }
  if (status === 408 || status === 425 || status >= 500) {
    return withHint({ category: "transient", retryable: true, reason });
  }
  return { category: "permanent", retryable: false, reason };
}

function classifyCode(code: string): ErrorClassification | undefined {
  if (NETWORK_CODES.has(code)) {
    return { category: "network", retryable: true, reason: code };
  }
  if (TRANSIENT_CODES.has(code)) {
    return { category: "transient", retryable: true, reason: code };
  }
  if (RESOURCE_CODES.has(code)) {
    return { category: "resource", retryable: true, reason: code };
  }
  if (PERMANENT_CODES.has(code)) {
    return { category: "permanent", retryable: false, reason: code };
  }
  return undefined;
}

function builtIn(error: unknown, depth: number): ErrorClassification {
  const name = field(error, "name");
  if (name === "AbortError") {
    return { category: "cancelled", retryable: false, reason: "aborted" };
  }
  if (name === "TimeoutError") {
    return { category: "timeout", retryable: true, reason: "timed out" };
  }
  const code = field(error, "code");
  if (code === "attempt_timeout") {
    return { category: "timeout", retryable: true, reason: "attempt timeout" };
  }
  if (code === "circuit_open") {
    const wait = field(error, "retryAfterMs");
    return {
      category: "transient",
      retryable: true,
      reason: "circuit open",
      ...(typeof wait === "number" ? { delayHintMs: wait } : {}),
    };
  }
  const status = httpStatus(error);
  if (status !== undefined) return classifyHttp(status, error);
  if (typeof code === "string") {
    const byCode = classifyCode(code);
    if (byCode) return byCode;
  }
  if (typeof name === "string") {
    // fetch() reports network failures as a TypeError whose message or
    // cause says so; any other TypeError is a bug in the caller.
    if (name === "TypeError") {
      const cause = field(error, "cause");
      if (cause !== undefined && depth < 3) {
        const inner = builtIn(cause, depth + 1);
        if (inner.category === "network" || inner.category === "timeout") {
          return inner;
        }
      }
      if (FETCH_FAILURE.test(String(field(error, "message") ?? ""))) {
        return { category: "network", retryable: true, reason: "fetch failed" };
      }
    }
    const known = DENO_NAMES[name];
    if (known) {
      return { category: known[0], retryable: known[1], reason: name };
    }
  }
  return {
    category: "transient",
    retryable: true,
    reason: "unrecognised error, assumed transient",
  };
}

/**
 * Says what kind of failure an error is and whether retrying can help.
 *
 * - `cancelled`: an `AbortError` (never retried).
 * - `timeout`: a `TimeoutError`, a per-attempt timeout, Deno's `TimedOut`.
 * - `network`: `ECONNRESET`, `ECONNREFUSED`, `ETIMEDOUT`, `EPIPE`…, Deno's
 *   connection errors, and `fetch` network failures.
 * - `rate_limit`: HTTP 429, with the `Retry-After` hint in `delayHintMs`.
 * - `transient`: `EAGAIN`, `EBUSY`, `EINTR`, `EIO`, HTTP 408, 425 and 5xx
 *   (503 with its `Retry-After` hint), an open circuit, and any error it
 *   does not recognise.
 * - `resource`: `EMFILE`, `ENFILE`, `ENOSPC`, `ENOMEM`, `EDQUOT`.
 * - `permanent`: `NotFound`, `PermissionDenied`, `NotCapable`,
 *   `AlreadyExists`, other 4xx, and `TypeError`, `SyntaxError`,
 *   `RangeError`, `ReferenceError`.
 *
 * HTTP statuses are read from `status`, `statusCode` or `response.status`,
 * so a thrown `Response` or an SDK's error both work. User `rules` run first.
 *
 * @param error Whatever was thrown.
 * @param options Extra rules.
 * @returns The classification.
 *
 * @example Classify errors
 * ```ts
 * import { classifyError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const busy = Object.assign(new Error("busy"), { code: "EBUSY" });
 * assert.equal(classifyError(busy).category, "transient");
 * assert.equal(classifyError(new Deno.errors.NotFound("x")).retryable, false);
 *
 * const limited = new Response(null, {
 *   status: 429,
 *   headers: { "retry-after": "2" },
 * });
 * assert.deepEqual(classifyError(limited), {
 *   category: "rate_limit",
 *   retryable: true,
 *   reason: "HTTP 429",
 *   delayHintMs: 2000,
 * });
 *
 * // A user rule takes over for its own errors.
 * const rules = [(e: unknown) =>
 *   e instanceof Error && e.message === "quota"
 *     ? { category: "permanent" as const, retryable: false }
 *     : undefined];
 * assert.equal(classifyError(new Error("quota"), { rules }).retryable, false);
 * ```
 */
export function classifyError(
  error: unknown,
  options?: ClassifyOptions,
): ErrorClassification {
  const base = builtIn(error, 0);
  for (const rule of options?.rules ?? []) {
    const verdict = rule(error);
    if (verdict) return { ...base, ...verdict };
  }
  return base;
}

/**
 * Makes a classifier with extra rules baked in, to pass as `classify` to
 * `retry` or to share across calls.
 *
 * @param rules Rules tried in order before the built-in ones.
 * @returns A function with the signature of {@linkcode classifyError}.
 *
 * @example Treat a custom error as a rate limit
 * ```ts
 * import { createClassifier } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * class QuotaError extends Error {}
 * const classify = createClassifier([
 *   (e) => e instanceof QuotaError
 *     ? { category: "rate_limit", retryable: true, delayHintMs: 5000 }
 *     : undefined,
 * ]);
 * assert.equal(classify(new QuotaError()).delayHintMs, 5000);
 * ```
 */
export function createClassifier(
  rules: readonly ClassifyRule[],
): (error: unknown) => ErrorClassification {
  return (error) => classifyError(error, { rules });
}
