// `deno task demo`: runs a flaky job through the `sturdy retry` CLI, under
// exactly the permissions the compiled binary gets, and shows it recover.
//
// The job fails twice (a dropped connection, then an HTTP 503) and succeeds
// on its third run; Sturdy prints one notice per retry and exits 0.

import { compileFlags } from "./_compile_flags.ts";

const root = new URL("../", import.meta.url);
const cli = new URL("cli.ts", root).pathname;
const job = new URL("examples/flaky_task.ts", root).pathname;

const flags = await compileFlags();

const work = await Deno.makeTempDir({ prefix: "sturdy-demo-" });
const args = [
  "--verbose",
  "retry",
  "--attempts",
  "5",
  "--delay",
  "400ms",
  "--timeout",
  "30s",
  "--",
  Deno.execPath(),
  "run",
  "--allow-read=.",
  "--allow-write=.",
  job,
];

console.log("Sturdy demo: a flaky job that fails twice, then succeeds.\n");
console.log(`$ sturdy ${args.slice(0, 9).join(" ")} deno run flaky_task.ts\n`);
try {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, cli, ...args],
    cwd: work,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn().status;
  const runs = await Deno.readTextFile(`${work}/runs`);
  console.log(
    code === 0
      ? `\nResult: sturdy retry exited 0; the job succeeded on run ${runs} of at most 5.`
      : `\nResult: sturdy retry exited ${code} after ${runs} runs.`,
  );
  Deno.exitCode = code;
} finally {
  await Deno.remove(work, { recursive: true });
}
