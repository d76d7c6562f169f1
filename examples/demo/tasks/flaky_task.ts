// A deliberately flaky job for the demo: it fails on its first two runs
// (a dropped connection, then an overloaded server) and succeeds on the
// third. It counts its runs in ./runs, in the directory it is started in.

const runs = Number(await Deno.readTextFile("runs").catch(() => "0")) + 1;
await Deno.writeTextFile("runs", String(runs));

console.log(`sync run ${runs}: connecting to the inventory API`);
if (runs === 1) {
  console.error("error: connection reset by peer (ECONNRESET)");
  Deno.exit(1);
}
if (runs === 2) {
  console.error("error: HTTP 503 Service Unavailable");
  Deno.exit(1);
}
console.log("synced 42 records");
