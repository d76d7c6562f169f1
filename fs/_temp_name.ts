// Temp file names that say who owns them, so a sweep can tell a live
// writer's temp from an orphan left by a killed process.
//
// Format: `.<base>.<pid>-<boot>-<start>-<random>[-l].sturdy-tmp`
//   base    the target's name (cut to 80 characters), so `ls -a` shows
//           what the temp was for
//   pid     the writing process
//   boot    the first 8 hex digits of /proc/sys/kernel/random/boot_id: it
//           names this host and this boot, so a pid from another host or
//           from before a reboot is never mistaken for a local process
//   start   the process start time in clock ticks since boot
//           (/proc/<pid>/stat field 22), base 36: a reused pid has another
//   random  96 random bits, so names never collide
//   -l      the writer holds the temp's kernel lock from just after its
//           creation until it is renamed or removed (fs/_file_lock.ts)
// `boot` and `start` are `x` where they cannot be read (not Linux, or Deno
// without --allow-all, which alone may read /proc).
//
// Invariant: a temp whose owner is provably alive is never judged an
// orphan. Proof, strongest first: the kernel lock of an `-l` temp (held:
// alive; free: dead); the owner's pid and start token, where /proc can be
// read; failing both, the temp is an orphan only once it has not been
// modified for `maxAgeMs` (a live writer keeps touching it).

const SUFFIX = ".sturdy-tmp";
const PATTERN =
  /^\.(.*)\.(\d+)-([0-9a-f]{8}|x)-([0-9a-z]+|x)-([0-9a-f]{24})(-l)?\.sturdy-tmp$/;

/** Who wrote a temp file, as read from its name. */
export interface TempOwner {
  /** The target's name (possibly cut). */
  base: string;
  /** The writer's pid. */
  pid: number;
  /** The writer's boot id prefix, or `x`. */
  boot: string;
  /** The writer's start token, or `x`. */
  start: string;
  /** Whether the writer holds the temp's kernel lock while it lives. */
  locked: boolean;
}

/** Whether a temp's owner is alive, dead, or cannot be told. */
export type OwnerState = "alive" | "dead" | "unknown";

let selfToken: { boot: string; start: string } | undefined;

function readOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function bootId(): string {
  const id = readOrUndefined("/proc/sys/kernel/random/boot_id");
  const hex = id?.replaceAll("-", "").trim().slice(0, 8);
  return hex && /^[0-9a-f]{8}$/.test(hex) ? hex : "x";
}

/** The start token of `pid` (field 22 of /proc/<pid>/stat), or undefined. */
function startToken(pid: number | "self"): string | undefined {
  const stat = readOrUndefined(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2 (the command) may hold spaces and parentheses: split after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[19]);
  return Number.isSafeInteger(ticks) ? ticks.toString(36) : undefined;
}

// This process's identity never changes, so it is read once.
function self(): { boot: string; start: string } {
  if (!selfToken) {
    const boot = bootId();
    selfToken = { boot, start: boot === "x" ? "x" : startToken("self") ?? "x" };
  }
  return selfToken;
}

/**
 * A fresh temp file name for a target named `base`, owned by this process.
 * `locked` promises that the writer holds the temp's kernel lock for as
 * long as the temp exists.
 */
export function tempName(base: string, locked = false): string {
  const random = new Uint8Array(12);
  crypto.getRandomValues(random);
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0"))
    .join("");
  const { boot, start } = self();
  const flag = locked ? "-l" : "";
  return `.${
    base.slice(0, 80)
  }.${Deno.pid}-${boot}-${start}-${hex}${flag}${SUFFIX}`;
}

/**
 * Whether `name` (a file name, not a path) is a Sturdy temp file.
 *
 * @param name A file name.
 * @returns `true` for a name made by Sturdy's atomic writes.
 */
export function isTempName(name: string): boolean {
  return name.endsWith(SUFFIX) && PATTERN.test(name);
}

/** The owner recorded in a temp file name, or undefined if it is not one. */
export function parseTempName(name: string): TempOwner | undefined {
  const m = PATTERN.exec(name);
  if (!m) return undefined;
  return {
    base: m[1]!,
    pid: Number(m[2]),
    boot: m[3]!,
    start: m[4]!,
    locked: m[6] !== undefined,
  };
}

/**
 * Whether the owner provably ran on another boot or host (both boot ids
 * known and different). A kernel lock proves nothing about such an owner:
 * on a network file system locks may be local to each host.
 */
export function isOtherBoot(owner: TempOwner): boolean {
  const me = self();
  return owner.boot !== "x" && me.boot !== "x" && owner.boot !== me.boot;
}

/**
 * Whether the process that owns a temp is alive. Only a same-boot owner on
 * this host can be checked: its pid must exist with the same start token.
 */
export function ownerState(owner: TempOwner): OwnerState {
  const me = self();
  if (owner.boot === "x" || owner.start === "x" || me.boot !== owner.boot) {
    return "unknown";
  }
  if (owner.pid === Deno.pid) {
    return owner.start === me.start ? "alive" : "dead";
  }
  const start = startToken(owner.pid);
  if (start === undefined) {
    // No such process, unless /proc itself cannot be read.
    return readOrUndefined("/proc/self/stat") === undefined
      ? "unknown"
      : "dead";
  }
  return start === owner.start ? "alive" : "dead";
}
