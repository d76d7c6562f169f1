import assert from "node:assert/strict";
import {
  denoFileSystem,
  type FileSystem,
  IoTimeoutError,
  scanDir,
  type ScanDirOptions,
  type ScanSkip,
} from "../../fs/mod.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

async function tree(files: string[], dirs: string[] = []): Promise<string> {
  const root = await Deno.makeTempDir();
  for (const d of dirs) await Deno.mkdir(`${root}/${d}`, { recursive: true });
  for (const f of files) {
    const slash = f.lastIndexOf("/");
    if (slash > 0) {
      await Deno.mkdir(`${root}/${f.slice(0, slash)}`, { recursive: true });
    }
    await Deno.writeTextFile(`${root}/${f}`, f);
  }
  return root;
}

async function collect(
  root: string,
  options?: ScanDirOptions,
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of scanDir(root, options)) out.push(e.relativePath);
  return out;
}

const FILES = [
  "b.ts",
  "a.md",
  "src/z.ts",
  "src/lib/y.tsx",
  "src/lib/x.ts",
  "node_modules/p/index.ts",
  "docs/guide.md",
];

Deno.test("scanDir() yields each directory's entries by name, then its subdirectories", async () => {
  const root = await tree(FILES);
  assert.deepEqual(await collect(root), [
    "a.md",
    "b.ts",
    "docs",
    "node_modules",
    "src",
    "docs/guide.md",
    "node_modules/p",
    "node_modules/p/index.ts",
    "src/lib",
    "src/z.ts",
    "src/lib/x.ts",
    "src/lib/y.tsx",
  ]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() entries carry name, joined path, depth and kind", async () => {
  const root = await tree(["src/a.ts"]);
  const entries = [];
  for await (const e of scanDir(root)) entries.push(e);
  assert.deepEqual(entries, [
    {
      name: "src",
      path: `${root}/src`,
      relativePath: "src",
      depth: 1,
      isFile: false,
      isDirectory: true,
      isSymlink: false,
    },
    {
      name: "a.ts",
      path: `${root}/src/a.ts`,
      relativePath: "src/a.ts",
      depth: 2,
      isFile: true,
      isDirectory: false,
      isSymlink: false,
    },
  ]);
  // A root given with a trailing slash does not double it.
  for await (const e of scanDir(`${root}/`, { maxDepth: 1 })) {
    assert.equal(e.path, `${root}/src`);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() filters with include globs and ! negations", async () => {
  const root = await tree(FILES);
  assert.deepEqual(
    await collect(root, { include: ["**/*.ts", "!node_modules/**"] }),
    ["b.ts", "src/z.ts", "src/lib/x.ts"],
  );
  assert.deepEqual(
    await collect(root, {
      include: ["**/*.{ts,tsx}"],
      exclude: ["src/lib/x.ts"],
    }),
    ["b.ts", "node_modules/p/index.ts", "src/z.ts", "src/lib/y.tsx"],
  );
  assert.deepEqual(await collect(root, { include: ["*.md"] }), ["a.md"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() never reads an excluded directory", async () => {
  const root = await tree(FILES);
  const fs = faultFs(denoFileSystem, []);
  const found = await collect(root, { exclude: ["node_modules/**"], fs });
  assert.ok(!found.some((p) => p.startsWith("node_modules")));
  const reads = fs.calls.filter((c) => c.startsWith("readDir "));
  assert.ok(reads.length > 0);
  assert.ok(!reads.some((c) => c.includes("node_modules")), reads.join("\n"));
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() does not read directories no include pattern can reach", async () => {
  const root = await tree(FILES);
  const fs = faultFs(denoFileSystem, []);
  assert.deepEqual(await collect(root, { include: ["src/lib/*"], fs }), [
    "src/lib/x.ts",
    "src/lib/y.tsx",
  ]);
  const reads = fs.calls.filter((c) => c.startsWith("readDir "))
    .map((c) => c.slice(`readDir ${root}`.length));
  assert.deepEqual(reads.sort(), ["", "/src", "/src/lib"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() stops at maxDepth and can leave out directories", async () => {
  const root = await tree(FILES);
  assert.deepEqual(await collect(root, { maxDepth: 1 }), [
    "a.md",
    "b.ts",
    "docs",
    "node_modules",
    "src",
  ]);
  assert.deepEqual(await collect(root, { maxDepth: 0 }), []);
  assert.deepEqual(
    await collect(root, {
      maxDepth: 2,
      includeDirs: false,
      exclude: ["node_modules/**"],
    }),
    ["a.md", "b.ts", "docs/guide.md", "src/z.ts"],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() with sort: false and concurrency 1 still finds everything", async () => {
  const root = await tree(FILES);
  const sorted = await collect(root);
  const unsorted = await collect(root, { sort: false, concurrency: 1 });
  assert.deepEqual([...unsorted].sort(), [...sorted].sort());
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() follows symlinks only when asked and skips a loop", async () => {
  const root = await tree(["real/a.ts"]);
  await Deno.symlink(`${root}/real`, `${root}/link`);
  await Deno.symlink(`${root}`, `${root}/real/up`); // a loop back to root
  await Deno.symlink(`${root}/missing`, `${root}/broken`);
  assert.deepEqual(await collect(root), [
    "broken",
    "link",
    "real",
    "real/a.ts",
    "real/up",
  ]);
  const skips: ScanSkip[] = [];
  const entries = [];
  for await (
    const e of scanDir(root, {
      followSymlinks: true,
      onSkip: (s) => skips.push(s),
    })
  ) entries.push(e);
  const link = entries.find((e) => e.relativePath === "link")!;
  assert.ok(link.isSymlink && link.isDirectory);
  const broken = entries.find((e) => e.relativePath === "broken")!;
  assert.ok(broken.isSymlink && !broken.isFile && !broken.isDirectory);
  assert.ok(entries.some((e) => e.relativePath === "link/a.ts"));
  // real/up and link/up both lead back to root: both are loops.
  assert.deepEqual(skips.map((s) => s.relativePath).sort(), [
    "link/up",
    "real/up",
  ]);
  assert.equal(skips[0]!.error.code, "symlink_loop");
  await assert.rejects(
    collect(root, { followSymlinks: true, strict: true }),
    { code: "symlink_loop" },
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() reports a directory that vanished mid-walk and goes on", async () => {
  const root = await tree(["a/x.ts", "b/y.ts"]);
  const vanishing: FileSystem = {
    ...denoFileSystem,
    readDir(path) {
      if (path.endsWith("/a")) Deno.removeSync(path, { recursive: true });
      return denoFileSystem.readDir(path);
    },
  };
  const skips: ScanSkip[] = [];
  const found = await collect(root, {
    fs: vanishing,
    concurrency: 1,
    onSkip: (s) => skips.push(s),
  });
  assert.deepEqual(found, ["a", "b", "b/y.ts"]);
  assert.equal(skips.length, 1);
  assert.equal(skips[0]!.relativePath, "a");
  assert.equal(skips[0]!.error.code, "not_found");
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() with strict throws for an unreadable subdirectory", async () => {
  const root = await tree(["a/x.ts"]);
  const fs = faultFs(denoFileSystem, [
    { op: "readDir", path: /\/a$/, error: () => osError("EACCES") },
  ]);
  await assert.rejects(collect(root, { fs, strict: true }), {
    name: "DirectoryOperationError",
    code: "permission_denied",
  });
  // Without strict it is skipped silently when no onSkip is given.
  assert.deepEqual(await collect(root, { fs }), ["a"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() retries a transient read error", async () => {
  const root = await tree(["a/x.ts"]);
  const fs = faultFs(denoFileSystem, [
    { op: "readDir", path: /\/a$/, nth: 1, error: () => osError("EAGAIN") },
  ]);
  assert.deepEqual(
    await collect(root, { fs, retry: { minTimeout: 1, jitter: "none" } }),
    ["a", "a/x.ts"],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() bounds each directory read by timeout", async () => {
  const root = await tree(["a/x.ts"]);
  let release = () => {};
  const hung = new Promise<void>((r) => release = r);
  const fs: FileSystem = {
    ...denoFileSystem,
    readDir(path) {
      if (!path.endsWith("/a")) return denoFileSystem.readDir(path);
      return {
        [Symbol.asyncIterator]: () => ({
          next: () =>
            hung.then(() => ({ done: true as const, value: undefined })),
        }),
      };
    },
  };
  const skips: ScanSkip[] = [];
  assert.deepEqual(
    await collect(root, { fs, timeout: 30, onSkip: (s) => skips.push(s) }),
    ["a"],
  );
  assert.ok(skips[0]!.error instanceof IoTimeoutError);
  release();
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() stops promptly when its signal aborts mid-walk", async () => {
  const root = await tree(["a/1", "a/2", "b/3", "c/4"]);
  const controller = new AbortController();
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const e of scanDir(root, { signal: controller.signal })) {
        seen.push(e.relativePath);
        if (seen.length === 2) controller.abort(new Error("stop"));
      }
    })(),
    { message: "stop" },
  );
  assert.equal(seen.length, 2);
  // An already-aborted signal yields nothing.
  await assert.rejects(
    collect(root, { signal: AbortSignal.abort(new Error("early")) }),
    { message: "early" },
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() can be broken off early without leaking reads", async () => {
  const root = await tree(["a/1", "b/2", "c/3", "d/4"]);
  for await (const _ of scanDir(root)) break;
  await Deno.remove(root, { recursive: true });
});

Deno.test("scanDir() rejects bad input before touching the disk", async () => {
  assert.throws(() => scanDir("a\0b"), { code: "invalid_path" });
  assert.throws(() => scanDir(""), { code: "invalid_path" });
  assert.throws(() => scanDir(".", { include: ["a[b"] }), {
    name: "DirectoryOperationError",
    code: "invalid_glob",
  });
  assert.throws(() => scanDir(".", { maxDepth: -1 }), {
    code: "invalid_argument",
  });
  assert.throws(() => scanDir(".", { concurrency: 0 }), {
    code: "invalid_argument",
  });
  const file = await Deno.makeTempFile();
  await assert.rejects(collect(file), {
    code: "not_a_directory",
    message: /it is a file, not a directory/,
  });
  await assert.rejects(collect(`${file}.missing`), { code: "not_found" });
  await Deno.remove(file);
});

const scratch = await Deno.makeTempDir();
await Deno.writeTextFile(`${scratch}/a.txt`, "a");

Deno.test({
  name: "scanDir() without read permission names the flag to pass",
  permissions: { read: false },
  async fn() {
    await assert.rejects(collect(scratch), {
      code: "missing_permission",
      message: /--allow-read/,
    });
  },
});

Deno.test("scanDir() cleanup of the permission scratch directory", async () => {
  await Deno.remove(scratch, { recursive: true });
});
