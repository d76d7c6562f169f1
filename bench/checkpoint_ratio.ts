// Checkpoint create and restore against raw + JSON, as paired ratios.
//
//   deno run -A bench/checkpoint_ratio.ts [--sizes 1,64] [--shapes records,blob]
//
// deno bench runs each benchmark's iterations in one block, so on a noisy
// machine (a shared VM: its disk and CPU come and go) the baseline and the
// subject are measured under different conditions, and their ratio moves
// by ±30% from run to run. Here each round runs a block of the baseline
// and a block of the checkpoint call back to back (alternating which goes
// first), and the figure is the median of the rounds' ratios, with the
// quartiles: a burst of noise spoils one round, not the figure. Each
// state runs in its own process, so none inherits another's heap, trash
// or dirty pages (after the 64 MiB runs, 1 MiB creates in the same
// process measured twice as slow, the baseline much less so).
//
// Baselines as in checkpoint_bench.ts: "raw + JSON" is the raw durable
// write of JSON.stringify's bytes (open, write, fdatasync, close, rename,
// fsync the directory), and the raw read followed by JSON.parse. The
// target (issue 5): within 1.3× at 1 MiB and above.

import { openCheckpoints } from "../checkpoint/mod.ts";
import { rawDurable } from "./_raw_durable.ts";
import { makeState, type StateShape } from "./_checkpoint_state.ts";

const MIB = 1_048_576;

function arg(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && Deno.args[at + 1] ? Deno.args[at + 1]! : fallback;
}

const sizes = arg("sizes", "1,64").split(",").map(Number);
const shapes = arg("shapes", "records,blob").split(",") as StateShape[];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;

async function block(fn: () => Promise<unknown>, n: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - start) / n;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Measures one state; returns its table rows and its hash floor. */
async function measure(
  shape: StateShape,
  mib: number,
): Promise<{ rows: string[]; floor: string }> {
  const root = await Deno.makeTempDir({ prefix: "sturdy-ckpt-ratio-" });
  try {
    // Fewer, longer blocks for big states.
    const [rounds, n] = mib >= 16 ? [5, 2] : [15, 10];
    const state = makeState(shape, mib * MIB);
    const raw = `${root}/raw.json`;
    await rawDurable(raw, encoder.encode(JSON.stringify(state)));
    await using checkpoints = await openCheckpoints<unknown>({
      agentId: `${shape}-${mib}`,
      root,
      maxBytes: 256 * MIB,
      // Restored many times over without a healthy sign.
      poisonAfter: Number.MAX_SAFE_INTEGER,
    });
    await checkpoints.create("routine", { state });
    // The floor under any verified restore: hashing the payload once.
    const bytes = await Deno.readFile(raw);
    const hashTimes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      hashTimes.push(
        await block(() => crypto.subtle.digest("SHA-256", bytes), n),
      );
    }
    const floor = `${shape} ${mib} MiB: SHA-256 of the payload ${
      median(hashTimes).toFixed(2)
    } ms`;
    const pairs: Array<
      [string, () => Promise<unknown>, () => Promise<unknown>]
    > = [
      [
        "create",
        () => rawDurable(raw, encoder.encode(JSON.stringify(state))),
        () => checkpoints.create("routine", { state }),
      ],
      [
        "restore",
        async () => JSON.parse(decoder.decode(await Deno.readFile(raw))),
        () => checkpoints.restore(),
      ],
    ];
    const rows: string[] = [];
    for (const [operation, base, subject] of pairs) {
      for (let i = 0; i < 2; i++) await base(), await subject();
      const ratios: number[] = [];
      const baseTimes: number[] = [];
      const subjectTimes: number[] = [];
      for (let r = 0; r < rounds; r++) {
        let b: number;
        let s: number;
        if (r % 2 === 0) {
          b = await block(base, n);
          s = await block(subject, n);
        } else {
          s = await block(subject, n);
          b = await block(base, n);
        }
        ratios.push(s / b);
        baseTimes.push(b);
        subjectTimes.push(s);
      }
      rows.push(
        `| ${shape} ${mib} MiB | ${operation} | ${
          median(baseTimes).toFixed(2)
        } ms | ${median(subjectTimes).toFixed(2)} ms | ${
          median(ratios).toFixed(2)
        }× | ${quantile(ratios, 0.25).toFixed(2)}–${
          quantile(ratios, 0.75).toFixed(2)
        } |`,
      );
    }
    return { rows, floor };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const one = arg("one", "");
if (one) {
  const [shape, mib] = one.split(":");
  console.log(
    JSON.stringify(await measure(shape as StateShape, Number(mib))),
  );
} else {
  console.log(
    "| state | operation | raw + JSON | checkpoint | ratio (median) | quartiles |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  const floors: string[] = [];
  for (const shape of shapes) {
    for (const mib of sizes) {
      const child = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-sys",
          new URL(import.meta.url).pathname,
          "--one",
          `${shape}:${mib}`,
        ],
        stderr: "inherit",
      }).output();
      if (!child.success) throw new Error(`${shape} ${mib} MiB failed`);
      const result = JSON.parse(new TextDecoder().decode(child.stdout));
      for (const row of result.rows) console.log(row);
      floors.push(result.floor);
    }
  }
  console.log(`\nWork a verified restore cannot skip (WebCrypto, median):`);
  for (const line of floors) console.log(`  ${line}`);
}
