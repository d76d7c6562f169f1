import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CheckpointArea,
  type CheckpointStore,
  FileCheckpointStore,
  formatCheckpointId,
  openCheckpoints,
  parseCheckpointId,
  type StoredCheckpoint,
} from "../../checkpoint/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("checkpoint ids format and parse, and nothing else parses", () => {
  assert.equal(formatCheckpointId(42, "routine"), "000000000042.routine");
  assert.deepEqual(parseCheckpointId("000000000042.pre_operation"), {
    seq: 42,
    type: "pre_operation",
  });
  for (
    const bad of [
      "42",
      "000000000042.nightly",
      "../000000000042.routine",
      "000000000042.routine/x",
      "0000000000042.routine",
    ]
  ) {
    assert.equal(parseCheckpointId(bad), undefined, bad);
  }
});

Deno.test("FileCheckpointStore puts, lists, reads, moves and deletes", async () => {
  await inTempDir(async (dir) => {
    const store = new FileCheckpointStore(dir);
    const a = await store.put({
      id: "000000000001.routine",
      seq: 1,
      type: "routine",
    }, bytes("head\nbody"));
    const b = await store.put(
      { id: "000000000002.recovery", seq: 2, type: "recovery" },
      new Blob(["x\n", "y"]).stream(),
    );
    assert.equal(a.location, join(dir, "routine", "000000000001.ckpt"));
    assert.deepEqual((await store.list("live")).map((i) => i.id), [a.id, b.id]);
    assert.equal(new TextDecoder().decode(await store.get(a)), "head\nbody");
    assert.equal(new TextDecoder().decode(await store.head(a)), "head\nbody");
    const trashed = await store.move(a, "trash", { at: 1234 });
    assert.equal(
      trashed.location,
      join(dir, "trash", "000000000001.routine.1234.ckpt"),
    );
    assert.deepEqual(
      (await store.list("trash")).map((i) => [i.id, i.trashedAt]),
      [[a.id, 1234]],
    );
    const back = await store.move(trashed, "live", { at: 0 });
    assert.equal(back.location, a.location);
    await store.delete(b);
    await store.delete(b); // already gone: fine
    assert.deepEqual((await store.list()).map((i) => i.id), [a.id]);
  });
});

Deno.test("FileCheckpointStore never overwrites quarantined evidence", async () => {
  await inTempDir(async (dir) => {
    const store = new FileCheckpointStore(dir);
    const entry = {
      id: "000000000003.routine",
      seq: 3,
      type: "routine" as const,
    };
    const first = await store.put(entry, bytes("first"));
    const q1 = await store.move(first, "quarantine", {
      at: 0,
      reason: { why: "one" },
    });
    const second = await store.put(entry, bytes("second"));
    const q2 = await store.move(second, "quarantine", {
      at: 0,
      reason: { why: "two" },
    });
    assert.equal(
      q1.location,
      join(dir, "quarantine", "000000000003.routine.ckpt"),
    );
    assert.equal(
      q2.location,
      join(dir, "quarantine", "000000000003.routine.1.ckpt"),
    );
    assert.equal(await Deno.readTextFile(q1.location), "first");
    assert.equal(await Deno.readTextFile(q2.location), "second");
    const reason = JSON.parse(
      await Deno.readTextFile(
        join(dir, "quarantine", "000000000003.routine.1.reason.json"),
      ),
    );
    assert.deepEqual(reason, { why: "two" });
    assert.deepEqual(
      (await store.list("quarantine")).map((i) => i.location).sort(),
      [q1.location, q2.location].sort(),
    );
  });
});

Deno.test("FileCheckpointStore refuses an entry whose id does not match", async () => {
  await inTempDir(async (dir) => {
    const store = new FileCheckpointStore(dir);
    await assert.rejects(
      store.put({ id: "../../evil", seq: 1, type: "routine" }, bytes("x")),
      { code: "invalid_id" },
    );
    await assert.rejects(
      store.put(
        { id: "000000000001.routine", seq: 2, type: "routine" },
        bytes("x"),
      ),
      { code: "invalid_id" },
    );
  });
});

Deno.test("FileCheckpointStore ignores stray files and lists an empty directory", async () => {
  await inTempDir(async (dir) => {
    const store = new FileCheckpointStore(join(dir, "missing"));
    assert.deepEqual(await store.list(), []);
    await Deno.mkdir(join(dir, "routine"));
    await Deno.writeTextFile(join(dir, "routine", "notes.txt"), "x");
    await Deno.writeTextFile(
      join(dir, "routine", ".000000000001.ckpt.123-tmp"),
      "x",
    );
    assert.deepEqual(await new FileCheckpointStore(dir).list(), []);
  });
});

/** A store in memory: proves the manager needs nothing but the interface. */
class MemoryStore implements CheckpointStore {
  readonly files = new Map<
    string,
    { item: StoredCheckpoint; data: Uint8Array }
  >();
  readonly fences: number[] = [];
  async put(
    entry: { id: string; seq: number; type: StoredCheckpoint["type"] },
    data: Uint8Array | ReadableStream<Uint8Array>,
    options?: { fence?: number },
  ): Promise<StoredCheckpoint> {
    const body = data instanceof Uint8Array
      ? data
      : new Uint8Array(await new Response(data).arrayBuffer());
    const item: StoredCheckpoint = {
      ...entry,
      area: "live",
      location: `mem:live/${entry.id}`,
    };
    if (options?.fence !== undefined) this.fences.push(options.fence);
    this.files.set(item.location, { item, data: body });
    return item;
  }
  get(item: StoredCheckpoint): Promise<Uint8Array> {
    const file = this.files.get(item.location);
    if (!file) {
      return Promise.reject(
        Object.assign(new Error("gone"), { code: "not_found" }),
      );
    }
    return Promise.resolve(file.data);
  }
  head(item: StoredCheckpoint): Promise<Uint8Array> {
    return this.get(item);
  }
  list(area?: CheckpointArea): Promise<StoredCheckpoint[]> {
    return Promise.resolve(
      [...this.files.values()].map((f) => f.item).filter((i) =>
        !area || i.area === area
      ).sort((a, b) => a.seq - b.seq),
    );
  }
  move(
    item: StoredCheckpoint,
    to: CheckpointArea,
    options: { at: number },
  ): Promise<StoredCheckpoint> {
    const file = this.files.get(item.location)!;
    this.files.delete(item.location);
    const moved: StoredCheckpoint = {
      ...item,
      area: to,
      location: `mem:${to}/${item.id}`,
      ...(to === "trash" ? { trashedAt: options.at } : {}),
    };
    this.files.set(moved.location, { item: moved, data: file.data });
    return Promise.resolve(moved);
  }
  delete(item: StoredCheckpoint): Promise<void> {
    this.files.delete(item.location);
    return Promise.resolve();
  }
}

Deno.test("the manager works over any CheckpointStore and passes the lock's fence", async () => {
  await inTempDir(async (root) => {
    const store = new MemoryStore();
    await using cp = await openCheckpoints<number>({
      agentId: "a",
      root,
      store,
      retention: { routineKeepLast: 1 },
    });
    await cp.create("routine", { state: 1 });
    const two = await cp.create("routine", { state: 2 });
    assert.equal(two.path, "mem:live/000000000002.routine");
    assert.equal((await cp.restore()).state, 2);
    assert.deepEqual((await store.list("trash")).map((i) => i.id), [
      "000000000001.routine",
    ]);
    assert.equal(store.fences.length, 2);
    assert.ok(store.fences[1]! > store.fences[0]!, "fences increase");
  });
});
