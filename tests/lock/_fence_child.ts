// A holder for the paused-holder tests: takes the lock named after FILE,
// begins a fenced updateJson, signals (ROOT/read) and sleeps inside its
// callback, where the test stops it with SIGSTOP; then reports
// ROOT/result: { wrote | refused, message, compromised }.
//
//   deno run -A _fence_child.ts ROOT FILE [local]
// Without "local" it claims another host, so only its heartbeat can show
// it alive to the test process.

import { acquireLock, lockNameForPath, updateJson } from "../../lock/mod.ts";

const [root, file, mode] = Deno.args as [string, string, string?];
const remote = mode !== "local";
const lock = await acquireLock(await lockNameForPath(file), {
  root,
  ttl: 600,
  heartbeat: 150,
  ...(remote ? { host: "elsewhere.invalid" } : {}),
});
let result: Record<string, unknown>;
try {
  await updateJson<number>(file, async (n) => {
    await Deno.writeTextFile(`${root}/read`, "");
    await new Promise((r) => setTimeout(r, 400)); // stopped in here
    return n! + 1;
  }, { root, lock });
  result = { wrote: true };
} catch (err) {
  result = {
    refused: (err as { code?: string }).code,
    message: (err as Error).message,
  };
}
// The heartbeat notices a takeover within one beat of continuing.
const until = Date.now() + 2_000;
while (remote && !lock.compromised && Date.now() < until) {
  await new Promise((r) => setTimeout(r, 20));
}
result.compromised = lock.compromised;
await lock.release().catch(() => {});
await Deno.writeTextFile(`${root}/result`, JSON.stringify(result));
