// Checkpoint create and restore against the limit: the raw durable write
// (open, write, fdatasync, close, rename, fsync the directory) and the raw
// read of the same bytes, at 1 KiB, 1 MiB and 64 MiB, in one run.
//
//   deno bench -A bench/checkpoint_bench.ts
//
// Two state shapes: "blob" (one long string: JSON costs next to nothing,
// so the ratio shows the manager's own overhead: lock, hash, header,
// journal, retention) and "records" (many small objects, as agents keep:
// JSON.stringify and JSON.parse dominate). "raw + JSON" adds those two
// calls to the raw operation, the limit for any JSON checkpoint.
// Peak memory for a 256 MiB state: bench/checkpoint_memory.ts.
//
// Target: create and restore within 1.3× of the raw operations at 1 MiB
// and above; judged by the paired ratios of bench/checkpoint_ratio.ts,
// which hold up on a noisy machine where these blocks do not.

import { openCheckpoints } from "../checkpoint/mod.ts";
import { rawDurable } from "./_raw_durable.ts";
import { makeState } from "./_checkpoint_state.ts";

console.log(
  'Baselines: "raw" is the limit for the bytes alone; "raw + JSON" ' +
    "(JSON.stringify before the write, JSON.parse after the read) is the " +
    "fair limit for a checkpoint, which must serialise its state anyway.",
);

const root = await Deno.makeTempDir({ prefix: "sturdy-ckpt-bench-" });
const rawDir = `${root}/raw`;
await Deno.mkdir(rawDir);

const KIB = 1024;
const MIB = 1024 * KIB;
const SIZES: Array<[string, number, number]> = [
  ["1 KiB", KIB, 200],
  ["1 MiB", MIB, 40],
  ["64 MiB", 64 * MIB, 4],
];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

for (const shape of ["blob", "records"] as const) {
  for (const [label, size, n] of SIZES) {
    const state = makeState(shape, size);
    const json = encoder.encode(JSON.stringify(state));
    const rawPath = `${rawDir}/${shape}-${size}.json`;
    await rawDurable(rawPath, json);
    // Retention keeps the last 3 routine checkpoints, so the agent's
    // directory stays small however many iterations run.
    const checkpoints = await openCheckpoints<unknown>({
      agentId: `${shape}-${size}`,
      root,
      maxBytes: 128 * MIB,
      // Restored many times over without a healthy sign: keep poison
      // detection out of the measurement rather than call markHealthy()
      // (a separate, locked write) inside it.
      poisonAfter: Number.MAX_SAFE_INTEGER,
    });
    await checkpoints.create("routine", { state });
    const opts = { n, warmup: 2 };

    const create = `create ${shape} ${label} (${
      (json.length / KIB).toFixed(0)
    } KiB JSON)`;
    Deno.bench(
      {
        name: `raw durable write ${label}`,
        group: create,
        baseline: true,
        ...opts,
      },
      async () => await rawDurable(rawPath, json),
    );
    Deno.bench(
      { name: `raw + JSON.stringify ${label}`, group: create, ...opts },
      async () =>
        await rawDurable(rawPath, encoder.encode(JSON.stringify(state))),
    );
    Deno.bench(
      { name: `checkpoint create ${label}`, group: create, ...opts },
      async () => {
        await checkpoints.create("routine", { state });
      },
    );

    const restore = `restore ${shape} ${label}`;
    Deno.bench(
      { name: `raw read ${label}`, group: restore, baseline: true, ...opts },
      async () => {
        await Deno.readFile(rawPath);
      },
    );
    Deno.bench(
      { name: `raw read + JSON.parse ${label}`, group: restore, ...opts },
      async () => {
        JSON.parse(decoder.decode(await Deno.readFile(rawPath)));
      },
    );
    Deno.bench(
      { name: `checkpoint restore ${label}`, group: restore, ...opts },
      async () => {
        await checkpoints.restore();
      },
    );
  }
}

globalThis.addEventListener("unload", () => {
  Deno.removeSync(root, { recursive: true });
});
