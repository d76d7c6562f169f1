// Runs the real CLI in a subprocess under exactly the permission flags the
// `compile` task bakes into the binary, read from deno.json so the two can
// never drift apart.

import { compileFlags } from "../../examples/_compile_flags.ts";

const ROOT = new URL("../../", import.meta.url);
const CLI = new URL("cli.ts", ROOT).pathname;

export { compileFlags };

/** What a CLI run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sturdy <args>` in `cwd` and waits for it. */
export async function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; stdin?: string },
): Promise<CliRun> {
  const child = await spawnCli(args, {
    ...options,
    stdin: options.stdin !== undefined,
  });
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Starts `sturdy <args>` in `cwd` with piped output. */
export async function spawnCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; stdin?: boolean },
): Promise<Deno.ChildProcess> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...await compileFlags(), CLI, ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** A shell command that fails until it has run `n` times (counted in ./count). */
export function flakyCommand(n: number): string[] {
  return [
    "sh",
    "-c",
    `c=$(cat count 2>/dev/null || echo 0); c=$((c+1)); echo $c > count; echo "run $c"; [ $c -ge ${n} ]`,
  ];
}
