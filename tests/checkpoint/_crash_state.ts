// The states the crash and concurrency children write: versioned and
// checksummed, so a reader can tell a whole, correct state from a torn or
// mixed one without trusting the checkpoint's own checksum.

import { sha256 } from "../_helpers/sha256.ts";

/** A checkpointed state: `body` is fixed by `version`, `sha256` covers it. */
export interface CrashState {
  version: number;
  body: string;
  sha256: string;
}

/** The body of `version`: sizes vary from 0 to ~40 KB. */
function bodyFor(version: number): string {
  const size = (version * 7919) % 40_000;
  return String.fromCharCode(97 + version % 26).repeat(size);
}

/** The state written for `version`. */
export async function stateFor(version: number): Promise<CrashState> {
  const body = bodyFor(version);
  return { version, body, sha256: await sha256(body) };
}

/** Throws unless `value` is exactly the state written for its version. */
export async function checkState(value: unknown): Promise<CrashState> {
  const state = value as CrashState;
  if (
    typeof state?.version !== "number" || typeof state.body !== "string" ||
    typeof state.sha256 !== "string"
  ) {
    throw new Error(
      `not a crash state: ${JSON.stringify(value)?.slice(0, 80)}`,
    );
  }
  if (state.body !== bodyFor(state.version)) {
    throw new Error(`version ${state.version} holds another version's body`);
  }
  if (await sha256(state.body) !== state.sha256) {
    throw new Error(`version ${state.version} has a torn body`);
  }
  return state;
}

/**
 * The command line that runs `_create_child.ts` (creates checkpoints in
 * another process) on `root` with `args`.
 */
export function createChildArgs(root: string, args: string[]): string[] {
  return [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    "--allow-run",
    "--no-check",
    new URL("./_create_child.ts", import.meta.url).pathname,
    root,
    ...args,
  ];
}
