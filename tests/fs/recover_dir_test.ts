import assert from "node:assert/strict";
import {
  denoFileSystem,
  recoverDir,
  writeStream,
  writeText,
} from "../../fs/mod.ts";
import { isTempName, parseTempName, tempName } from "../../fs/_temp_name.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { faultFs, osError } from "../_helpers/fault_fs.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sturdy-recover-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ORPHAN = `.a.json.999999999-00000000-0-${"cd".repeat(12)}.sturdy-tmp`;

Deno.test("temp names carry the owner and are recognised", () => {
  const name = tempName("state.json");
  assert.ok(isTempName(name));
  assert.equal(parseTempName(name)?.pid, Deno.pid);
  assert.equal(parseTempName(name)?.base, "state.json");
  assert.ok(!isTempName("state.json"));
  assert.ok(!isTempName(".state.json.tmp"));
  assert.notEqual(tempName("a"), tempName("a"));
  assert.ok(tempName("x".repeat(300)).length < 200);
});

Deno.test("recoverDir() removes old orphans and keeps recent temps", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/${ORPHAN}`, "half");
    const recent = tempName("b.json");
    await Deno.writeTextFile(`${dir}/${recent}`, "writing");
    await Deno.writeTextFile(`${dir}/keep.json`, "{}");
    await Deno.mkdir(`${dir}/sub`);
    const clock = new FakeClock(Date.now() + 2 * 3_600_000);
    // Two hours later by the clock: without /proc (tests run without -A)
    // owners cannot be checked, so age decides.
    const first = await recoverDir(dir, { clock, maxAge: 3 * 3_600_000 });
    assert.deepEqual(first.removed, []);
    assert.deepEqual(
      first.kept.sort(),
      [`${dir}/${ORPHAN}`, `${dir}/${recent}`].sort(),
    );
    const later = await recoverDir(dir, { clock, maxAge: 3_600_000 });
    assert.ok(later.removed.includes(`${dir}/${ORPHAN}`));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(names.includes("keep.json") && names.includes("sub"));
    assert.ok(!names.includes(ORPHAN));
  }));

Deno.test("recoverDir() on a missing directory fails with not_found", () =>
  withDir(async (dir) => {
    await assert.rejects(recoverDir(`${dir}/nope`), {
      name: "DirectoryOperationError",
      code: "not_found",
    });
  }));

// Exact liveness needs /proc, which Deno opens only with --allow-all, so
// this runs in a child with -A.
Deno.test("with /proc readable, a live owner is kept however old and a dead one removed", () =>
  withDir(async (dir) => {
    const script = `
      import { recoverDir } from ${
      JSON.stringify(new URL("../../fs/mod.ts", import.meta.url).href)
    };
      import { tempName } from ${
      JSON.stringify(new URL("../../fs/_temp_name.ts", import.meta.url).href)
    };
      const dir = Deno.args[0];
      const live = tempName("a.json");
      Deno.writeTextFileSync(dir + "/" + live, "x");
      Deno.utimeSync(dir + "/" + live, 0, 0);
      // Same host and boot, pid that cannot exist: provably dead.
      const dead = live.replace("." + Deno.pid + "-", ".999999999-");
      Deno.writeTextFileSync(dir + "/" + dead, "x");
      // Same pid, other start token: the pid was reused, so dead.
      const reused = live.replace(/-([0-9a-z]+)-([0-9a-f]{24})/, "-zz$1-$2");
      Deno.writeTextFileSync(dir + "/" + reused, "x");
      const { removed, kept } = await recoverDir(dir, { maxAge: 1e12 });
      console.log(JSON.stringify({ removed: removed.length, kept: kept.map((p) => p.endsWith(live)) }));
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", script, dir],
      stderr: "inherit",
    }).output();
    assert.ok(out.success);
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(result, { removed: 2, kept: [true] });
  }));

/** Starts _slow_writer.ts on `path`; resolves once its temp holds data. */
async function slowWriter(path: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    // No --allow-all: /proc is closed, so only the temp's lock can tell.
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--no-check",
      new URL("./_slow_writer.ts", import.meta.url).pathname,
      path,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("writing")) {
    const { done, value } = await lines.read();
    if (done) throw new Error("the writer exited early");
    out += value;
  }
  await lines.cancel();
  return child;
}

function temps(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter(isTempName);
}

Deno.test("recoverDir() keeps a live (even stopped) writer's temp and removes it at once when the writer is killed", () =>
  withDir(async (dir) => {
    const child = await slowWriter(`${dir}/a.json`);
    try {
      const [temp] = temps(dir);
      assert.ok(temp, "the writer made no temp");
      assert.ok(parseTempName(temp)!.locked);
      // Alive, and alive while stopped: its lock is held either way.
      assert.deepEqual(await recoverDir(dir), {
        removed: [],
        kept: [`${dir}/${temp}`],
      });
      child.kill("SIGSTOP");
      assert.deepEqual((await recoverDir(dir)).removed, []);
      child.kill("SIGKILL");
      assert.equal((await child.status).signal, "SIGKILL");
      // Dead: removed at once, with the default maxAge of an hour.
      assert.deepEqual(await recoverDir(dir), {
        removed: [`${dir}/${temp}`],
        kept: [],
      });
      assert.deepEqual(temps(dir), []);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
  }));

Deno.test("recoverDir() keeps the temp of a write in flight in this very process", () =>
  withDir(async (dir) => {
    let finish!: () => void;
    const rest = new Promise<void>((resolve) => finish = resolve);
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (++pulls === 1) {
          controller.enqueue(new TextEncoder().encode("half"));
        } else {
          await rest;
          controller.close();
        }
      },
    }, { highWaterMark: 0 });
    const write = writeStream(`${dir}/a.txt`, stream);
    while (pulls < 2) await new Promise((r) => setTimeout(r, 1));
    const [temp] = temps(dir);
    assert.ok(temp && parseTempName(temp)!.locked);
    // A second open of the temp cannot take the lock the write holds.
    assert.deepEqual(await recoverDir(dir), {
      removed: [],
      kept: [`${dir}/${temp}`],
    });
    finish();
    await write;
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "half");
    assert.deepEqual(temps(dir), []);
  }));

Deno.test("recoverDir() removes a locked-kind temp whose lock is free, whatever its age", () =>
  withDir(async (dir) => {
    const temp = tempName("a.json", true); // as left by a killed writer
    await Deno.writeTextFile(`${dir}/${temp}`, "half");
    assert.deepEqual((await recoverDir(dir)).removed, [`${dir}/${temp}`]);
  }));

Deno.test("without kernel locks, temps are unlocked and judged by age", () =>
  withDir(async (dir) => {
    const noLocks = faultFs(denoFileSystem, [{
      op: "tryLock",
      error: () => osError("ENOLCK"),
    }]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode("x"));
        await gate;
        controller.close();
      },
    });
    const write = writeStream(`${dir}/a.txt`, stream, { fs: noLocks });
    // Its first, locked-kind temp is dropped once the lock fails.
    const unlocked = () => temps(dir).filter((n) => !parseTempName(n)!.locked);
    while (unlocked().length === 0) await new Promise((r) => setTimeout(r, 1));
    assert.equal(temps(dir).length, 1);
    release();
    await write;
    // A locked-kind temp whose lock cannot be probed falls back to age too.
    const orphan = tempName("b.json", true);
    await Deno.writeTextFile(`${dir}/${orphan}`, "half");
    const young = await recoverDir(dir, { fs: noLocks });
    assert.deepEqual(young.kept, [`${dir}/${orphan}`]);
    const clock = new FakeClock(Date.now() + 3_600_000);
    const old = await recoverDir(dir, { fs: noLocks, clock });
    assert.deepEqual(old.removed, [`${dir}/${orphan}`]);
  }));

Deno.test("a sweep that removes a temp before its writer locked it only makes the writer start over", () =>
  withDir(async (dir) => {
    let raced = 0;
    let judging: Promise<void> | undefined;
    // Between the temp's creation and its lock, a sweep judges it free
    // and removes it (or still holds its lock when the writer tries).
    const racing = {
      ...denoFileSystem,
      async open(path: string, options: Deno.OpenOptions) {
        const handle = await Deno.open(path, options);
        if (options.createNew && raced < 2) {
          raced++;
          const judge = await Deno.open(path, { read: true });
          assert.ok(await judge.tryLock(true));
          await Deno.remove(path);
          if (raced === 1) judge.close(); // else held while the writer tries
          else {
            judging = new Promise((r) => setTimeout(r, 5))
              .then(() => judge.close());
          }
        }
        return handle;
      },
    };
    await writeText(`${dir}/a.txt`, "whole", { fs: racing });
    await judging;
    assert.equal(raced, 2);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "whole");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.txt"]);
  }));
