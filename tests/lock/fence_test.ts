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
    assert.match(lines[0]!, /^sturdy\.fence\/2 x 4 1001 \d+ [0-9a-f]{8}$/);
    assert.match(lines[1]!, /^sturdy\.fence\/2 x 5 1001 \d+ [0-9a-f]{8}$/);
  });
});

Deno.test("bumpFence survives a torn slot by using the other one", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    for (let i = 1; i <= 6; i++) await bumpFence(path, "x", ok);
    // Tear the slot of fence 6 (even: slot 0), as a crash mid-write would.
    const file = await Deno.open(path, { write: true });
    await file.write(new TextEncoder().encode("sturdy.fence/2 x 6 1001 zz"));
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

function slotLine(fence: number, reserve: number, boot: number): string {
  const body = `sturdy.fence/2 x ${fence} ${reserve} ${boot}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) {
    hash ^= body.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `${body} ${hash.toString(16).padStart(8, "0")}`.padEnd(511) + "\n";
}

Deno.test("bumpFence jumps past the synced reserve after a reboot", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    // Written during an earlier boot (boot time 1000 s after the epoch):
    // fences up to 1007 may have been handed out unsynced.
    await Deno.writeTextFile(
      path,
      slotLine(6, 1007, 1000) + slotLine(7, 1007, 1000),
    );
    assert.equal(await bumpFence(path, "x", ok), 1008);
    assert.equal(await bumpFence(path, "x", ok), 1009);
  });
});

Deno.test("bumpFence syncs a new reserve when it reaches the old one", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/x.fence`;
    await bumpFence(path, "x", ok); // creates the file; learns the boot time
    const text = await Deno.readTextFile(path);
    const boot = Number(text.split("\n")[1]!.trim().split(" ")[4]);
    await Deno.writeTextFile(path, slotLine(4, 5, boot) + slotLine(5, 5, boot));
    assert.equal(await bumpFence(path, "x", ok), 6);
    const after = (await Deno.readTextFile(path)).split("\n")[0]!.trim();
    assert.match(after, new RegExp(`^sturdy\\.fence/2 x 6 1006 ${boot} `));
  });
});

Deno.test({
  name: "bumpFence without the boot time syncs every bump and never goes back",
  permissions: { read: true, write: true, sys: false },
  async fn() {
    await inTempDir(async (dir) => {
      const path = `${dir}/x.fence`;
      // Unsynced bumps of an earlier run may have reached the reserve.
      await Deno.writeTextFile(
        path,
        slotLine(4, 1003, 1000) + slotLine(3, 1003, 1000),
      );
      assert.equal(await bumpFence(path, "x", ok), 1004);
      assert.equal(await bumpFence(path, "x", ok), 1005);
      assert.equal(await bumpFence(path, "x", ok), 1006);
    });
  },
});
