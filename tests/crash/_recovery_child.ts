// The workload of recovery_crash_test.ts, run in a child process that the
// test kills: task "job" snapshots data.txt, and each run appends
// "start <attempt>" to runs.txt; runs 1 and 2 fail with ECONNRESET, run 3
// writes data.txt and appends "done". The process SIGKILLs itself right
// after the log record number <kill-at> is written (0: never), i.e. at
// every task-state transition in turn.
//
// Usage: deno run -A _recovery_child.ts <dir> <kill-at> [manual]
//   manual: strategy "manual" instead; prints the result as JSON.

import { join } from "node:path";
import { RecoveryManager } from "../../recovery/mod.ts";

const [dir, killAtText, mode] = Deno.args;
const killAt = Number(killAtText);
let events = 0;
const recovery = new RecoveryManager({
  root: join(dir!, ".sturdy"),
  retry: { minDelay: 1, jitter: "none", maxAttempts: 5 },
  onEvent: () => {
    if (++events === killAt) Deno.kill(Deno.pid, "SIGKILL");
  },
});
const data = join(dir!, "data.txt");
const runs = join(dir!, "runs.txt");

if (mode === "manual") {
  let calls = 0;
  const result = await recovery.execute("ask", () => {
    if (++calls === 1) throw new Error("needs a person");
    return "approved";
  }, { strategy: "manual", prompt: "Go ahead?" });
  console.log(JSON.stringify(result));
} else {
  const result = await recovery.execute("job", async (ctx) => {
    await Deno.writeTextFile(runs, `start ${ctx.attempt}\n`, { append: true });
    if (ctx.attempt < 3) {
      throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
    }
    await Deno.writeTextFile(data, "new");
    await Deno.writeTextFile(runs, "done\n", { append: true });
    return "ok";
  }, { strategy: ["retry", "rollback"], files: [data] });
  console.log(JSON.stringify({ status: result.status, events }));
}
