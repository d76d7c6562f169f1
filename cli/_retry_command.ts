// `sturdy retry`: runs a command until it succeeds, with backoff.
//
// Invariants:
// - At most one child runs at a time, and the CLI never exits while a child
//   it started is still alive: a timed-out or interrupted child is sent
//   SIGTERM, then SIGKILL after --kill-after, and is waited for.
// - The exit code is the child's last code (124 when Sturdy killed it on a
//   time limit, 128+n when a signal killed it), 4 when the breaker refused,
//   127 when the command cannot be found.

import {
  AttemptTimeoutError,
  CircuitBreaker,
  CircuitOpenError,
  DeadlineExceededError,
  formatDuration,
  type Jitter,
  retry,
  validateName,
} from "../retry/mod.ts";
import { CliError, UsageError } from "./_cli_error.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader } from "./_flags.ts";
import {
  exitCodeOf,
  onInterrupt,
  signalExitCode,
  spawnCommand,
} from "./_child.ts";

/** `sturdy retry --help`. */
export const RETRY_HELP =
  `Run a command until it succeeds, retrying failures with exponential backoff.

Usage:
  sturdy retry [options] -- CMD [ARGS...]

Options:
  --attempts N          Attempts in all, the first included (default: 5)
  --delay D             Delay before the first retry (default: 1s)
  --max-delay D         Longest delay between attempts (default: 60s)
  --multiplier X        Growth of the delay per retry (default: 2)
  --jitter J            full | equal | decorrelated | none, or 0..1 (default: full)
  --timeout D           Kill an attempt that runs longer than D (exit 124 if it was the last)
  --kill-after D        After --timeout's SIGTERM, wait D, then SIGKILL (default: 5s)
  --deadline D          Give up when D has passed in all; never start an attempt that cannot finish
  --retry-on-exit CODES Retry only these exit codes, e.g. 1,75-78 (default: any non-zero)
  --breaker NAME        Run every attempt through the circuit breaker NAME, shared by
                        every sturdy process through <home>/breakers/NAME.json
  --breaker-threshold N Consecutive failures that open the breaker (default: 5)
  --breaker-cooldown D  How long an open breaker refuses before a trial (default: 30s)

${GLOBAL_HELP}

Durations: 250ms, 1.5s, 2m, 1h, 7d.
Stdin, stdout and stderr are passed through (with --json the command's stdout goes to
stderr, so stdout holds only the JSON result). SIGINT and SIGTERM are forwarded to the
command, and no further attempt is started.

Exit codes:
  0     the command succeeded
  N     every attempt failed: the command's last exit code (128+n if signal n killed it)
  124   the last attempt was killed by --timeout or --deadline
  4     the breaker is open (the command was not run)
  127   the command was not found
  2     bad options

Examples:
  sturdy retry -- curl -fsS https://example.com/health
  sturdy retry --attempts 3 --delay 500ms --timeout 10s -- ./sync.sh
  sturdy retry --deadline 2m --retry-on-exit 75 --breaker api -- deno task upload
  sturdy retry --json -- make test > result.json`;

const OPTIONS = {
  attempts: { type: "string" },
  delay: { type: "string" },
  "max-delay": { type: "string" },
  multiplier: { type: "string" },
  jitter: { type: "string" },
  timeout: { type: "string" },
  "kill-after": { type: "string" },
  deadline: { type: "string" },
  "retry-on-exit": { type: "string" },
  breaker: { type: "string" },
  "breaker-threshold": { type: "string" },
  "breaker-cooldown": { type: "string" },
} as const;

/** How one attempt of the child ended. */
interface AttemptRecord {
  attempt: number;
  exitCode: number;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
}

/** A failed attempt, as the retry loop sees it. */
class ChildFailed extends Error {
  constructor(readonly record: AttemptRecord, readonly retryable: boolean) {
    super(describe(record));
    this.name = "ChildFailed";
  }
}

function describe(r: AttemptRecord): string {
  if (r.timedOut) return `timed out after ${formatDuration(r.durationMs)}`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.exitCode}`;
}

/** The flags of `sturdy retry`, for parsing and for the help's checks. */
export const RETRY_OPTIONS = OPTIONS;

/**
 * Runs `sturdy retry` with its own flags and the wrapped command line;
 * returns the exit code.
 */
export async function retryCommand(
  own: string[],
  wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values } = parseCommandArgs("retry", own, OPTIONS);
  const flags = new FlagReader("retry");
  if (wrapped.length === 0) {
    throw new UsageError(
      'Missing the command to run: put it after "--", e.g. sturdy retry -- curl -fsS URL',
      "retry",
    );
  }
  const [cmd, ...cmdArgs] = wrapped as [string, ...string[]];
  const attempts = flags.integer(values.attempts, "--attempts", 5, 1);
  const minTimeout = flags.duration(values.delay, "--delay", 1_000);
  const maxTimeout = flags.duration(values["max-delay"], "--max-delay", 60_000);
  if (maxTimeout < minTimeout) {
    throw new UsageError(
      `--max-delay (${formatDuration(maxTimeout)}) is shorter than --delay (${
        formatDuration(minTimeout)
      })`,
      "retry",
    );
  }
  const multiplier = flags.number(values.multiplier, "--multiplier", 2, 1);
  const jitter = parseJitter(values.jitter);
  const timeoutMs = flags.optionalDuration(values.timeout, "--timeout");
  const killAfterMs = flags.duration(
    values["kill-after"],
    "--kill-after",
    5_000,
  );
  const deadline = flags.optionalDuration(values.deadline, "--deadline");
  const retryOn = parseExitCodes(values["retry-on-exit"]);
  const breaker = values.breaker === undefined ? undefined : openBreaker(
    values.breaker,
    ctx.home,
    flags.integer(values["breaker-threshold"], "--breaker-threshold", 5, 1),
    flags.duration(values["breaker-cooldown"], "--breaker-cooldown", 30_000),
    ctx,
  );

  const records: AttemptRecord[] = [];
  const stop = new AbortController();
  let interrupted: Deno.Signal | undefined;
  let live: Deno.ChildProcess | undefined;
  let current: Promise<AttemptRecord> | undefined;
  const interrupts = onInterrupt((sig) => {
    // The first signal is passed on; a second one kills the child at once.
    const again = interrupted !== undefined;
    if (!again) {
      interrupted = sig;
      ctx.notice(
        `received ${sig}; passing it on and starting no further attempt`,
      );
    }
    try {
      live?.kill(again ? "SIGKILL" : sig);
    } catch { /* already exited */ }
    stop.abort(new CliError(`Interrupted by ${sig}`, signalExitCode(sig)));
  });

  const runAttempt = async (attempt: number, signal: AbortSignal) => {
    const started = performance.now();
    const { child, status: exited } = spawnCommand(cmd, cmdArgs, {
      json: ctx.json,
    });
    let timedOut = false;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const kill = (why: "timeout" | "abort") => {
      if (why === "timeout") timedOut = true;
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      timers.push(setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
      }, killAfterMs));
    };
    if (timeoutMs !== undefined) {
      timers.push(setTimeout(() => kill("timeout"), timeoutMs));
    }
    // The deadline (through retry's signal) kills like a timeout; an
    // interrupt has already forwarded its own signal to the child.
    const onAbort = () => {
      if (interrupted === undefined) kill("timeout");
    };
    signal.addEventListener("abort", onAbort, { once: true });
    live = child;
    let status: Deno.CommandStatus;
    try {
      status = await exited;
    } finally {
      signal.removeEventListener("abort", onAbort);
      timers.forEach(clearTimeout);
      live = undefined;
    }
    const record: AttemptRecord = {
      attempt,
      exitCode: timedOut ? ExitCode.timedOut : exitCodeOf(status),
      signal: status.signal,
      timedOut,
      durationMs: Math.round(performance.now() - started),
    };
    records.push(record);
    if (status.success) return record;
    const retryable = timedOut || status.signal !== null ||
      (retryOn ? retryOn(status.code) : true);
    throw new ChildFailed(record, retryable);
  };

  let outcome: number;
  try {
    await retry(
      ({ attempt, signal }) => {
        const run = () => (current = runAttempt(attempt, signal));
        return breaker ? breaker.execute(run) : run();
      },
      {
        maxAttempts: attempts,
        minTimeout,
        maxTimeout,
        multiplier,
        jitter,
        signal: stop.signal,
        ...(deadline === undefined ? {} : { deadline }),
        isRetriable: (err) => err instanceof ChildFailed && err.retryable,
        onRetry: (event) => {
          const err = event.error;
          const what = err instanceof ChildFailed
            ? describe(err.record)
            : String(err);
          ctx.notice(
            `attempt ${event.attempt}/${event.maxAttempts} failed (${what}); retrying in ${
              formatDuration(event.delayMs)
            }`,
          );
        },
      },
    );
    const last = records.at(-1)!;
    if (last.attempt > 1) {
      ctx.notice(`succeeded on attempt ${last.attempt}/${attempts}`);
    }
    outcome = ExitCode.ok;
  } catch (err) {
    // Never leave a child behind: retry gives up as soon as the deadline or
    // an interrupt aborts, while the child may still be dying.
    await current?.catch(() => {});
    outcome = failureCode(err, records, ctx);
  } finally {
    interrupts[Symbol.dispose]();
  }
  if (interrupted !== undefined) {
    const last = records.at(-1);
    outcome = last && last.exitCode !== 0
      ? last.exitCode
      : signalExitCode(interrupted);
  }
  ctx.result({
    ok: outcome === ExitCode.ok,
    exitCode: outcome,
    attempts: records.length,
    command: wrapped,
    ...(interrupted ? { interrupted } : {}),
    attemptsDetail: records,
  });
  return outcome;
}

function failureCode(
  err: unknown,
  records: AttemptRecord[],
  ctx: CommandContext,
): number {
  if (err instanceof CliError && err.exitCode === ExitCode.notFound) throw err;
  const last = records.at(-1);
  if (err instanceof CircuitOpenError) {
    ctx.warn(`${err.message}; the command was not run`);
    return ExitCode.circuitOpen;
  }
  if (err instanceof CliError) return err.exitCode; // interrupted
  if (last === undefined) throw err;
  if (err instanceof ChildFailed && !err.retryable) {
    ctx.warn(
      `attempt ${last.attempt} failed (${
        describe(last)
      }); not retried (--retry-on-exit)`,
    );
  } else if (err instanceof AttemptTimeoutError) {
    ctx.warn(
      `the --deadline passed during attempt ${last.attempt}; it was stopped (${
        describe(last)
      })`,
    );
  } else if (err instanceof DeadlineExceededError) {
    ctx.warn(
      `gave up after ${
        plural(records.length, "attempt")
      }: the --deadline left no time for another (last: ${describe(last)})`,
    );
  } else {
    ctx.warn(
      `gave up after ${plural(records.length, "attempt")} (last: ${
        describe(last)
      })`,
    );
  }
  return last.exitCode;
}

function openBreaker(
  name: string,
  home: string,
  failureThreshold: number,
  cooldownMs: number,
  ctx: CommandContext,
): CircuitBreaker {
  try {
    validateName(name, "breaker name");
  } catch (err) {
    throw new UsageError((err as Error).message, "retry");
  }
  const openedAt = Date.now();
  const dir = `${home}/breakers`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  return new CircuitBreaker({
    name,
    failureThreshold,
    cooldownMs,
    stateFile: `${dir}/${name}.json`,
    // Changes loaded from the file happened in earlier runs: not news.
    onStateChange: (e) => {
      if (e.at >= openedAt) {
        ctx.notice(`breaker "${e.breaker}" ${e.from} -> ${e.to}: ${e.detail}`);
      }
    },
  });
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function parseJitter(text: string | undefined): Jitter {
  if (text === undefined) return "full";
  if (["full", "equal", "decorrelated", "none"].includes(text)) {
    return text as Jitter;
  }
  const value = Number(text);
  if (text.trim() !== "" && value >= 0 && value <= 1) return value;
  throw new UsageError(
    `Invalid --jitter ${
      JSON.stringify(text)
    }: use full, equal, decorrelated, none, or a number from 0 to 1`,
    "retry",
  );
}

/** Parses `1,75-78` into a predicate; `undefined` means any non-zero code. */
function parseExitCodes(
  text: string | undefined,
): ((code: number) => boolean) | undefined {
  if (text === undefined) return undefined;
  const ranges: Array<[number, number]> = [];
  for (const part of text.split(",")) {
    const match = /^\s*(\d{1,3})(?:\s*-\s*(\d{1,3}))?\s*$/.exec(part);
    const low = Number(match?.[1]);
    const high = match?.[2] === undefined ? low : Number(match[2]);
    if (!match || low < 1 || high > 255 || high < low) {
      throw new UsageError(
        `Invalid --retry-on-exit ${
          JSON.stringify(text)
        }: use exit codes 1-255 and ranges, e.g. 1,75-78`,
        "retry",
      );
    }
    ranges.push([low, high]);
  }
  return (code) => ranges.some(([low, high]) => code >= low && code <= high);
}
