import assert from "node:assert/strict";
import {
  acquireLock,
  lockedTransaction,
  type LockedTransactionOptions,
  lockNameForPath,
  tryAcquireLock,
  updateJson,
} from "../../lock/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

async function readNumber(path: string): Promise<number> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** Whether every given file's lock is free now. */
async function allFree(root: string, paths: string[]): Promise<boolean> {
  for (const path of paths) {
    const lock = await tryAcquireLock(await lockNameForPath(path), { root });
    if (!lock) return false;
    await lock.release();
  }
  return true;
}

/** Moves `amount` from `from` to `to`, reading both under their locks. */
function transfer(
  from: string,
  to: string,
  amount: number,
  options: LockedTransactionOptions,
): Promise<void> {
  return lockedTransaction([from, to], async (tx) => {
    const a = await readNumber(from);
    const b = await readNumber(to);
    await new Promise((r) => setTimeout(r, 1)); // widen the race
    await tx.writeJson(from, a - amount);
    await tx.writeJson(to, b + amount);
  }, options);
}

Deno.test("lockedTransaction() commits every file together and releases every lock", async () => {
  await inTempDir(async (root) => {
    const [a, b] = [`${root}/a.json`, `${root}/b.json`];
    const value = await lockedTransaction([a, b], async (tx) => {
      await tx.writeJson(a, { v: 1 });
      await tx.writeText(b, "2");
      return "done";
    }, { root });
    assert.equal(value, "done");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(a)), { v: 1 });
    assert.equal(await Deno.readTextFile(b), "2");
    assert.ok(await allFree(root, [a, b]));
  });
});

Deno.test("lockedTransaction() writes nothing when fn throws, and releases every lock", async () => {
  await inTempDir(async (root) => {
    const [a, b] = [`${root}/a.json`, `${root}/b.json`];
    await Deno.writeTextFile(a, "1");
    const oops = new Error("changed my mind");
    await assert.rejects(
      lockedTransaction([a, b], async (tx) => {
        await tx.writeJson(a, 2);
        await tx.writeJson(b, 2);
        throw oops;
      }, { root }),
      (err) => err === oops,
    );
    assert.equal(await Deno.readTextFile(a), "1");
    await assert.rejects(Deno.stat(b), Deno.errors.NotFound);
    assert.ok(await allFree(root, [a, b]));
  });
});

Deno.test("lockedTransaction() refuses to stage a file it did not lock, and commits nothing", async () => {
  await inTempDir(async (root) => {
    const [a, other] = [`${root}/a.json`, `${root}/other.json`];
    await assert.rejects(
      lockedTransaction([a], async (tx) => {
        await tx.writeJson(a, 1);
        await tx.writeJson(other, 1);
      }, { root }),
      (err) => {
        assert.equal((err as { code?: string }).code, "not_locked");
        assert.match((err as Error).message, /other\.json/);
        return true;
      },
    );
    await assert.rejects(Deno.stat(a), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(other), Deno.errors.NotFound);
  });
});

Deno.test("lockedTransaction() over overlapping files in opposite orders neither deadlocks nor loses an update", async () => {
  await inTempDir(async (root) => {
    const [a, b, c] = [`${root}/a.json`, `${root}/b.json`, `${root}/c.json`];
    for (const f of [a, b, c]) await Deno.writeTextFile(f, "100");
    const options = { root, timeout: 30_000 };
    const moves: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      moves.push(transfer(a, b, 1, options));
      moves.push(transfer(b, a, 2, options)); // the opposite order
      moves.push(transfer(c, a, 3, options));
    }
    await Promise.all(moves);
    assert.equal(await readNumber(a), 100 - 8 + 16 + 24);
    assert.equal(await readNumber(b), 100 + 8 - 16);
    assert.equal(await readNumber(c), 100 - 24);
  });
});

Deno.test("lockedTransaction() locks a file listed twice once", async () => {
  await inTempDir(async (root) => {
    const a = `${root}/a.json`;
    await lockedTransaction([a, `${root}/./a.json`, a], async (tx) => {
      await tx.writeJson(a, 1);
    }, { root, timeout: 0 });
    assert.equal(await readNumber(a), 1);
  });
});

Deno.test("lockedTransaction() gives up when a file's lock is held past the timeout, and releases what it took", async () => {
  await inTempDir(async (root) => {
    const [a, b] = [`${root}/a.json`, `${root}/b.json`];
    const [nameA, nameB] = [await lockNameForPath(a), await lockNameForPath(b)];
    // Hold the lock that sorts last, so the first one is taken and must be
    // given back.
    const last = nameA > nameB ? a : b;
    const held = await acquireLock(await lockNameForPath(last), { root });
    try {
      let ran = false;
      await assert.rejects(
        lockedTransaction([a, b], () => {
          ran = true;
          return Promise.resolve();
        }, { root, timeout: 200 }),
        { code: "lock_timeout" },
      );
      assert.equal(ran, false);
      const first = last === a ? b : a;
      assert.ok(await allFree(root, [first]), "the first lock was released");
    } finally {
      await held.release();
    }
  });
});

Deno.test("lockedTransaction() shares its locks with updateJson on the same file", async () => {
  await inTempDir(async (root) => {
    const a = `${root}/a.json`;
    await Deno.writeTextFile(a, "0");
    await Promise.all([
      ...Array.from({ length: 5 }, () =>
        lockedTransaction([a], async (tx) => {
          const n = await readNumber(a);
          await new Promise((r) => setTimeout(r, 1));
          await tx.writeJson(a, n + 1);
        }, { root })),
      ...Array.from(
        { length: 5 },
        () => updateJson<number>(a, (n) => n! + 1, { root }),
      ),
    ]);
    assert.equal(await readNumber(a), 10);
  });
});

Deno.test("lockedTransaction() commits nothing once a newer holder has begun on one of its files", async () => {
  await inTempDir(async (root) => {
    const [a, b] = [`${root}/a.json`, `${root}/b.json`];
    await Deno.writeTextFile(a, '"old"');
    // This holder looks remote and its clock stands still, so its heartbeat
    // never runs and its lease looks long expired: another holder may take
    // its locks over, as if it had been paused.
    const stopped = { clock: new FakeClock(0), host: "elsewhere.invalid" };
    await assert.rejects(
      lockedTransaction([a, b], async (tx) => {
        await tx.writeJson(a, "A");
        await tx.writeJson(b, "A");
        const lock = await acquireLock(await lockNameForPath(b), {
          root,
          timeout: 5_000,
        });
        assert.ok(lock.fence > 1);
        await updateJson(b, () => "B", { root, lock });
        await lock.release();
      }, { root, ...stopped }),
      (err) => {
        assert.equal((err as { code?: string }).code, "stale_fence");
        assert.match((err as Error).message, /b\.json/);
        return true;
      },
    );
    assert.equal(await Deno.readTextFile(a), '"old"');
    assert.equal(await readNumber(b), "B");
  });
});
