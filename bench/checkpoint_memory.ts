// Peak memory of a checkpoint create and restore of a 256 MiB state.
//
//   deno run -A bench/checkpoint_memory.ts [MiB]
//
// Each phase runs in its own process, so one phase's peak is not another's:
// "hold" only builds the state (the floor: the agent already has it in
// memory), "create" builds it and checkpoints it, "restore" restores it
// from the checkpoint the create phase wrote. Peak RSS is the kernel's
// high-water mark (VmHWM in /proc/self/status) where there is one, else
// the highest `Deno.memoryUsage().rss` sampled every 5 ms.

import { openCheckpoints } from "../checkpoint/mod.ts";

const MIB = 1024 * 1024;
const decoder = new TextDecoder();
const [phase, root, mibText] = Deno.args;

/** A state of about `mib` MiB of JSON, in 1 MiB strings (as an agent's log). */
function makeState(mib: number): unknown {
  return {
    step: 1,
    chunks: Array.from(
      { length: mib },
      // Decoded from bytes, so each string is flat in memory (repeat()
      // builds a rope that only JSON.stringify would flatten).
      (_, i) => decoder.decode(new Uint8Array(MIB - 4).fill(97 + i % 26)),
    ),
  };
}

function highWaterMark(): number | undefined {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

async function runPhase(): Promise<void> {
  let sampled = Deno.memoryUsage().rss;
  const timer = setInterval(() => {
    sampled = Math.max(sampled, Deno.memoryUsage().rss);
  }, 5);
  const mib = Number(mibText);
  const started = performance.now();
  if (phase === "restore") {
    await using checkpoints = await openCheckpoints<unknown>({
      agentId: "memory",
      root: root!,
      maxBytes: (mib + 16) * MIB,
    });
    const { ref } = await checkpoints.restore();
    if (ref.stateBytes < mib * MIB * 0.9) throw new Error("wrong checkpoint");
  } else {
    const state = makeState(mib);
    if (phase === "create") {
      await using checkpoints = await openCheckpoints<unknown>({
        agentId: "memory",
        root: root!,
        maxBytes: (mib + 16) * MIB,
      });
      await checkpoints.create("routine", { state });
    }
  }
  const ms = performance.now() - started;
  clearInterval(timer);
  sampled = Math.max(sampled, Deno.memoryUsage().rss);
  const peak = highWaterMark() ?? sampled;
  console.log(JSON.stringify({ phase, peak, ms }));
}

async function child(phase: string, root: string, mib: number) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      phase,
      root,
      `${mib}`,
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${phase} phase failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as {
    phase: string;
    peak: number;
    ms: number;
  };
}

if (phase !== undefined && root !== undefined) {
  await runPhase();
} else {
  const mib = Number(Deno.args[0] ?? 256);
  const dir = await Deno.makeTempDir({ prefix: "sturdy-ckpt-memory-" });
  try {
    const hold = await child("hold", dir, mib);
    const create = await child("create", dir, mib);
    const restore = await child("restore", dir, mib);
    const show = (n: number) => `${(n / MIB).toFixed(0)} MiB`;
    console.log(`state: ${mib} MiB of JSON`);
    console.log(`peak RSS holding the state only: ${show(hold.peak)}`);
    console.log(
      `peak RSS create:  ${show(create.peak)} (+${
        show(create.peak - hold.peak)
      } over holding it; ${create.ms.toFixed(0)} ms)`,
    );
    console.log(
      `peak RSS restore: ${show(restore.peak)} (${
        (restore.peak / (mib * MIB)).toFixed(2)
      }× the state's JSON; ${restore.ms.toFixed(0)} ms)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
