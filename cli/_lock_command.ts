// `sturdy lock`: runs a command while holding a named lock (like flock(1)),
// shows who holds locks, and breaks abandoned ones.
//
// Invariants:
// - The command runs only while this process holds the lock, and the lock
//   is released only after the command has exited (or could not start):
//   SIGINT and SIGTERM are passed to the command, never acted on before it
//   ends, so the lock cannot be released under a still-running command.
// - If the lock is lost (this process stopped heartbeating and another
//   took it over), the command is sent SIGTERM: it is no longer protected.
// - Exit codes: the command's own (128+n if signal n killed it), 3 when the
//   lock was not acquired in time, 2 on usage errors, 127 when the command
//   cannot be found, 1 when `break` refuses a live holder.

import {
  acquireLock,
  breakLock,
  inspectLock,
  listLocks,
  type Lock,
  type LockInfo,
  type LockOptions,
  LockTimeoutError,
  tryAcquireLock,
} from "../lock/mod.ts";
import { formatDuration, validateName } from "../retry/mod.ts";
import { CliError, UsageError } from "./_cli_error.ts";
import {
  CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
  splitAtDash,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader } from "./_flags.ts";
import {
  exitCodeOf,
  onInterrupt,
  signalExitCode,
  spawnCommand,
} from "./_child.ts";

/** `sturdy lock --help`. */
export const LOCK_HELP =
  `Run a command while holding a named lock, so only one runs at a time (like flock(1)).

Usage:
  sturdy lock NAME [options] -- CMD [ARGS...]
  sturdy lock status [NAME] [--json]
  sturdy lock break NAME [--force]

Options:
  --timeout D     How long to wait for the lock; 0 tries once (default: 30s)
  --ttl D         Lease: a holder on another host whose heartbeat is older is
                  taken over (default: 30s). A holder on this host is taken over
                  only once it is dead, however long it holds the lock
  --purpose TEXT  Why the lock is held, shown by "sturdy lock status"
                  (default: the command line)
  --kind K        dir (default: a lock directory, works on NFS, inspectable) or
                  flock (a kernel lock on a file: this machine only)
  --force         With "break": remove the lock even if its holder is alive

${GLOBAL_HELP}

Durations: 250ms, 1.5s, 2m, 1h, 7d. Locks live in <home>/locks/.
The command gets STURDY_LOCK_NAME and STURDY_LOCK_FENCE (a number that grows with every
acquisition: pass it to what you write so a stale holder can be refused). SIGINT and
SIGTERM are passed to the command; the lock is released when it exits. If the lock is
lost while the command runs (this process was paused past the lease and another took
over), the command is sent SIGTERM.

"status" and "break" are subcommands unless "--" follows: "sturdy lock status -- make"
runs make under a lock named "status".

Exit codes:
  N     the command's exit code (128+n if signal n killed it)
  3     the lock was not acquired within --timeout (the message names the holder)
  127   the command was not found
  1     "break" refused: the holder is alive (use --force)
  2     bad options

Examples:
  sturdy lock deploy -- ./deploy.sh
  sturdy lock nightly --timeout 0 -- ./backup.sh        # skip if already running
  sturdy lock db-migrate --timeout 5m --purpose "schema v42" -- deno task migrate
  sturdy lock status
  sturdy lock status deploy --json
  sturdy lock break deploy`;

const OPTIONS = {
  timeout: { type: "string" },
  ttl: { type: "string" },
  purpose: { type: "string" },
  kind: { type: "string" },
  force: { type: "boolean" },
} as const;

/** The flags of `sturdy lock`, for parsing and for the help's checks. */
export const LOCK_OPTIONS = OPTIONS;

/**
 * Runs `sturdy lock` and returns the exit code. Register it with
 * `wraps: false`: the command after `--` stays in `own`, and this function
 * splits it off itself (the lock's NAME comes before the `--`, so the
 * generic split at the first bare word would take NAME for the command).
 * It also accepts the split `wraps: true` makes, by joining the two back.
 */
export async function lockCommand(
  own: string[],
  wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { before, command, dashed } = splitAtDash(own, wrapped);
  const { values, positionals } = parseCommandArgs("lock", before, OPTIONS);
  // Rebuilt from every flag, in case some came after NAME.
  ctx = new CommandContext(values, ctx.io);
  if (values.help) {
    ctx.io.stdout(LOCK_HELP + "\n");
    return ExitCode.ok;
  }
  const flags = new FlagReader("lock");
  const [first, ...rest] = positionals;
  if (!dashed && first === "status") {
    refuse(values, ["timeout", "ttl", "purpose", "kind", "force"], "status");
    if (rest.length > 1) throw extra(rest.slice(1), "status");
    return await status(rest[0], ctx);
  }
  if (!dashed && first === "break") {
    refuse(values, ["timeout", "ttl", "purpose", "kind"], "break");
    if (rest[0] === undefined) {
      throw new UsageError(
        "Missing the lock to break, e.g. sturdy lock break deploy",
        "lock",
      );
    }
    if (rest.length > 1) throw extra(rest.slice(1), "break");
    return await breakCommand(rest[0], values.force === true, ctx);
  }
  if (first === undefined) {
    throw new UsageError(
      "Missing the lock name, e.g. sturdy lock deploy -- ./deploy.sh",
      "lock",
    );
  }
  if (rest.length > 0) throw extra(rest, "NAME");
  if (command.length === 0) {
    throw new UsageError(
      `Missing the command to run: put it after "--", e.g. sturdy lock ${first} -- ./deploy.sh`,
      "lock",
    );
  }
  refuse(values, ["force"], "NAME -- CMD");
  // "0" (try once) needs no unit.
  const timeout = values.timeout === "0"
    ? 0
    : flags.optionalDuration(values.timeout, "--timeout");
  const ttl = flags.optionalDuration(values.ttl, "--ttl");
  if (ttl === 0) throw flags.invalid("--ttl", values.ttl!, "use more than 0");
  const kind = flags.choice(values.kind, "--kind", ["dir", "flock"], "dir");
  return await runLocked(checkName(first), command, ctx, {
    root: ctx.home,
    kind,
    purpose: values.purpose ?? command.join(" "),
    ...(timeout === undefined ? {} : { timeout }),
    ...(ttl === undefined ? {} : { ttl }),
  });
}

function refuse(
  values: Record<string, unknown>,
  flags: string[],
  where: string,
): void {
  for (const flag of flags) {
    if (values[flag] !== undefined) {
      throw new UsageError(
        `Option "--${flag}" does not apply to "sturdy lock ${where}"`,
        "lock",
      );
    }
  }
}

function extra(words: string[], where: string): UsageError {
  return new UsageError(
    `Unexpected ${JSON.stringify(words.join(" "))} after ${where}${
      where === "NAME" ? '; put the command to run after "--"' : ""
    }`,
    "lock",
  );
}

function checkName(name: string): string {
  try {
    return validateName(name, "lock name");
  } catch (err) {
    throw new UsageError((err as Error).message, "lock");
  }
}

/** Acquires the lock, runs the command under it, releases, and exits. */
async function runLocked(
  name: string,
  command: string[],
  ctx: CommandContext,
  options: LockOptions,
): Promise<number> {
  const [cmd, ...cmdArgs] = command as [string, ...string[]];
  let interrupted: Deno.Signal | undefined;
  let child: Deno.ChildProcess | undefined;
  const stop = new AbortController();
  const interrupts = onInterrupt((sig) => {
    // While waiting: stop waiting. While running: pass the signal on; a
    // second one kills the command at once. The lock is released only
    // after the command has exited.
    const again = interrupted !== undefined;
    interrupted ??= sig;
    if (child) {
      try {
        child.kill(again ? "SIGKILL" : sig);
      } catch { /* already exited */ }
    } else {
      stop.abort(new CliError(`Interrupted by ${sig}`, signalExitCode(sig)));
    }
  });
  try {
    const lock = await acquire(name, ctx, { ...options, signal: stop.signal });
    try {
      return await runChild(lock, cmd, cmdArgs, ctx, (c) => (child = c));
    } finally {
      child = undefined;
      await lock.release().catch((err) => {
        ctx.warn(`releasing lock "${name}": ${(err as Error).message}`);
      });
    }
  } catch (err) {
    if (err === stop.signal.reason) throw err;
    if (err instanceof LockTimeoutError) {
      throw new CliError(
        err.message,
        ExitCode.lockTimeout,
        `Wait longer with --timeout, see "sturdy lock status ${name}", or "sturdy lock break ${name}" if its holder is gone`,
      );
    }
    throw err;
  } finally {
    interrupts[Symbol.dispose]();
  }
}

/** Takes the lock, telling the user whom it waits for. */
async function acquire(
  name: string,
  ctx: CommandContext,
  options: LockOptions,
): Promise<Lock> {
  const all: LockOptions = {
    ...options,
    onCompromised: (event) =>
      ctx.warn(
        `lock "${name}" was lost (${
          event.reason === "removed"
            ? "its lock was removed, e.g. by sturdy lock break --force"
            : "another process took it over after this one stopped renewing it"
        }); sending SIGTERM to the command`,
      ),
  };
  if (options.timeout !== 0) {
    const first = await tryAcquireLock(name, { ...all, timeout: 0 });
    if (first) return first;
    const info = await inspectLock(name, { root: options.root! })
      .catch(() => null);
    if (info) ctx.notice(`waiting for lock "${name}": ${holder(info)}`);
  }
  return await acquireLock(name, all);
}

async function runChild(
  lock: Lock,
  cmd: string,
  args: string[],
  ctx: CommandContext,
  started: (child: Deno.ChildProcess) => void,
): Promise<number> {
  const { child, status: exited } = spawnCommand(cmd, args, {
    json: ctx.json,
    env: {
      STURDY_LOCK_NAME: lock.name,
      STURDY_LOCK_FENCE: String(lock.fence),
    },
  });
  started(child);
  ctx.notice(`holding lock "${lock.name}" (fence ${lock.fence})`);
  const startedAt = performance.now();
  // A lost lock no longer protects the command: stop it.
  let lost = false;
  const onLost = () => {
    if (!lock.compromised) return; // released: nothing to do
    lost = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
  };
  lock.signal.addEventListener("abort", onLost, { once: true });
  let status: Deno.CommandStatus;
  try {
    status = await exited;
  } finally {
    lock.signal.removeEventListener("abort", onLost);
  }
  const code = exitCodeOf(status);
  ctx.result({
    ok: code === 0,
    exitCode: code,
    lock: lock.name,
    fence: lock.fence,
    command: [cmd, ...args],
    durationMs: Math.round(performance.now() - startedAt),
    ...(lost ? { lost: true } : {}),
  });
  return code;
}

/** `held by pid 4121 on host ci-7 for 12.4s` */
function holder(info: LockInfo): string {
  if (!info.owner) return `its owner cannot be read (${info.evidence})`;
  const held = info.heldForMs === null
    ? ""
    : ` for ${formatDuration(info.heldForMs)}`;
  return `held by pid ${info.owner.pid} on host ${info.owner.host}${held}`;
}

async function status(
  name: string | undefined,
  ctx: CommandContext,
): Promise<number> {
  const root = ctx.home;
  let infos: LockInfo[];
  if (name !== undefined) {
    const info = await inspectLock(checkName(name), { root });
    if (info === null) {
      ctx.result({ locks: [] }, `Lock "${name}" is not held`);
      return ExitCode.ok;
    }
    infos = [info];
  } else {
    infos = await listLocks({ root });
  }
  const rows = infos.map((info) => ({
    name: info.name,
    holder: info.owner ? `${info.owner.pid}@${info.owner.host}` : "?",
    heldFor: info.heldForMs === null ? "?" : formatDuration(info.heldForMs),
    heartbeat: info.heartbeatAgeMs === null
      ? "?"
      : `${formatDuration(info.heartbeatAgeMs)} ago`,
    state: info.stale ? `${info.holder} (stale)` : info.holder,
    fence: info.owner ? String(info.owner.fence) : "?",
  }));
  ctx.result(
    { locks: infos },
    rows.length === 0 ? "No locks are held" : table(rows),
  );
  return ExitCode.ok;
}

function table(rows: Array<Record<string, string>>): string {
  const headers: Record<string, string> = {
    name: "NAME",
    holder: "HOLDER",
    heldFor: "HELD FOR",
    heartbeat: "HEARTBEAT",
    state: "STATE",
    fence: "FENCE",
  };
  const keys = Object.keys(headers);
  const widths = keys.map((k) =>
    Math.max(headers[k]!.length, ...rows.map((r) => r[k]!.length))
  );
  const line = (r: Record<string, string>) =>
    keys.map((k, i) => r[k]!.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

async function breakCommand(
  name: string,
  force: boolean,
  ctx: CommandContext,
): Promise<number> {
  const root = ctx.home;
  checkName(name);
  const info = await inspectLock(name, { root });
  if (info === null) {
    ctx.result({ broken: false, name }, `Lock "${name}" is not held`);
    return ExitCode.ok;
  }
  if (info.holder === "alive" && !force) {
    throw new CliError(
      `Refusing to break lock "${name}": ${
        holder(info)
      }, and it is alive (${info.evidence})`,
      ExitCode.failed,
      `Stop that process, or add --force if you are sure it no longer needs the lock`,
    );
  }
  const broken = await breakLock(name, { root, force });
  ctx.result(
    { broken, name, holder: info.owner, state: info.holder },
    broken
      ? `Broke lock "${name}" (it was ${
        holder(info)
      }; holder ${info.holder}: ${info.evidence})`
      : `Lock "${name}" is not held`,
  );
  return ExitCode.ok;
}
