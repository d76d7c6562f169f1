// scanDir against fdir (npm) and `find` over a generated tree of 100,000
// files: 10 top directories (one of them node_modules) × 10 × 10 leaf
// directories × 100 files, half `.ts`, half `.js`. The tree is generated
// once per process, outside the measured part, and removed at unload.
//
// Run: deno bench --allow-read --allow-write --allow-run --allow-env
//      --allow-sys bench/scan_bench.ts

import { fdir } from "fdir";
import { scanDir } from "../fs/mod.ts";

const TOP = [
  "a0",
  "a1",
  "a2",
  "a3",
  "a4",
  "a5",
  "a6",
  "a7",
  "a8",
  "node_modules",
];
const FILES_PER_DIR = 100;
const EXPECTED_FILES = TOP.length * 10 * 10 * FILES_PER_DIR;
// Files outside node_modules ending in .ts.
const EXPECTED_TS = (TOP.length - 1) * 10 * 10 * FILES_PER_DIR / 2;

const root = Deno.makeTempDirSync({ prefix: "sturdy_scan_bench_" });
addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* already gone */ }
});
const empty = new Uint8Array(0);
for (const top of TOP) {
  for (let b = 0; b < 10; b++) {
    for (let c = 0; c < 10; c++) {
      const dir = `${root}/${top}/b${b}/c${c}`;
      Deno.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < FILES_PER_DIR; f++) {
        Deno.writeFileSync(`${dir}/f${f}.${f % 2 ? "ts" : "js"}`, empty);
      }
    }
  }
}

function check(name: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${name} counted ${got}, expected ${want}`);
}

const BENCH = { n: 10, warmup: 2 };

Deno.bench({
  name: "fdir: every file",
  group: "100k files",
  baseline: true,
  ...BENCH,
  async fn() {
    const files = await new fdir().withFullPaths().crawl(root).withPromise();
    check("fdir", files.length, EXPECTED_FILES);
  },
});

Deno.bench({
  name: "scanDir: every file",
  group: "100k files",
  ...BENCH,
  async fn() {
    let n = 0;
    for await (const entry of scanDir(root, { includeDirs: false })) {
      if (entry.isFile) n++;
    }
    check("scanDir", n, EXPECTED_FILES);
  },
});

Deno.bench({
  name: "scanDir: every file, unsorted",
  group: "100k files",
  ...BENCH,
  async fn() {
    let n = 0;
    for await (
      const entry of scanDir(root, { includeDirs: false, sort: false })
    ) {
      if (entry.isFile) n++;
    }
    check("scanDir unsorted", n, EXPECTED_FILES);
  },
});

Deno.bench({
  name: "find -type f",
  group: "100k files",
  ...BENCH,
  async fn() {
    const { stdout } = await new Deno.Command("find", {
      args: [root, "-type", "f"],
      stdout: "piped",
    }).output();
    let n = 0;
    for (const byte of stdout) if (byte === 10) n++;
    check("find", n, EXPECTED_FILES);
  },
});

Deno.bench({
  name: "fdir: *.ts, node_modules excluded",
  group: "glob **/*.ts !node_modules/**",
  baseline: true,
  ...BENCH,
  async fn() {
    const files = await new fdir()
      .withFullPaths()
      .exclude((name, path) =>
        name === "node_modules" && path === `${root}/node_modules/`
      )
      .filter((path) => path.endsWith(".ts"))
      .crawl(root)
      .withPromise();
    check("fdir glob", files.length, EXPECTED_TS);
  },
});

Deno.bench({
  name: "scanDir: **/*.ts, !node_modules/**",
  group: "glob **/*.ts !node_modules/**",
  ...BENCH,
  async fn() {
    let n = 0;
    for await (
      const _ of scanDir(root, {
        include: ["**/*.ts", "!node_modules/**"],
        includeDirs: false,
      })
    ) n++;
    check("scanDir glob", n, EXPECTED_TS);
  },
});

Deno.bench({
  name: "find -name '*.ts' -prune node_modules",
  group: "glob **/*.ts !node_modules/**",
  ...BENCH,
  async fn() {
    const { stdout } = await new Deno.Command("find", {
      args: [
        root,
        "-path",
        `${root}/node_modules`,
        "-prune",
        "-o",
        "-type",
        "f",
        "-name",
        "*.ts",
        "-print",
      ],
      stdout: "piped",
    }).output();
    let n = 0;
    for (const byte of stdout) if (byte === 10) n++;
    check("find glob", n, EXPECTED_TS);
  },
});
