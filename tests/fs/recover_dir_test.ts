import assert from "node:assert/strict";
import { recoverDir } from "../../fs/mod.ts";
import { isTempName, parseTempName, tempName } from "../../fs/_temp_name.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

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
