// Run by circuit_breaker_test.ts in a separate process: records failures
// into a shared breaker state file and prints what it saw as JSON.
//
// Usage: deno run --allow-read --allow-write _breaker_child.ts \
//   <stateFile> <calls> <failureThreshold> <startAtEpochMs>
import { CircuitBreaker } from "../../retry/circuit_breaker.ts";
import { CircuitOpenError } from "../../retry/circuit_open_error.ts";

const [stateFile, calls, threshold, startAt] = Deno.args;
if (stateFile === undefined || startAt === undefined) {
  throw new Error(
    "Usage: _breaker_child.ts <stateFile> <calls> <failureThreshold> <startAtEpochMs>",
  );
}
const breaker = new CircuitBreaker({
  name: "shared",
  stateFile,
  failureThreshold: Number(threshold),
});

// Start together with the sibling process so their updates interleave.
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));

let failures = 0;
let refused = 0;
for (let i = 0; i < Number(calls); i++) {
  try {
    await breaker.execute(() => {
      throw new Error("boom");
    });
  } catch (err) {
    if (err instanceof CircuitOpenError) refused++;
    else failures++;
  }
}
console.log(JSON.stringify({ failures, refused }));
