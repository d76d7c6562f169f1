import assert from "node:assert/strict";
import {
  acquireLock,
  type Lock,
  lockNameForPath,
  StaleFenceError,
  tryAcquireLock,
  updateJson,
} from "../../lock/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

/**
 * A stand-in for a held Lock with a chosen fence: fencing only looks at
 * the name, the fence, and whether the lock is still held, so two of these
 * play a paused holder and its successor without a real takeover.
 */
function heldLock(name: string, fence: number): Lock & { lose(): void } {
  const controller = new AbortController();
  let compromised = false;
  const lock = {
    name,
    token: crypto.randomUUID(),
    fence,
    owner: {} as Lock["owner"],
    get signal() {
      return controller.signal;
    },
    get compromised() {
      return compromised;
    },
    release: () => {
      controller.abort();
      return Promise.resolve();
    },
    [Symbol.asyncDispose]: () => lock.release(),
    lose() {
      compromised = true;
      controller.abort(new Error(`lock "${name}" was taken over`));
    },
  };
  return lock as unknown as Lock & { lose(): void };
}

async function readNumber(path: string): Promise<number> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("updateJson() passes undefined for a missing file and writes what fn returns", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    let seen: unknown = "not called";
    const value = await updateJson<{ n: number }>(file, (current) => {
      seen = current;
      return { n: 1 };
    }, { root });
    assert.equal(seen, undefined);
    assert.deepEqual(value, { n: 1 });
    assert.equal(await Deno.readTextFile(file), '{\n  "n": 1\n}\n');
  });
});

Deno.test("updateJson() serialises concurrent updates so none is lost", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/count.json`;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        updateJson<number>(file, async (n) => {
          await new Promise((r) => setTimeout(r, 1)); // widen the race
          return (n ?? 0) + 1;
        }, { root, timeout: 20_000 })),
    );
    assert.equal(await readNumber(file), 20);
  });
});

Deno.test("updateJson() writes nothing when fn throws, passes its error through and releases the lock", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    await Deno.writeTextFile(file, "1");
    const oops = new Error("changed my mind");
    await assert.rejects(
      updateJson(file, () => {
        throw oops;
      }, { root }),
      (err) => err === oops,
    );
    assert.equal(await Deno.readTextFile(file), "1");
    const lock = await tryAcquireLock(await lockNameForPath(file), { root });
    assert.ok(lock, "the file's lock was released");
    await lock.release();
  });
});

Deno.test("updateJson() waits for a holder of the file's lock", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    const held = await acquireLock(await lockNameForPath(file), { root });
    let done = false;
    const update = updateJson<number>(file, () => 1, { root }).then(() =>
      done = true
    );
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(done, false, "the update waited");
    await held.release();
    await update;
    assert.equal(await readNumber(file), 1);
  });
});

Deno.test("updateJson() under a caller's lock refuses a holder whose successor wrote the file", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    const a = heldLock("deploy", 5);
    const b = heldLock("deploy", 6);
    await updateJson<string>(file, () => "a1", { root, lock: a });
    await updateJson<string>(file, () => "b1", { root, lock: b });
    await assert.rejects(
      updateJson<string>(file, () => "a2", { root, lock: a }),
      (err) => {
        assert.ok(err instanceof StaleFenceError);
        assert.equal(err.code, "stale_fence");
        assert.match(err.message, /state\.json/);
        assert.match(err.message, /\b5\b/);
        assert.match(err.message, /\b6\b/);
        return true;
      },
    );
    assert.equal(await readNumber(file), "b1");
  });
});

Deno.test("updateJson() refuses a paused holder once its successor has only read the file", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/count.json`;
    await Deno.writeTextFile(file, "10");
    const a = heldLock("counter", 1);
    const b = heldLock("counter", 2);
    let resumeA!: () => void;
    let aRead!: () => void;
    const aHasRead = new Promise<void>((r) => aRead = r);
    const paused = updateJson<number>(file, async (n) => {
      aRead();
      await new Promise<void>((r) => resumeA = r); // A is paused here
      return n! + 1;
    }, { root, lock: a });
    await aHasRead;
    // B begins (reads) while A is paused, and A continues before B writes.
    let resumeB!: () => void;
    let bRead!: () => void;
    const bHasRead = new Promise<void>((r) => bRead = r);
    const successor = updateJson<number>(file, async (n) => {
      bRead();
      await new Promise<void>((r) => resumeB = r);
      return n! + 1;
    }, { root, lock: b });
    await bHasRead;
    resumeA();
    await assert.rejects(paused, { code: "stale_fence" });
    resumeB();
    assert.equal(await successor, 11);
    assert.equal(await readNumber(file), 11, "B's update is not lost");
  });
});

Deno.test("updateJson() refuses to write under a lost lock and leaves the file alone", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    await Deno.writeTextFile(file, "1");
    const lock = heldLock("deploy", 3);
    await assert.rejects(
      updateJson<number>(file, (n) => {
        lock.lose();
        return n! + 1;
      }, { root, lock }),
      /taken over/,
    );
    assert.equal(await Deno.readTextFile(file), "1");
  });
});

Deno.test("updateJson() keeps the fences of different locks apart", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    await updateJson(file, () => 1, { root, lock: heldLock("x", 10) });
    // Fence 1 of another lock is not older than fence 10 of "x".
    await updateJson(file, () => 2, { root, lock: heldLock("y", 1) });
    assert.equal(await readNumber(file), 2);
  });
});

Deno.test("updateJson() fails closed on a fence record it cannot read", async () => {
  await inTempDir(async (root) => {
    const file = `${root}/state.json`;
    await updateJson(file, () => 1, { root, lock: heldLock("x", 1) });
    const [record] = [...Deno.readDirSync(`${root}/locks/fences`)];
    await Deno.writeTextFile(`${root}/locks/fences/${record!.name}`, "{}");
    await assert.rejects(
      updateJson(file, () => 2, { root, lock: heldLock("x", 2) }),
      { code: "corrupt_fence" },
    );
    assert.equal(await readNumber(file), 1);
  });
});

Deno.test("lockNameForPath() gives one name to every spelling of a path, symlinked directories included", async () => {
  await inTempDir(async (root) => {
    await Deno.mkdir(`${root}/real`);
    await Deno.symlink(`${root}/real`, `${root}/link`);
    const name = await lockNameForPath(`${root}/real/a b.json`);
    assert.match(name, /^path-a_b\.json-[0-9a-f]{16}$/);
    assert.equal(await lockNameForPath(`${root}/link/a b.json`), name);
    assert.equal(await lockNameForPath(`${root}/real/../real/a b.json`), name);
    assert.notEqual(await lockNameForPath(`${root}/real/c.json`), name);
  });
});

Deno.test("updateJson() creates nothing but the file and what lives under <root>/locks", async () => {
  await inTempDir(async (dir) => {
    const root = `${dir}/home`;
    await updateJson(`${dir}/state.json`, () => 1, { root });
    const top = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(top, ["home", "state.json"]);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), [
      "locks",
    ]);
  });
});

// ------------------------------------------------------------ processes

const CHILD = new URL("./_fence_child.ts", import.meta.url).pathname;

async function waitForFile(path: string, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (true) {
    try {
      return await Deno.readTextFile(path);
    } catch {
      if (Date.now() > until) {
        throw new Error(`No ${path} after ${timeoutMs}ms`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

Deno.test({
  name:
    "a remote-looking holder stopped past its ttl is taken over; when it continues its lock is compromised and its updateJson refused",
  ignore: Deno.build.os === "windows",
  async fn() {
    await inTempDir(async (root) => {
      const file = `${root}/count.json`;
      await Deno.writeTextFile(file, "0");
      const holder = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, root, file],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        // The holder has acquired, recorded its fence and read the file.
        await waitForFile(`${root}/read`, 20_000);
        Deno.kill(holder.pid, "SIGSTOP");
        const started = Date.now();
        const name = await lockNameForPath(file);
        // ttl 600 ms: the waiter takes over once the heartbeat is that old.
        const lock = await acquireLock(name, {
          root,
          ttl: 600,
          timeout: 10_000,
        });
        const tookOverMs = Date.now() - started;
        try {
          assert.ok(tookOverMs < 5_000, `took over after ${tookOverMs}ms`);
          await updateJson<number>(file, (n) => n! + 100, { root, lock });
        } finally {
          Deno.kill(holder.pid, "SIGCONT");
          const result = JSON.parse(
            await waitForFile(`${root}/result`, 20_000),
          );
          assert.equal(result.refused, "stale_fence", JSON.stringify(result));
          assert.match(result.message, /fence \d+/);
          // It may notice the takeover by heartbeat before or after.
          assert.equal(result.compromised, true);
          await lock.release();
        }
        assert.equal(await readNumber(file), 100, "only the successor wrote");
      } finally {
        const out = await holder.output().catch(() => undefined);
        if (out && !out.success) {
          console.error(new TextDecoder().decode(out.stderr));
        }
      }
    });
  },
});

Deno.test({
  name:
    "a local holder stopped with SIGSTOP is alive and never robbed: updateJson times out naming it",
  ignore: Deno.build.os === "windows",
  async fn() {
    await inTempDir(async (root) => {
      const file = `${root}/count.json`;
      await Deno.writeTextFile(file, "0");
      const holder = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, root, file, "local"],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      try {
        await waitForFile(`${root}/read`, 20_000);
        Deno.kill(holder.pid, "SIGSTOP");
        await assert.rejects(
          updateJson<number>(file, (n) => n! + 100, {
            root,
            ttl: 300,
            timeout: 1_500,
          }),
          (err) => {
            assert.equal((err as { code?: string }).code, "lock_timeout");
            assert.match((err as Error).message, new RegExp(`${holder.pid}`));
            return true;
          },
        );
      } finally {
        Deno.kill(holder.pid, "SIGCONT");
        await waitForFile(`${root}/result`, 20_000);
        await holder.output();
      }
      assert.equal(await readNumber(file), 1, "the holder's update landed");
    });
  },
});
