// `deno task demo`: runs examples/demo/episode.yaml through the `sturdy
// episode` CLI, under exactly the permissions the compiled binary gets.
//
// The first run starts from a clean state (work/ reset from seed/): a
// durable write, a flaky task that recovers, two tasks sharing a counter
// under a lock, a migration rolled back byte for byte, an optional task
// skipped, one escalated to a person, checkpoints along the way. Running it
// again resumes: finished tasks are not redone. `deno task demo --fresh`
// starts over.

import { compileFlags } from "./_compile_flags.ts";

const root = new URL("../", import.meta.url);
const cli = new URL("cli.ts", root).pathname;
const dir = new URL("examples/demo/", root).pathname;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const fresh = Deno.args.includes("--fresh") ||
  !await exists(`${dir}.sturdy/episodes/demo/state.json`);
if (fresh) {
  await Deno.remove(`${dir}.sturdy`, { recursive: true }).catch(() => {});
  await Deno.remove(`${dir}work`, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}work`);
  for (const name of ["config.json", "users.csv", "counter.json"]) {
    await Deno.copyFile(`${dir}seed/${name}`, `${dir}work/${name}`);
  }
}

const args = [
  "--verbose",
  "episode",
  "run",
  "episode.yaml",
  ...(fresh ? [] : ["--resume"]),
];
console.log(
  fresh
    ? "Sturdy demo: an episode of seven tasks that fail in the usual ways.\n"
    : "Sturdy demo, run again: resuming, so finished tasks are not redone.\n",
);
console.log(`$ cd examples/demo && sturdy ${args.join(" ")}\n`);
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["run", ...await compileFlags(), cli, ...args],
  cwd: dir,
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
  env: { NO_COLOR: "1" },
}).spawn().status;

const counter = await Deno.readTextFile(`${dir}work/counter.json`);
const config = await Deno.readTextFile(`${dir}work/config.json`);
console.log(`
work/counter.json: ${counter.trim()}   (two tasks, one lock: no lost update)
work/config.json:  ${config.trim()}   (the failed migration was rolled back)`);
if (code === 3) {
  console.log(`
Exit code 3: the episode is waiting for a person (the "publish" task). Try:
  deno task cli recover escalations --home examples/demo/.sturdy
  deno task cli recover resolve demo.publish --action skip --home examples/demo/.sturdy
  deno task demo            # resumes: nothing finished is redone
  deno task demo --fresh    # starts over from seed/`);
  Deno.exitCode = 0;
} else {
  Deno.exitCode = code;
}
