// Acquiring a lock: validation, the backend for the kind, and the wait.
//
// Invariant: a call returns a held lock, or null/throws having left
// nothing held. The wait polls the backend with exponential backoff and
// equal jitter (so waiters do not poll in step and never spin), capped at
// 50 ms so a release is noticed quickly (and at ttl/4 for a very short
// ttl, so a stale lock is noticed well within ttl plus one heartbeat); it
// stops at `timeout` (LockTimeoutError naming the holder) and at once on
// `signal` (rejecting with `signal.reason`).

import { SturdyError, systemClock, validateName } from "../retry/mod.ts";
import type { Clock } from "../retry/mod.ts";
import { computeDelay, resolveBackoff } from "../retry/backoff.ts";
import type { LockBackend, LockInfo } from "./backend.ts";
import { DirBackend } from "./_dir_backend.ts";
import { LockTimeoutError } from "./errors.ts";
import { FlockBackend } from "./_flock_backend.ts";
import { createLock, type Lock } from "./lock.ts";
import { lockIoError } from "./_lock_error.ts";
import type { LockKind, LockOptions, LockRootOptions } from "./options.ts";
import { localHost, newToken, OWNER_FORMAT, ownProcessStart } from "./owner.ts";
import { locksDir } from "./_paths.ts";

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_TTL = 30_000;
/** The first poll delay, and the floor of the schedule. */
const POLL_MIN_MS = 5;
/** The longest poll delay, whatever the ttl. */
const POLL_MAX_MS = 50;
/** The grace of a lock directory without a readable owner (at most ttl). */
const HALF_WRITTEN_GRACE_MS = 2_000;

/** Options after validation and defaults. @internal */
export interface ResolvedLockOptions {
  root: string;
  host: string;
  clock: Clock;
  random: () => number;
  timeout: number;
  ttl: number;
  heartbeat: number;
  kind: LockKind;
}

function invalid(message: string): SturdyError {
  return new SturdyError(message, { code: "invalid_option" });
}

/** Validates options and fills in defaults. @internal */
export function resolveLockOptions(
  options: LockOptions = {},
  defaultTimeout = DEFAULT_TIMEOUT,
): ResolvedLockOptions {
  const timeout = options.timeout ?? defaultTimeout;
  const ttl = options.ttl ?? DEFAULT_TTL;
  if (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0) {
    throw invalid(
      `Invalid lock timeout ${timeout}: use milliseconds >= 0 (0 tries once, Infinity waits for ever)`,
    );
  }
  if (!Number.isFinite(ttl) || ttl <= 0) {
    throw invalid(`Invalid lock ttl ${ttl}: use milliseconds > 0`);
  }
  const heartbeat = options.heartbeat ?? ttl / 3;
  if (!Number.isFinite(heartbeat) || heartbeat <= 0 || heartbeat >= ttl) {
    throw invalid(
      `Invalid lock heartbeat ${heartbeat}: use milliseconds > 0 and below the ttl (${ttl})`,
    );
  }
  const kind = options.kind ?? "dir";
  if (kind !== "dir" && kind !== "flock") {
    throw invalid(
      `Invalid lock kind ${JSON.stringify(kind)}: use "dir" or "flock"`,
    );
  }
  return {
    root: options.root ?? ".sturdy",
    host: options.host ?? localHost(),
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    timeout,
    ttl,
    heartbeat,
    kind,
  };
}

/** The backend of a kind for a root. @internal */
export function backendFor(
  kind: LockKind,
  options: LockRootOptions & { ttl?: number },
): LockBackend {
  const root = options.root ?? ".sturdy";
  const clock = options.clock ?? systemClock;
  if (kind === "flock") return new FlockBackend({ root, clock });
  return new DirBackend({
    root,
    clock,
    host: options.host ?? localHost(),
    graceMs: Math.min(HALF_WRITTEN_GRACE_MS, options.ttl ?? DEFAULT_TTL),
  });
}

/**
 * The waiting loop over any backend: returns the lock, or `null` when
 * `orNull` and the time is up.
 * @internal
 */
export async function acquireWith(
  backend: LockBackend,
  name: string,
  options: LockOptions,
  resolved: ResolvedLockOptions,
  orNull: boolean,
): Promise<Lock | null> {
  const { clock, timeout, ttl } = resolved;
  const signal = options.signal;
  const policy = resolveBackoff({
    minDelay: POLL_MIN_MS,
    maxDelay: Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, ttl / 4)),
    multiplier: 2,
    jitter: "equal",
    random: resolved.random,
  });
  const start = clock.now();
  const processStart = await ownProcessStart();
  let attempts = 0;
  let delay = POLL_MIN_MS;
  let holder: LockInfo | null = null;
  for (;;) {
    signal?.throwIfAborted();
    const now = clock.now();
    attempts++;
    const attempt = await backend.acquire({
      name,
      owner: {
        format: OWNER_FORMAT,
        token: newToken(),
        pid: Deno.pid,
        host: resolved.host,
        processStart,
        acquiredAt: now,
        heartbeatAt: now,
        ttlMs: ttl,
        purpose: options.purpose ?? null,
      },
    });
    if (attempt.acquired) {
      const lock = createLock(backend, attempt.lease, {
        heartbeatMs: resolved.heartbeat,
        clock,
        onCompromised: options.onCompromised,
      });
      if (signal?.aborted) {
        await lock.release();
        throw signal.reason;
      }
      return lock;
    }
    holder = attempt.holder;
    const waited = clock.now() - start;
    const remaining = timeout - waited;
    if (remaining <= 0) {
      if (orNull) return null;
      throw new LockTimeoutError(name, holder, waited, attempts);
    }
    delay = computeDelay(policy, attempts - 1, delay);
    await clock.sleep(Math.min(delay, remaining), signal);
  }
}

async function acquire(
  name: string,
  options: LockOptions | undefined,
  orNull: boolean,
): Promise<Lock | null> {
  const opts = options ?? {};
  validateName(name, "lock name");
  const resolved = resolveLockOptions(opts, orNull ? 0 : DEFAULT_TIMEOUT);
  try {
    return await acquireWith(
      backendFor(resolved.kind, resolved),
      name,
      opts,
      resolved,
      orNull,
    );
  } catch (err) {
    throw lockIoError(
      err,
      "acquire",
      name,
      locksDir(resolved.root),
      opts.signal,
    );
  }
}

/**
 * Acquires lock `name`, waiting up to `timeout` for its holder to release
 * it or to be provably dead. The lock is a directory
 * `<root>/locks/<name>.lock` (or a kernel lock with `kind: "flock"`),
 * refreshed by a heartbeat every `heartbeat` ms; its `fence` is larger
 * than every earlier holder's.
 *
 * Permissions: read and write on the root. `--allow-sys=hostname` names the
 * host (without it, owners are judged by heartbeat only); `--allow-run`
 * lets a waiter prove a holder dead by its pid when the kernel lock cannot
 * tell (and records this process's start time).
 *
 * @param name The lock's name: 1-128 characters of `[A-Za-z0-9._-]`.
 * @param options Root, timeout, ttl, heartbeat, signal, onCompromised,
 *   purpose, kind.
 * @returns The held lock.
 * @throws {LockTimeoutError} When the lock is still held after `timeout`.
 * @throws {SturdyError} Code `invalid_name` for a bad name.
 *
 * @example Acquire, check the fence, release
 * ```ts
 * import { acquireLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const first = await acquireLock("deploy", { root, purpose: "migrate" });
 * await first.release();
 * await using second = await acquireLock("deploy", { root });
 * assert.ok(second.fence > first.fence);
 * assert.equal(second.owner.pid, Deno.pid);
 * await second.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function acquireLock(
  name: string,
  options?: LockOptions,
): Promise<Lock> {
  return (await acquire(name, options, false))!;
}

/**
 * Takes lock `name` if it is free (or provably stale), else returns `null`
 * at once. With a `timeout` it waits that long before returning `null`.
 *
 * @param name The lock's name.
 * @param options As for {@linkcode acquireLock}; `timeout` defaults to 0.
 * @returns The held lock, or `null`.
 *
 * @example Try a lock that is taken
 * ```ts
 * import { tryAcquireLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const lock = await tryAcquireLock("nightly", { root });
 * assert.ok(lock);
 * assert.equal(await tryAcquireLock("nightly", { root }), null);
 * await lock.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function tryAcquireLock(
  name: string,
  options?: LockOptions,
): Promise<Lock | null> {
  return acquire(name, options, true);
}

/**
 * Runs `fn` while holding lock `name`, and releases the lock however `fn`
 * ends.
 *
 * @param name The lock's name.
 * @param fn The work; it gets the lock (pass `lock.signal` on to stop when
 *   the lock is lost).
 * @param options As for {@linkcode acquireLock}.
 * @returns What `fn` returns.
 *
 * @example Count under a lock
 * ```ts
 * import { withLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * let counter = 0;
 * await Promise.all([1, 2, 3].map(() =>
 *   withLock("counter", async () => {
 *     const seen = counter;
 *     await new Promise((r) => setTimeout(r, 5));
 *     counter = seen + 1;
 *   }, { root })
 * ));
 * assert.equal(counter, 3);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function withLock<T>(
  name: string,
  fn: (lock: Lock) => T | Promise<T>,
  options?: LockOptions,
): Promise<T> {
  const lock = await acquireLock(name, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/**
 * Acquires the lock of task `taskId` (named `task.<taskId>`), so one task
 * runs in one process at a time.
 *
 * @param taskId The task's id: `[A-Za-z0-9._-]`, 1-123 characters.
 * @param options As for {@linkcode acquireLock}.
 * @returns The held lock.
 *
 * @example Lock a task
 * ```ts
 * import { getTaskLock, tryAcquireLock } from "@sturdy/sturdy/lock";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using lock = await getTaskLock("build-42", { root });
 * assert.equal(lock.name, "task.build-42");
 * assert.equal(await tryAcquireLock("task.build-42", { root }), null);
 * await lock.release();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function getTaskLock(
  taskId: string,
  options?: LockOptions,
): Promise<Lock> {
  try {
    validateName(taskId, "task id");
  } catch (err) {
    return Promise.reject(err);
  }
  return acquireLock(`task.${taskId}`, options);
}
