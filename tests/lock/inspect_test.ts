import assert from "node:assert/strict";
import { listLocks } from "../../lock/mod.ts";

Deno.test("listLocks() clears graveyards left by a process killed mid-takeover", async () => {
  const root = await Deno.makeTempDir();
  try {
    const grave = `${root}/locks/deploy.lock.stale-abc123`;
    await Deno.mkdir(grave, { recursive: true });
    await Deno.writeTextFile(`${grave}/owner.json`, "{}");
    assert.deepEqual(await listLocks({ root }), []);
    await assert.rejects(Deno.stat(grave), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
