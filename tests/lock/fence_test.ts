import assert from "node:assert/strict";
import { bumpFence, readFence } from "../../lock/_fence.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const ok = () => Promise.resolve();

Deno.test("bumpFence hands out 1, 2, 3 … and keeps two checksummed slots", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    assert.equal(await readFence(path), 0);
    for (let i = 1; i <= 5; i++) {
      assert.equal(await bumpFence(path, "x", ok), i);
    }
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, 1024);
    const lines = new TextDecoder().decode(bytes).split("\n").map((l) =>
      l.trim()
    );
    assert.match(lines[0]!, /^sturdy\.fence\/2 x 4 [0-9a-f]{8}$/);
    assert.match(lines[1]!, /^sturdy\.fence\/2 x 5 [0-9a-f]{8}$/);
  });
});

Deno.test("bumpFence survives a torn slot by using the other one", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    for (let i = 1; i <= 6; i++) await bumpFence(path, "x", ok);
    // Tear the slot of fence 6 (even: slot 0), as a crash mid-write would.
    const file = await Deno.open(path, { write: true });
    await file.write(new TextEncoder().encode("sturdy.fence/2 x 6 zz"));
    file.close();
    assert.equal(await readFence(path), 5);
    // 6 was never handed out (its write did not complete): it is reissued.
    assert.equal(await bumpFence(path, "x", ok), 6);
    assert.equal(await bumpFence(path, "x", ok), 7);
  });
});

Deno.test("bumpFence converts a sturdy.fence/1 JSON counter without going back", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ format: "sturdy.fence/1", name: "x", fence: 41 }),
    );
    assert.equal(await readFence(path), 41);
    assert.equal(await bumpFence(path, "x", ok), 42);
    assert.equal((await Deno.readFile(path)).length, 1024);
    assert.equal(await bumpFence(path, "x", ok), 43);
  });
});

Deno.test("bumpFence refuses a corrupt counter with fence_corrupt and writes nothing", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    await Deno.writeTextFile(path, "garbage");
    await assert.rejects(bumpFence(path, "x", ok), {
      code: "fence_corrupt",
      message: /neither slot is valid.*never lower it/,
    });
    assert.equal(await Deno.readTextFile(path), "garbage");
  });
});

Deno.test("bumpFence writes nothing when the check says the lock was lost", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    await bumpFence(path, "x", ok);
    const lost = () => Promise.reject(new Error("lost"));
    await assert.rejects(bumpFence(path, "x", lost), { message: "lost" });
    assert.equal(await readFence(path), 1);
  });
});
