// Durable atomic writes: Sturdy's writeBytes against the raw syscall
// sequence written inline (the limit), Deno.writeFile (no durability, not
// atomic) and write-file-atomic (atomic, fsyncs the file but not the
// directory), on 1 KiB, 1 MiB and 64 MiB files.
//
//   deno bench -A bench/fs_write_bench.ts
//
// Target: writeBytes (durable) within 1.15x of the raw sequence.

import writeFileAtomic from "write-file-atomic";
import { writeBytes } from "../fs/mod.ts";
import { rawDurable } from "./_raw_durable.ts";

const dir = await Deno.makeTempDir({ prefix: "sturdy-bench-" });
const SIZES: Array<[string, number, number]> = [
  ["1 KiB", 1024, 200],
  ["1 MiB", 1024 * 1024, 50],
  ["64 MiB", 64 * 1024 * 1024, 5],
];

for (const [label, size, n] of SIZES) {
  const data = new Uint8Array(size).fill(97);
  const group = `write ${label}`;
  const path = `${dir}/${size}.bin`;
  Deno.bench({
    name: `raw durable sequence ${label}`,
    group,
    baseline: true,
    n,
    warmup: 2,
  }, async () => {
    await rawDurable(path, data);
  });
  Deno.bench({
    name: `sturdy writeBytes durable ${label}`,
    group,
    n,
    warmup: 2,
  }, async () => {
    await writeBytes(path, data);
  });
  Deno.bench(
    { name: `sturdy writeBytes atomic ${label}`, group, n, warmup: 2 },
    async () => {
      await writeBytes(path, data, { durability: "atomic" });
    },
  );
  Deno.bench(
    { name: `sturdy writeBytes none ${label}`, group, n, warmup: 2 },
    async () => {
      await writeBytes(path, data, { durability: "none" });
    },
  );
  Deno.bench(
    { name: `Deno.writeFile ${label}`, group, n, warmup: 2 },
    async () => {
      await Deno.writeFile(path, data);
    },
  );
  Deno.bench(
    { name: `write-file-atomic ${label}`, group, n, warmup: 2 },
    async () => {
      await writeFileAtomic(path, data);
    },
  );
}

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
