// A 100-file transaction against 100 separate durable atomic writes of the
// same 1 KiB files, in one directory, both fully durable:
//
//   deno bench -A bench/transaction_bench.ts
//
// The separate writes pay a file fsync and a directory fsync per file; the
// transaction pays one fsync per staged file (run in parallel), one for
// its journal, and a few directory fsyncs for the whole batch (group
// commit), plus the hard links and journal that make it all-or-nothing.
// Group "durable": baseline = 100 sequential writeBytes calls; "parallel"
// compares against the same writes started together with Promise.all.

import { transaction, writeBytes } from "../fs/mod.ts";

const FILES = 100;
const dir = await Deno.makeTempDir({ prefix: "sturdy-tx-bench-" });
const data = new Uint8Array(1024).fill(120);
const paths = Array.from({ length: FILES }, (_, i) => `${dir}/file-${i}.bin`);
for (const path of paths) await Deno.writeFile(path, data);

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

Deno.bench({
  name: "100 separate durable writes (sequential)",
  group: "durable",
  baseline: true,
  n: 10,
  warmup: 2,
  async fn() {
    for (const path of paths) await writeBytes(path, data);
  },
});

Deno.bench({
  name: "100 separate durable writes (Promise.all)",
  group: "durable",
  n: 10,
  warmup: 2,
  async fn() {
    await Promise.all(paths.map((path) => writeBytes(path, data)));
  },
});

Deno.bench({
  name: "one 100-file durable transaction",
  group: "durable",
  n: 10,
  warmup: 2,
  async fn() {
    await transaction(async (tx) => {
      for (const path of paths) await tx.writeBytes(path, data);
    });
  },
});

Deno.bench({
  name: "one 100-file transaction, durability none",
  group: "durable",
  n: 10,
  warmup: 2,
  async fn() {
    await transaction(async (tx) => {
      for (const path of paths) await tx.writeBytes(path, data);
    }, { durability: "none" });
  },
});
