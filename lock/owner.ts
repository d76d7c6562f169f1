// Who holds a lock, and whether that process is still alive.
//
// Liveness evidence, strongest first (the backends combine them):
//   1. a kernel lock on the lock's liveness file (Deno.FsFile.tryLock):
//      held means alive, free means the holder closed it or died (the
//      kernel releases it even after kill -9). Needs only read and write
//      permission on the root.
//   2. same host: the pid (Deno.kill(pid, 0)) and its start token
//      (`ps -o stat=,lstart=`), so a reused pid is not mistaken for the
//      owner. Needs --allow-run. Deno refuses /proc reads below
//      --allow-all, which is why fs/_temp_name.ts's /proc reader is not
//      used here: `ps` works under --allow-run alone.
//   3. another host: only the heartbeat can show it alive (a lease).
// Invariant: a holder is "dead" only on positive evidence; missing
// permissions or tools give "unknown", which never lets a lock be taken.

/** The format tag of an owner file. */
export const OWNER_FORMAT = "sturdy.lock/1";

/** The owner record of a held lock (`owner.json`, DESIGN.md section 5). */
export interface LockOwner {
  /** Always `"sturdy.lock/1"`. */
  format: typeof OWNER_FORMAT;
  /** 128 random bits naming this acquisition. */
  token: string;
  /** The fencing token: larger than every earlier acquisition's. */
  fence: number;
  /** The holder's process id. */
  pid: number;
  /** The holder's host name. */
  host: string;
  /** The holder's process start time (`ps` lstart, UTC), or `null`. */
  processStart: string | null;
  /** When the lock was acquired (ms since the epoch). */
  acquiredAt: number;
  /** The latest heartbeat (ms since the epoch). */
  heartbeatAt: number;
  /** The lease in milliseconds. */
  ttlMs: number;
  /** The holder's stated purpose, or `null`. */
  purpose: string | null;
}

/** Whether a lock's holder is alive, provably dead, or cannot be told. */
export type HolderState = "alive" | "dead" | "unknown";

/** Reads an owner record from parsed JSON; undefined if it is not one. */
export function parseOwner(value: unknown): LockOwner | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  if (
    o.format !== OWNER_FORMAT || typeof o.token !== "string" ||
    !isNum(o.fence) || !isNum(o.pid) || typeof o.host !== "string" ||
    !isNum(o.acquiredAt) || !isNum(o.heartbeatAt) || !isNum(o.ttlMs) ||
    !(o.processStart === null || typeof o.processStart === "string") ||
    !(o.purpose === null || typeof o.purpose === "string")
  ) {
    return undefined;
  }
  return o as unknown as LockOwner;
}

/** A fresh 128-bit token in hex. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** This machine's name, or `"unknown"` without --allow-sys=hostname. */
export function localHost(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * Whether an owner recorded `host` is this machine, seen from `self`. An
 * unknown host name never matches: local proofs then do not apply.
 */
export function isSameHost(self: string, host: string): boolean {
  return self !== "unknown" && self === host;
}

interface PsReading {
  zombie: boolean;
  start: string;
}

/** `ps -o stat=,lstart=` for one pid; undefined if it cannot be run. */
async function readPs(pid: number): Promise<PsReading | null | undefined> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ps", {
      args: ["-o", "stat=,lstart=", "-p", String(pid)],
      // A fixed zone and locale make the start time comparable between
      // processes whatever their environment.
      env: { TZ: "UTC", LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch {
    return undefined; // no permission (--allow-run) or no `ps`
  }
  const line = new TextDecoder().decode(output.stdout).trim();
  // `ps -p` exits 1 with no line when the pid does not exist.
  if (!line) return output.code === 1 ? null : undefined;
  const [stat = "", ...rest] = line.split(/\s+/);
  const text = rest.join(" ");
  const parsed = Date.parse(`${text} UTC`);
  const start = Number.isNaN(parsed) ? text : new Date(parsed).toISOString();
  return { zombie: stat.startsWith("Z"), start };
}

/**
 * The start token of a process: its start time as `ps` reports it, in
 * UTC. `null` when it cannot be read (no --allow-run, no `ps`, no such
 * process).
 *
 * @param pid The process.
 * @returns The token, or `null`.
 */
export async function processStartToken(pid: number): Promise<string | null> {
  const reading = await readPs(pid);
  return reading ? reading.start : null;
}

// This process's start never changes: read once (an immutable fact, not
// shared mutable state).
let ownStart: Promise<string | null> | undefined;

/** This process's start token (read once). */
export function ownProcessStart(): Promise<string | null> {
  ownStart ??= processStartToken(Deno.pid);
  return ownStart;
}

/** Evidence about a pid on this host: a state and why. */
export interface PidEvidence {
  /** The verdict. */
  state: HolderState;
  /** Why, for people. */
  evidence: string;
}

/**
 * Whether process `pid` on this host is the owner that recorded
 * `processStart`: gone, a zombie, or another process with the same pid is
 * `"dead"`; the same start time is `"alive"`; anything that cannot be
 * checked is `"unknown"`.
 *
 * @param pid The recorded pid.
 * @param processStart The recorded start token.
 * @returns The verdict and the evidence.
 */
export async function pidEvidence(
  pid: number,
  processStart: string | null,
): Promise<PidEvidence> {
  if (pid === Deno.pid) {
    const own = await ownProcessStart();
    return own !== null && processStart !== null && own !== processStart
      ? {
        state: "dead",
        evidence: `pid ${pid} was reused (start token differs)`,
      }
      : { state: "alive", evidence: `pid ${pid} is this process` };
  }
  try {
    // Signal 0 checks existence without delivering anything.
    Deno.kill(pid, 0 as unknown as Deno.Signal);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { state: "dead", evidence: `pid ${pid} is gone` };
    }
    if (!(err instanceof Deno.errors.PermissionDenied)) {
      // NotCapable (no --allow-run) or a platform without signal 0.
      return {
        state: "unknown",
        evidence: `cannot check pid ${pid} (needs --allow-run)`,
      };
    }
    // EPERM: the process exists but belongs to another user.
  }
  const reading = await readPs(pid);
  if (reading === null) {
    return { state: "dead", evidence: `pid ${pid} is gone` };
  }
  if (reading === undefined) {
    return {
      state: "unknown",
      evidence:
        `pid ${pid} exists; its start time cannot be read (needs ps and --allow-run)`,
    };
  }
  if (reading.zombie) {
    return { state: "dead", evidence: `pid ${pid} has exited (zombie)` };
  }
  if (processStart === null) {
    return {
      state: "unknown",
      evidence: `pid ${pid} exists; the owner recorded no start token`,
    };
  }
  return reading.start === processStart
    ? { state: "alive", evidence: `pid ${pid} is alive (same start token)` }
    : {
      state: "dead",
      evidence:
        `pid ${pid} was reused by another process (start token differs)`,
    };
}
