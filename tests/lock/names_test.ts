import assert from "node:assert/strict";
import {
  acquireLock,
  breakLock,
  getTaskLock,
  inspectLock,
  tryAcquireLock,
  withLock,
} from "../../lock/mod.ts";

const BAD = ["../x", "a/b", "", "x".repeat(300), "a\0b", ".", "..", "a\\b"];

Deno.test("bad lock names are refused with invalid_name and nothing is created", async () => {
  const parent = await Deno.makeTempDir();
  const root = `${parent}/root`;
  for (const name of BAD) {
    for (
      const call of [
        () => acquireLock(name, { root }),
        () => tryAcquireLock(name, { root }),
        () => withLock(name, () => 1, { root }),
        () => inspectLock(name, { root }),
        () => breakLock(name, { root, force: true }),
        () => getTaskLock(name, { root }),
        () => acquireLock(name, { root, kind: "flock" }),
      ]
    ) {
      await assert.rejects(
        call(),
        { code: "invalid_name" },
        JSON.stringify(name),
      );
    }
  }
  assert.deepEqual([...Deno.readDirSync(parent)], []);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("every file a lock creates stays inside <root>/locks", async () => {
  const parent = await Deno.makeTempDir();
  const root = `${parent}/root`;
  await withLock("a.b-c_d", () => {}, { root });
  await withLock("a.b-c_d", () => {}, { root, kind: "flock" });
  assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["root"]);
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["locks"]);
  await Deno.remove(parent, { recursive: true });
});
