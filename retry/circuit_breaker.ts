import { corruptStateError, JsonStateFile } from "./_breaker_store.ts";
import { CircuitOpenError } from "./circuit_open_error.ts";
import { type Clock, systemClock } from "./clock.ts";
import { validateName } from "./name.ts";

/**
 * The state of a {@linkcode CircuitBreaker}: `closed` lets every call
 * through, `open` refuses every call, `half_open` lets a few trial calls
 * through to decide whether to close again.
 */
export type CircuitState = "closed" | "open" | "half_open";

/** Why a {@linkcode CircuitBreaker} changed state. */
export type CircuitTransitionReason =
  /** `failureThreshold` consecutive failures tripped it. */
  | "consecutive_failures"
  /** The failure rate over the window reached `failureRateThreshold`. */
  | "failure_rate"
  /** The cooldown elapsed, so it went half-open. */
  | "cooldown_elapsed"
  /** A trial call failed while half-open. */
  | "trial_failed"
  /** `successThreshold` trial calls succeeded while half-open. */
  | "trial_succeeded"
  /** `reset()` was called (or a fresh state was loaded). */
  | "reset"
  /** `isolate()` holds it open. */
  | "isolated"
  /** The last `isolate()` hold was released. */
  | "released"
  /** `restore()` loaded a snapshot. */
  | "restored";

/** The plain object passed to `onStateChange`. */
export interface CircuitStateChange {
  /** The breaker's name. */
  breaker: string;
  /** The state before. */
  from: CircuitState;
  /** The state after. */
  to: CircuitState;
  /** Why it changed. */
  reason: CircuitTransitionReason;
  /** The reason in words, e.g. `"5 consecutive failures"`. */
  detail: string;
  /** When it changed, in milliseconds since the epoch (from the clock). */
  at: number;
}

/** Options for {@linkcode CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * The breaker's name, used in errors and events. With `stateFile` it must
   * be 1-128 characters of `[A-Za-z0-9._-]`.
   *
   * @default {"default"}
   */
  name?: string;
  /**
   * Consecutive failures that trip the breaker open. Ignored when
   * `failureRateThreshold` is set.
   *
   * @default {5}
   */
  failureThreshold?: number;
  /**
   * When set (0 < rate <= 1), the breaker trips on the failure rate over the
   * last `windowMs` instead of on consecutive failures, once at least
   * `minimumThroughput` calls were made in the window.
   *
   * @default {undefined}
   */
  failureRateThreshold?: number;
  /**
   * Calls needed in the window before the failure rate can trip it.
   *
   * @default {10}
   */
  minimumThroughput?: number;
  /**
   * Length of the sliding window in milliseconds. It slides in tenths, so it
   * covers between 90% and 100% of this length.
   *
   * @default {60000}
   */
  windowMs?: number;
  /**
   * Milliseconds the breaker stays open before it lets trial calls through.
   *
   * @default {30000}
   */
  cooldownMs?: number;
  /**
   * Trial calls allowed at once while half-open; more are refused with a
   * {@linkcode CircuitOpenError} whose `retryAfterMs` is 0.
   *
   * @default {1}
   */
  halfOpenMaxCalls?: number;
  /**
   * Trial calls that must succeed while half-open to close the breaker.
   *
   * @default {1}
   */
  successThreshold?: number;
  /**
   * A call that takes longer than this many milliseconds counts as a failure
   * even if it succeeded (its result is still returned).
   *
   * @default {undefined}
   */
  slowCallMs?: number;
  /**
   * Decides whether an error counts as a failure; an error for which it
   * returns `false` counts as a success (and is still thrown to the caller).
   *
   * @default {() => true}
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * Called with a plain object on every state change. A handler that throws
   * does not break the breaker: its error is rethrown in a microtask.
   *
   * @default {undefined}
   */
  onStateChange?: (event: CircuitStateChange) => void;
  /**
   * The source of time. Tests pass a fake one.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * A JSON file holding the breaker's state, so several processes share one
   * breaker. The state is loaded before and saved after every call, under a
   * kernel lock on `<stateFile>.lock`, with durable atomic replaces. A
   * missing file is a fresh breaker.
   *
   * @default {undefined}
   */
  stateFile?: string;
}

/** Options for one {@linkcode CircuitBreaker.execute} call. */
export interface CircuitExecuteOptions {
  /**
   * Cancels the call: an already-aborted signal rejects with its reason
   * without running the function or counting anything. It is passed on to
   * the function, and an abort that ends the call is not counted either.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** What the function run by {@linkcode CircuitBreaker.execute} receives. */
export interface CircuitBreakerContext {
  /** The caller's signal, if one was given. */
  signal: AbortSignal | undefined;
}

/** Counts of a {@linkcode CircuitBreaker}, as returned by `stats()`. */
export interface CircuitBreakerStats {
  /** The breaker's name. */
  name: string;
  /** The current state. */
  state: CircuitState;
  /** Whether `isolate()` holds it open. */
  isolated: boolean;
  /** Why it last changed state. */
  reason: CircuitTransitionReason;
  /** The reason in words. */
  detail: string;
  /** When it last changed state, in milliseconds since the epoch. */
  changedAt: number;
  /** Milliseconds until an open breaker goes half-open (0 otherwise). */
  retryAfterMs: number;
  /** Failures in a row since the last success. */
  consecutiveFailures: number;
  /** Trial calls that succeeded in the current half-open period. */
  halfOpenSuccesses: number;
  /** Trial calls running now. */
  trialsInFlight: number;
  /** Calls run since the breaker was created or reset. */
  calls: number;
  /** Calls that counted as successes. */
  successes: number;
  /** Calls that counted as failures (slow calls included). */
  failures: number;
  /** Calls slower than `slowCallMs`. */
  slowCalls: number;
  /** Calls this object refused without running them. */
  rejected: number;
  /** The sliding window used by the failure-rate mode. */
  window: {
    /** The window's length in milliseconds. */
    windowMs: number;
    /** Calls counted in the window. */
    calls: number;
    /** Failures counted in the window. */
    failures: number;
    /** `failures / calls`, or 0 when there were no calls. */
    failureRate: number;
  };
}

/**
 * A plain, versioned copy of a breaker's state, as returned by `toJSON()`
 * and stored in a state file.
 */
export interface CircuitBreakerSnapshot {
  /** The format tag. */
  format: "sturdy.breaker/1";
  /** The breaker's name. */
  name: string;
  /** The stored state (an open state past its cooldown reads as half-open). */
  state: CircuitState;
  /** Counts state changes; outcomes of calls admitted earlier are ignored. */
  generation: number;
  /** When the state last changed, in milliseconds since the epoch. */
  changedAt: number;
  /** Why the state last changed. */
  reason: CircuitTransitionReason;
  /** The reason in words. */
  detail: string;
  /** Failures in a row since the last success. */
  consecutiveFailures: number;
  /** Trial successes in the current half-open period. */
  halfOpenSuccesses: number;
  /** Trial calls in flight, each with an id and its start time. */
  trials: { id: string; at: number }[];
  /** The sliding window: `[bucket index, calls, failures]` per bucket. */
  window: { bucketMs: number; buckets: [number, number, number][] };
  /** Counts since the breaker was created or reset. */
  totals: {
    calls: number;
    successes: number;
    failures: number;
    slowCalls: number;
  };
}

/** Holds a breaker open; returned by {@linkcode CircuitBreaker.isolate}. */
export interface CircuitIsolation {
  /** Ends this hold (calling it again does nothing). */
  release(): void;
  /** Same as `release()`, for `using`. */
  [Symbol.dispose](): void;
  /** Same as `release()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface Trial {
  id: string;
  at: number;
}

interface Data {
  state: CircuitState;
  generation: number;
  changedAt: number;
  reason: CircuitTransitionReason;
  detail: string;
  consecutiveFailures: number;
  halfOpenSuccesses: number;
  trials: Trial[];
  calls: number;
  successes: number;
  failures: number;
  slowCalls: number;
  // The window is a ring of BUCKETS buckets, each `bucketMs` long; a slot
  // belongs to the bucket whose index it holds (-Infinity when empty).
  bucketIds: number[];
  bucketCalls: number[];
  bucketFailures: number[];
}

const FORMAT = "sturdy.breaker/1";
const BUCKETS = 10;
const STATES: readonly CircuitState[] = ["closed", "open", "half_open"];
const REASONS: readonly CircuitTransitionReason[] = [
  "consecutive_failures",
  "failure_rate",
  "cooldown_elapsed",
  "trial_failed",
  "trial_succeeded",
  "reset",
  "isolated",
  "released",
  "restored",
];
const NO_SIGNAL: CircuitBreakerContext = Object.freeze({ signal: undefined });

/**
 * A circuit breaker: after repeated failures it stops calling a dependency
 * for a cooldown, then lets a few trial calls decide whether to resume.
 *
 * It trips on consecutive failures, or on the failure rate over a sliding
 * window (`failureRateThreshold`); slow calls can count as failures. It runs
 * no timers: state changes are worked out from the clock whenever `state` is
 * read or `execute()` is called. Outcomes of calls admitted before the last
 * state change are counted in the totals but do not move the breaker, so
 * concurrent failures trip it exactly once.
 *
 * With `stateFile`, several processes share one breaker: `execute()` loads
 * the file before the call and saves it after, under a kernel lock, and
 * `refresh()` loads it for `state`, `stats()` and `toJSON()`. `isolate()`
 * holds are local to the object.
 *
 * @example Trip after two failures, then refuse
 * ```ts
 * import { CircuitBreaker, CircuitOpenError } from "@sturdy/sturdy/retry";
 * import assert from "node:assert/strict";
 *
 * const breaker = new CircuitBreaker({ name: "api", failureThreshold: 2 });
 * for (let i = 0; i < 2; i++) {
 *   await breaker.execute(() => {
 *     throw new Error("down");
 *   }).catch(() => {});
 * }
 * assert.equal(breaker.state, "open");
 * await assert.rejects(breaker.execute(() => "never run"), CircuitOpenError);
 * ```
 */
export class CircuitBreaker {
  /** The breaker's name, used in errors and events. */
  readonly name: string;
  #failureThreshold: number;
  #failureRate: number | undefined;
  #minimumThroughput: number;
  #windowMs: number;
  #bucketMs: number;
  #cooldownMs: number;
  #halfOpenMaxCalls: number;
  #successThreshold: number;
  #slowCallMs: number | undefined;
  #isFailure: ((error: unknown) => boolean) | undefined;
  #onStateChange: ((event: CircuitStateChange) => void) | undefined;
  #clock: Clock;
  #store: JsonStateFile | undefined;

  #d: Data;
  /** The state last reported to `onStateChange` (isolation included). */
  #observed: CircuitState = "closed";
  #isolations = 0;
  #rejected = 0;
  /** Whether `#d` changed since it was loaded from the state file. */
  #dirty = false;
  /** Ids of trial calls this object started and that still run. */
  #ownTrials = new Set<string>();

  /**
   * Creates a closed breaker.
   *
   * @param options Thresholds, timing, hooks and the optional state file.
   * @throws {RangeError} For an out-of-range option.
   * @throws {SturdyError} With code `invalid_name` when `stateFile` is set
   * and `name` is not a safe name.
   */
  constructor(options: CircuitBreakerOptions = {}) {
    const {
      name = "default",
      failureThreshold = 5,
      failureRateThreshold,
      minimumThroughput = 10,
      windowMs = 60_000,
      cooldownMs = 30_000,
      halfOpenMaxCalls = 1,
      successThreshold = 1,
      slowCallMs,
      stateFile,
    } = options;
    positiveInteger("failureThreshold", failureThreshold);
    positiveInteger("minimumThroughput", minimumThroughput);
    positiveInteger("halfOpenMaxCalls", halfOpenMaxCalls);
    positiveInteger("successThreshold", successThreshold);
    if (
      failureRateThreshold !== undefined &&
      !(failureRateThreshold > 0 && failureRateThreshold <= 1)
    ) {
      throw new RangeError(
        `Cannot create circuit breaker as 'failureRateThreshold' must be in (0, 1]: current value is ${failureRateThreshold}`,
      );
    }
    if (!(Number.isFinite(windowMs) && windowMs > 0)) {
      throw new RangeError(
        `Cannot create circuit breaker as 'windowMs' must be a positive number: current value is ${windowMs}`,
      );
    }
    if (!(Number.isFinite(cooldownMs) && cooldownMs >= 0)) {
      throw new RangeError(
        `Cannot create circuit breaker as 'cooldownMs' must be a finite number >= 0: current value is ${cooldownMs}`,
      );
    }
    if (slowCallMs !== undefined && !(slowCallMs > 0)) {
      throw new RangeError(
        `Cannot create circuit breaker as 'slowCallMs' must be a positive number: current value is ${slowCallMs}`,
      );
    }
    this.name = stateFile === undefined
      ? name
      : validateName(name, "circuit breaker name");
    this.#failureThreshold = failureThreshold;
    this.#failureRate = failureRateThreshold;
    this.#minimumThroughput = minimumThroughput;
    this.#windowMs = windowMs;
    this.#bucketMs = windowMs / BUCKETS;
    this.#cooldownMs = cooldownMs;
    this.#halfOpenMaxCalls = halfOpenMaxCalls;
    this.#successThreshold = successThreshold;
    this.#slowCallMs = slowCallMs;
    this.#isFailure = options.isFailure;
    this.#onStateChange = options.onStateChange;
    this.#clock = options.clock ?? systemClock;
    this.#store = stateFile === undefined
      ? undefined
      : new JsonStateFile(stateFile);
    this.#d = fresh(this.#clock.now(), 0, "new breaker");
  }

  /**
   * Rebuilds a breaker from a snapshot made by {@linkcode CircuitBreaker.toJSON}.
   *
   * With `stateFile`, the file (when it exists) replaces this state on the
   * next `execute()` or `refresh()`; use `restore()` to write a snapshot into
   * the file.
   *
   * @param snapshot The snapshot, e.g. parsed from JSON.
   * @param options Options for the new breaker; `name` defaults to the
   * snapshot's name.
   * @returns A breaker in the snapshot's state.
   * @throws {SturdyError} With code `corrupt_state` when the snapshot is not
   * valid.
   *
   * @example Carry a breaker's state across a restart
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const first = new CircuitBreaker({ name: "api", failureThreshold: 1 });
   * await first.execute(() => Promise.reject(new Error("down")))
   *   .catch(() => {});
   * const saved = JSON.stringify(first);
   *
   * const second = CircuitBreaker.fromJSON(JSON.parse(saved));
   * assert.equal(second.name, "api");
   * assert.equal(second.state, "open");
   * ```
   */
  static fromJSON(
    snapshot: unknown,
    options: CircuitBreakerOptions = {},
  ): CircuitBreaker {
    const named = isRecord(snapshot) && typeof snapshot.name === "string" &&
        options.name === undefined
      ? { ...options, name: snapshot.name }
      : options;
    const breaker = new CircuitBreaker(named);
    breaker.#replace(parseSnapshot(snapshot, undefined, breaker.#bucketMs));
    return breaker;
  }

  /**
   * The current state, with any due change (open to half-open after the
   * cooldown) applied first. With `stateFile`, it is the state as of the
   * last `execute()` or `refresh()`.
   *
   * @returns `"closed"`, `"open"` or `"half_open"`.
   *
   * @example A new breaker is closed
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new CircuitBreaker().state, "closed");
   * ```
   */
  get state(): CircuitState {
    if (this.#d.state === "open") this.#advance(this.#clock.now());
    return this.#isolations > 0 ? "open" : this.#d.state;
  }

  /**
   * Runs `fn` if the breaker lets the call through, and records how it went.
   * A thrown error counts as a failure unless `isFailure` says otherwise; a
   * call slower than `slowCallMs` counts as a failure too. The error or
   * value of `fn` is passed on unchanged.
   *
   * @typeParam T The type of the function's result.
   * @param fn The protected operation; it receives the caller's signal.
   * @param options The signal that cancels the call.
   * @returns What `fn` returned.
   * @throws {CircuitOpenError} When the breaker refuses the call (fn is not
   * run).
   * @throws {SturdyError} With code `corrupt_state` or `state_io` when the
   * state file cannot be read or written.
   *
   * @example Protect a call
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const breaker = new CircuitBreaker({ name: "api" });
   * const value = await breaker.execute(({ signal }) => {
   *   assert.equal(signal, undefined);
   *   return 42;
   * });
   * assert.equal(value, 42);
   * assert.equal(breaker.stats().successes, 1);
   * ```
   */
  execute<T>(
    fn: (context: CircuitBreakerContext) => T | Promise<T>,
    options?: CircuitExecuteOptions,
  ): Promise<T> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#store !== undefined) return this.#executeShared(fn, signal);
    let trial: Trial | undefined;
    // The closed path needs no clock and allocates nothing here.
    if (this.#d.state !== "closed" || this.#isolations > 0) {
      try {
        trial = this.#admit(this.#clock.now());
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#run(fn, signal, this.#d.generation, trial);
  }

  async #run<T>(
    fn: (context: CircuitBreakerContext) => T | Promise<T>,
    signal: AbortSignal | undefined,
    generation: number,
    trial: Trial | undefined,
  ): Promise<T> {
    const start = this.#slowCallMs === undefined ? 0 : this.#clock.now();
    let value: T;
    try {
      value = await fn(signal === undefined ? NO_SIGNAL : { signal });
    } catch (err) {
      this.#record(generation, trial, this.#verdict(err, signal), start);
      throw err;
    }
    this.#record(generation, trial, false, start);
    return value;
  }

  async #executeShared<T>(
    fn: (context: CircuitBreakerContext) => T | Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const store = this.#store!;
    if (this.#isolations > 0) this.#admit(this.#clock.now()); // throws
    let generation = 0;
    let trial: Trial | undefined;
    await store.update((current) => {
      this.#load(current);
      trial = this.#admit(this.#clock.now());
      generation = this.#d.generation;
      return this.#dirty ? this.#snapshot() : undefined;
    });
    const start = this.#slowCallMs === undefined ? 0 : this.#clock.now();
    let value: T;
    let failed: boolean | undefined = false;
    let error: unknown;
    try {
      value = await fn(signal === undefined ? NO_SIGNAL : { signal });
    } catch (err) {
      failed = this.#verdict(err, signal);
      error = err;
    }
    await store.update((current) => {
      this.#load(current);
      this.#record(generation, trial, failed, start);
      return this.#snapshot();
    });
    if (failed !== false) throw error;
    return value!;
  }

  /**
   * Loads the state file (without taking its lock), so that `state`,
   * `stats()` and `toJSON()` show what other processes did. Does nothing
   * without `stateFile`.
   *
   * @returns A promise that resolves once the state is loaded.
   * @throws {SturdyError} With code `corrupt_state` when the file is not a
   * valid breaker state.
   *
   * @example Two breakers sharing one file
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const stateFile = `${dir}/api.json`;
   * const a = new CircuitBreaker({ name: "api", stateFile, failureThreshold: 1 });
   * const b = new CircuitBreaker({ name: "api", stateFile, failureThreshold: 1 });
   * await a.execute(() => Promise.reject(new Error("down"))).catch(() => {});
   * await b.refresh();
   * assert.equal(b.state, "open");
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async refresh(): Promise<void> {
    if (this.#store !== undefined) this.#load(await this.#store.read());
  }

  /**
   * Counts and the current window. With `stateFile`, as of the last
   * `execute()` or `refresh()`.
   *
   * @returns A plain object.
   *
   * @example Count calls
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const breaker = new CircuitBreaker();
   * await breaker.execute(() => "ok");
   * await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
   * const stats = breaker.stats();
   * assert.equal(stats.calls, 2);
   * assert.equal(stats.failures, 1);
   * assert.equal(stats.window.failureRate, 0.5);
   * ```
   */
  stats(): CircuitBreakerStats {
    const now = this.#clock.now();
    const state = this.state;
    const d = this.#d;
    const [calls, failures] = this.#windowCounts(now);
    return {
      name: this.name,
      state,
      isolated: this.#isolations > 0,
      reason: d.reason,
      detail: d.detail,
      changedAt: d.changedAt,
      retryAfterMs: d.state === "open"
        ? Math.max(0, d.changedAt + this.#cooldownMs - now)
        : 0,
      consecutiveFailures: d.consecutiveFailures,
      halfOpenSuccesses: d.halfOpenSuccesses,
      trialsInFlight: d.trials.length,
      calls: d.calls,
      successes: d.successes,
      failures: d.failures,
      slowCalls: d.slowCalls,
      rejected: this.#rejected,
      window: {
        windowMs: this.#windowMs,
        calls,
        failures,
        failureRate: calls === 0 ? 0 : failures / calls,
      },
    };
  }

  /**
   * Closes the breaker and clears every count. With `stateFile` the file is
   * updated too; without it the change is made before this returns.
   *
   * @returns A promise that resolves once the state is saved.
   *
   * @example Close a tripped breaker
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const breaker = new CircuitBreaker({ failureThreshold: 1 });
   * await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
   * assert.equal(breaker.state, "open");
   * await breaker.reset();
   * assert.equal(breaker.state, "closed");
   * ```
   */
  reset(): Promise<void> {
    const apply = () => {
      const now = this.#clock.now();
      this.#d = fresh(now, this.#d.generation + 1, "reset by reset()");
      this.#dirty = true;
      this.#notify("reset", this.#d.detail, now);
    };
    return this.#change(apply);
  }

  /**
   * Replaces the state with a snapshot made by `toJSON()`. With `stateFile`
   * the file is updated too.
   *
   * @param snapshot The snapshot, e.g. parsed from JSON.
   * @returns A promise that resolves once the state is saved.
   * @throws {SturdyError} With code `corrupt_state` when the snapshot is not
   * valid (the state is left unchanged).
   *
   * @example Restore a tripped state
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const tripped = new CircuitBreaker({ failureThreshold: 1 });
   * await tripped.execute(() => Promise.reject(new Error("x"))).catch(() => {});
   * const breaker = new CircuitBreaker();
   * await breaker.restore(tripped.toJSON());
   * assert.equal(breaker.state, "open");
   * ```
   */
  restore(snapshot: unknown): Promise<void> {
    let data: Data;
    try {
      data = parseSnapshot(snapshot, undefined, this.#bucketMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#change(() => {
      // A new generation, so calls admitted before do not move it.
      data.generation = Math.max(data.generation, this.#d.generation) + 1;
      this.#replace(data);
      this.#dirty = true;
    });
  }

  /**
   * Holds the breaker open until the returned handle is released, e.g. while
   * a dependency is known to be down for maintenance. Holds nest: the
   * breaker resumes once every hold is released. Holds belong to this object
   * and are not written to a state file. Refused calls get a
   * {@linkcode CircuitOpenError} with `isolated: true`.
   *
   * @returns A handle that ends the hold; `using` and `await using` work.
   *
   * @example Hold it open for a block
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const breaker = new CircuitBreaker();
   * {
   *   using _hold = breaker.isolate();
   *   assert.equal(breaker.state, "open");
   * }
   * assert.equal(breaker.state, "closed");
   * ```
   */
  isolate(): CircuitIsolation {
    this.#isolations++;
    this.#notify("isolated", "held open by isolate()", this.#clock.now());
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const now = this.#clock.now();
      this.#advance(now);
      this.#isolations--;
      this.#notify("released", "isolate() hold released", now);
    };
    return {
      release,
      [Symbol.dispose]: release,
      [Symbol.asyncDispose]: (): Promise<void> => {
        release();
        return Promise.resolve();
      },
    };
  }

  /**
   * A plain, versioned snapshot of the state, for `fromJSON()` or
   * `restore()`; `JSON.stringify(breaker)` uses it. `isolate()` holds are
   * not included.
   *
   * @returns The snapshot.
   *
   * @example Inspect a snapshot
   * ```ts
   * import { CircuitBreaker } from "@sturdy/sturdy/retry";
   * import assert from "node:assert/strict";
   *
   * const snapshot = new CircuitBreaker({ name: "api" }).toJSON();
   * assert.equal(snapshot.format, "sturdy.breaker/1");
   * assert.equal(snapshot.state, "closed");
   * ```
   */
  toJSON(): CircuitBreakerSnapshot {
    return this.#snapshot();
  }

  // ---- state machine ------------------------------------------------------

  /** Applies a change in memory, or under the state file's lock. */
  #change(apply: () => void): Promise<void> {
    const store = this.#store;
    if (store === undefined) {
      apply();
      return Promise.resolve();
    }
    return store.update((current) => {
      this.#load(current);
      apply();
      return this.#snapshot();
    });
  }

  /**
   * Decides whether a call may start. Returns the trial lease when it is a
   * half-open trial; throws a CircuitOpenError when refused.
   */
  #admit(now: number): Trial | undefined {
    const d = this.#d;
    if (this.#isolations > 0) {
      this.#rejected++;
      throw new CircuitOpenError(this.name, Infinity, {
        isolated: true,
        detail: "held open by isolate()",
      });
    }
    this.#advance(now);
    if (d.state === "closed") return undefined;
    if (d.state === "open") {
      this.#rejected++;
      throw new CircuitOpenError(
        this.name,
        Math.max(0, d.changedAt + this.#cooldownMs - now),
        { detail: d.detail },
      );
    }
    // Half-open. A lease this object does not own (another process's, or
    // one restored from a snapshot) is dropped after a cooldown, so a crashed
    // process cannot keep the breaker half-open for ever.
    const live = d.trials.filter((t) =>
      this.#ownTrials.has(t.id) || now - t.at < this.#cooldownMs
    );
    if (live.length !== d.trials.length) this.#dirty = true;
    d.trials = live;
    if (live.length >= this.#halfOpenMaxCalls) {
      this.#rejected++;
      throw new CircuitOpenError(this.name, 0, {
        state: "half_open",
        detail:
          `${live.length} of ${this.#halfOpenMaxCalls} trial calls in flight`,
      });
    }
    const trial = { id: crypto.randomUUID(), at: now };
    live.push(trial);
    this.#ownTrials.add(trial.id);
    this.#dirty = true;
    return trial;
  }

  /**
   * Whether an error counts as a failure; `undefined` when the caller's own
   * abort ended the call (not counted at all).
   */
  #verdict(err: unknown, signal: AbortSignal | undefined): boolean | undefined {
    if (signal?.aborted && err === signal.reason) return undefined;
    const isFailure = this.#isFailure;
    if (isFailure === undefined) return true;
    try {
      return isFailure(err) !== false;
    } catch (hookError) {
      queueMicrotask(() => {
        throw hookError;
      });
      return true;
    }
  }

  /** Records how an admitted call went (`failed` undefined: not counted). */
  #record(
    generation: number,
    trial: Trial | undefined,
    failed: boolean | undefined,
    start: number,
  ): void {
    const d = this.#d;
    if (trial !== undefined) {
      this.#ownTrials.delete(trial.id);
      const i = d.trials.findIndex((t) => t.id === trial.id);
      if (i >= 0) d.trials.splice(i, 1);
      this.#dirty = true;
    }
    if (failed === undefined) return;
    const now = this.#clock.now();
    const slow = this.#slowCallMs !== undefined &&
      now - start > this.#slowCallMs;
    if (slow) {
      d.slowCalls++;
      failed = true;
    }
    d.calls++;
    if (failed) d.failures++;
    else d.successes++;
    this.#dirty = true;
    // A call admitted before the last state change does not move the
    // breaker: it was decided on under different conditions.
    if (generation !== d.generation) return;
    this.#count(now, failed);
    if (d.state === "closed") {
      if (!failed) {
        d.consecutiveFailures = 0;
        return;
      }
      d.consecutiveFailures++;
      if (this.#failureRate === undefined) {
        if (d.consecutiveFailures >= this.#failureThreshold) {
          this.#transition(
            "open",
            "consecutive_failures",
            `${d.consecutiveFailures} consecutive failures`,
            now,
          );
        }
        return;
      }
      const [calls, failures] = this.#windowCounts(now);
      if (
        calls >= this.#minimumThroughput &&
        failures / calls >= this.#failureRate
      ) {
        this.#transition(
          "open",
          "failure_rate",
          `${failures} of ${calls} calls failed in the last ${
            seconds(this.#windowMs)
          }`,
          now,
        );
      }
    } else if (d.state === "half_open") {
      if (failed) {
        this.#transition(
          "open",
          "trial_failed",
          slow ? "a trial call was too slow" : "a trial call failed",
          now,
        );
      } else if (++d.halfOpenSuccesses >= this.#successThreshold) {
        this.#transition(
          "closed",
          "trial_succeeded",
          `${d.halfOpenSuccesses} trial calls succeeded`,
          now,
        );
      }
    }
  }

  /** Moves an open breaker whose cooldown is over to half-open. */
  #advance(now: number): void {
    const d = this.#d;
    if (d.state !== "open") return;
    const due = d.changedAt + this.#cooldownMs;
    if (now < due) return;
    this.#transition(
      "half_open",
      "cooldown_elapsed",
      `cooldown of ${seconds(this.#cooldownMs)} elapsed`,
      due,
    );
  }

  #transition(
    to: CircuitState,
    reason: CircuitTransitionReason,
    detail: string,
    at: number,
  ): void {
    const d = this.#d;
    d.state = to;
    d.generation++;
    d.changedAt = at;
    d.reason = reason;
    d.detail = detail;
    d.halfOpenSuccesses = 0;
    d.trials = [];
    if (to === "closed") {
      d.consecutiveFailures = 0;
      d.bucketIds.fill(-Infinity);
    }
    this.#dirty = true;
    this.#notify(reason, detail, at);
  }

  /** Tells `onStateChange` when the visible state differs from the last one. */
  #notify(reason: CircuitTransitionReason, detail: string, at: number): void {
    const to = this.#isolations > 0 ? "open" : this.#d.state;
    const from = this.#observed;
    if (to === from) return;
    this.#observed = to;
    const handler = this.#onStateChange;
    if (handler === undefined) return;
    try {
      handler({ breaker: this.name, from, to, reason, detail, at });
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Takes the state read from the state file (undefined: none yet). */
  #load(current: unknown): void {
    this.#replace(
      current === undefined
        ? fresh(this.#clock.now(), 0, "no saved state")
        : parseSnapshot(current, this.#store!.path, this.#bucketMs),
    );
    this.#dirty = false;
  }

  #replace(data: Data): void {
    this.#d = data;
    this.#notify(data.reason, data.detail, data.changedAt);
  }

  // ---- sliding window -----------------------------------------------------

  #count(now: number, failed: boolean): void {
    const d = this.#d;
    const index = Math.floor(now / this.#bucketMs);
    const slot = mod(index, BUCKETS);
    if (d.bucketIds[slot] !== index) {
      d.bucketIds[slot] = index;
      d.bucketCalls[slot] = 0;
      d.bucketFailures[slot] = 0;
    }
    d.bucketCalls[slot]!++;
    if (failed) d.bucketFailures[slot]!++;
  }

  #windowCounts(now: number): [calls: number, failures: number] {
    const d = this.#d;
    const oldest = Math.floor(now / this.#bucketMs) - BUCKETS;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (d.bucketIds[i]! > oldest) {
        calls += d.bucketCalls[i]!;
        failures += d.bucketFailures[i]!;
      }
    }
    return [calls, failures];
  }

  // ---- snapshots ----------------------------------------------------------

  #snapshot(): CircuitBreakerSnapshot {
    const d = this.#d;
    const buckets: [number, number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) {
      if (d.bucketCalls[i]! > 0 && Number.isFinite(d.bucketIds[i])) {
        buckets.push([
          d.bucketIds[i]!,
          d.bucketCalls[i]!,
          d.bucketFailures[i]!,
        ]);
      }
    }
    return {
      format: FORMAT,
      name: this.name,
      state: d.state,
      generation: d.generation,
      changedAt: d.changedAt,
      reason: d.reason,
      detail: d.detail,
      consecutiveFailures: d.consecutiveFailures,
      halfOpenSuccesses: d.halfOpenSuccesses,
      trials: d.trials.map((t) => ({ id: t.id, at: t.at })),
      window: { bucketMs: this.#bucketMs, buckets },
      totals: {
        calls: d.calls,
        successes: d.successes,
        failures: d.failures,
        slowCalls: d.slowCalls,
      },
    };
  }
}

function fresh(now: number, generation: number, detail: string): Data {
  return {
    state: "closed",
    generation,
    changedAt: now,
    reason: "reset",
    detail,
    consecutiveFailures: 0,
    halfOpenSuccesses: 0,
    trials: [],
    calls: 0,
    successes: 0,
    failures: 0,
    slowCalls: 0,
    bucketIds: new Array<number>(BUCKETS).fill(-Infinity),
    bucketCalls: new Array<number>(BUCKETS).fill(0),
    bucketFailures: new Array<number>(BUCKETS).fill(0),
  };
}

/**
 * Checks a snapshot field by field and turns it into the working state.
 * A window saved with another bucket size is dropped (its buckets would
 * mean different times).
 */
function parseSnapshot(
  raw: unknown,
  path: string | undefined,
  bucketMs: number,
): Data {
  const bad = (why: string) => corruptStateError(path, why);
  if (!isRecord(raw)) throw bad("it is not a JSON object");
  if (raw.format !== FORMAT) {
    throw bad(
      `its format is ${JSON.stringify(raw.format)}, expected "${FORMAT}"`,
    );
  }
  const count = (value: unknown, field: string): number => {
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw bad(
        `field "${field}" is ${
          JSON.stringify(value)
        }, expected a whole number >= 0`,
      );
    }
    return value as number;
  };
  const time = (value: unknown, field: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw bad(
        `field "${field}" is ${JSON.stringify(value)}, expected a time`,
      );
    }
    return value;
  };
  const oneOf = <T extends string>(
    value: unknown,
    field: string,
    allowed: readonly T[],
  ): T => {
    if (!allowed.includes(value as T)) {
      throw bad(
        `field "${field}" is ${JSON.stringify(value)}, expected one of ${
          allowed.map((a) => `"${a}"`).join(", ")
        }`,
      );
    }
    return value as T;
  };
  if (typeof raw.detail !== "string") {
    throw bad(`field "detail" is ${JSON.stringify(raw.detail)}, expected text`);
  }
  if (!Array.isArray(raw.trials)) {
    throw bad(
      `field "trials" is ${JSON.stringify(raw.trials)}, expected a list`,
    );
  }
  const trials = raw.trials.map((t: unknown, i): Trial => {
    if (!isRecord(t) || typeof t.id !== "string") {
      throw bad(
        `field "trials[${i}]" is ${JSON.stringify(t)}, expected { id, at }`,
      );
    }
    return { id: t.id, at: time(t.at, `trials[${i}].at`) };
  });
  const window = raw.window;
  if (!isRecord(window) || !Array.isArray(window.buckets)) {
    throw bad(
      `field "window" is ${
        JSON.stringify(window)
      }, expected { bucketMs, buckets }`,
    );
  }
  const totals = raw.totals;
  if (!isRecord(totals)) {
    throw bad(
      `field "totals" is ${JSON.stringify(totals)}, expected an object`,
    );
  }
  const data = fresh(0, count(raw.generation, "generation"), raw.detail);
  data.state = oneOf(raw.state, "state", STATES);
  data.changedAt = time(raw.changedAt, "changedAt");
  data.reason = oneOf(raw.reason, "reason", REASONS);
  data.consecutiveFailures = count(
    raw.consecutiveFailures,
    "consecutiveFailures",
  );
  data.halfOpenSuccesses = count(raw.halfOpenSuccesses, "halfOpenSuccesses");
  data.trials = trials;
  data.calls = count(totals.calls, "totals.calls");
  data.successes = count(totals.successes, "totals.successes");
  data.failures = count(totals.failures, "totals.failures");
  data.slowCalls = count(totals.slowCalls, "totals.slowCalls");
  const sameBuckets = window.bucketMs === bucketMs;
  window.buckets.forEach((b: unknown, i) => {
    const field = `window.buckets[${i}]`;
    if (!Array.isArray(b) || b.length !== 3 || !Number.isSafeInteger(b[0])) {
      throw bad(
        `field "${field}" is ${
          JSON.stringify(b)
        }, expected [index, calls, failures]`,
      );
    }
    const calls = count(b[1], field);
    const failures = count(b[2], field);
    const slot = mod(b[0], BUCKETS);
    if (sameBuckets && !(data.bucketIds[slot]! > b[0])) {
      data.bucketIds[slot] = b[0];
      data.bucketCalls[slot] = calls;
      data.bucketFailures[slot] = failures;
    }
  });
  return data;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function mod(n: number, m: number): number {
  return ((n % m) + m) % m;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))}s`;
}

function positiveInteger(option: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create circuit breaker as '${option}' must be a positive integer: current value is ${value}`,
    );
  }
}
