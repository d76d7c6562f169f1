import assert from "node:assert/strict";
import { join } from "node:path";
import {
  denoFileSystem,
  ErrorReporter,
  type FileSystem,
  IoTimeoutError,
  recoverTransactions,
  transaction,
  type TransactionOptions,
} from "../../fs/mod.ts";
import type { FileHandle } from "../../fs/file_system.ts";
import { type Fault, faultFs, osError } from "../_helpers/fault_fs.ts";
import { FakeClock, flush } from "../_helpers/fake_clock.ts";
import { forkingFs } from "../crash/_transaction_child.ts";

const fast = { retry: { minTimeout: 1, maxTimeout: 1 } };

/** faultFs plus hard links, like the real file system. */
function linking(faults: Fault[]): FileSystem & { calls: string[] } {
  const fs = faultFs(denoFileSystem, faults);
  return Object.assign(fs, {
    link: (a: string, b: string) => {
      fs.calls.push(`link ${a} -> ${b}`);
      return Deno.link(a, b);
    },
  });
}

/** Every file under `dir` (recursively), relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await tree(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Three files with old contents: a.txt, b.json, c.bin; d.txt absent.
async function seed(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/a.txt`, "old a");
  await Deno.writeTextFile(`${dir}/b.json`, "old b");
  await Deno.writeTextFile(`${dir}/c.bin`, "old c");
}

async function stageAll(dir: string, options?: TransactionOptions) {
  return await transaction(async (tx) => {
    await tx.writeText(`${dir}/a.txt`, "new a");
    await tx.writeJson(`${dir}/b.json`, { b: 1 });
    await tx.remove(`${dir}/c.bin`);
    await tx.writeBytes(`${dir}/d.txt`, new Uint8Array([100]));
    return "done";
  }, options);
}

async function assertOld(dir: string): Promise<void> {
  assert.deepEqual(await tree(dir), ["a.txt", "b.json", "c.bin"]);
  assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old a");
  assert.equal(await Deno.readTextFile(`${dir}/b.json`), "old b");
  assert.equal(await Deno.readTextFile(`${dir}/c.bin`), "old c");
}

Deno.test("transaction() writes, removes and creates files together and returns fn's result", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    assert.equal(await stageAll(dir), "done");
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "d.txt"]);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new a");
    assert.equal(await Deno.readTextFile(`${dir}/b.json`), '{\n  "b": 1\n}\n');
    assert.equal(await Deno.readTextFile(`${dir}/d.txt`), "d");
  });
});

Deno.test("transaction() leaves nothing behind but an empty journal directory", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([]);
    await stageAll(dir, { fs });
    assert.deepEqual([...Deno.readDirSync(`${dir}/.sturdy-tx`)], []);
    assert.ok(fs.calls.some((c) => c.startsWith("link")), "backups are links");
  });
});

Deno.test("transaction() writes nothing when fn throws, and rethrows its error unchanged", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const boom = new Error("boom");
    await assert.rejects(
      transaction(async (tx) => {
        await tx.writeText(`${dir}/a.txt`, "new a");
        throw boom;
      }),
      (err) => err === boom,
    );
    await assertOld(dir);
  });
});

Deno.test("transaction() with nothing staged touches nothing", async () => {
  await withDir(async () => {
    const fs = linking([]);
    assert.equal(await transaction(() => Promise.resolve(7), { fs }), 7);
    assert.deepEqual(fs.calls, []);
  });
});

Deno.test("staging the same target twice keeps the last one, also through a symlink", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/real.txt`, "old");
    await Deno.symlink(`${dir}/real.txt`, `${dir}/link.txt`);
    await transaction(async (tx) => {
      await tx.writeText(`${dir}/real.txt`, "first");
      await tx.writeText(`${dir}/./real.txt`, "second");
      await tx.writeText(`${dir}/link.txt`, "third");
    });
    assert.equal(await Deno.readTextFile(`${dir}/real.txt`), "third");
    assert.ok((await Deno.lstat(`${dir}/link.txt`)).isSymlink);
    await transaction(async (tx) => {
      await tx.writeText(`${dir}/real.txt`, "write");
      await tx.remove(`${dir}/real.txt`);
    });
    assert.deepEqual(await tree(dir), ["link.txt"]);
  });
});

Deno.test("transaction() keeps an existing file's mode", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "old", { mode: 0o640 });
    await Deno.chmod(`${dir}/a.txt`, 0o640);
    await transaction(async (tx) => {
      await tx.writeText(`${dir}/a.txt`, "new");
      await tx.writeText(`${dir}/b.txt`, "new", { mode: 0o600 });
    });
    assert.equal((await Deno.stat(`${dir}/a.txt`)).mode! & 0o777, 0o640);
    assert.equal((await Deno.stat(`${dir}/b.txt`)).mode! & 0o777, 0o600);
  });
});

Deno.test("transaction() commits targets in several directories", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/x`);
    await Deno.mkdir(`${dir}/y`);
    await Deno.writeTextFile(`${dir}/y/b.txt`, "old");
    await transaction(async (tx) => {
      await tx.writeText(`${dir}/x/a.txt`, "A");
      await tx.writeText(`${dir}/y/b.txt`, "B");
    });
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "A");
    assert.equal(await Deno.readTextFile(`${dir}/y/b.txt`), "B");
    assert.deepEqual(await tree(dir), ["x/a.txt", "y/b.txt"]);
  });
});

Deno.test("a rename failing midway through the commit rolls every target back", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([{
      op: "rename",
      path: /\/b\.json$/,
      nth: 1,
      error: () => osError("EACCES"),
    }]);
    const err = await stageAll(dir, { fs, retry: false }).catch((e) => e);
    assert.equal(err.name, "FileWriteError");
    assert.equal(err.code, "permission_denied");
    assert.equal(err.path, `${dir}/b.json`);
    assert.equal(err.operation, "transaction");
    assert.match(err.message, /rolled back, so no file changed/);
    // a.txt had already been replaced: it is back to its old content.
    assert.ok(
      fs.calls.some((c) => /rename .*a\.txt\.\S+ -> .*a\.txt$/.test(c)),
    );
    await assertOld(dir);
    assert.deepEqual([...Deno.readDirSync(`${dir}/.sturdy-tx`)], []);
  });
});

Deno.test("a failed rename is retried as a whole transaction when transient", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([{
      op: "rename",
      path: /\/b\.json$/,
      nth: 1,
      error: () => osError("EBUSY"),
    }]);
    await stageAll(dir, { fs, ...fast });
    assert.equal(await Deno.readTextFile(`${dir}/b.json`), '{\n  "b": 1\n}\n');
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "d.txt"]);
  });
});

Deno.test("EIO on the journal's fsync fails with sync_failed, is not retried, and changes nothing", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([{
      op: "syncData",
      path: /\.sturdy-tx\//,
      error: () => osError("EIO"),
    }]);
    const err = await stageAll(dir, { fs, ...fast }).catch((e) => e);
    assert.equal(err.code, "sync_failed");
    assert.equal(
      fs.calls.filter((c) =>
        c.startsWith("syncData") && c.includes(".sturdy-tx")
      ).length,
      1,
    );
    await assertOld(dir);
  });
});

Deno.test("EIO on a directory fsync after the journal exists rolls back", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([{
      op: "sync",
      path: /\.sturdy-tx$/,
      nth: 1,
      error: () => osError("EIO"),
    }]);
    const err = await stageAll(dir, { fs, retry: false }).catch((e) => e);
    assert.equal(err.code, "io_error");
    await assertOld(dir);
    assert.deepEqual([...Deno.readDirSync(`${dir}/.sturdy-tx`)], []);
  });
});

Deno.test("ENOSPC while staging fails with no_space and leaves no temp", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([{
      op: "write",
      nth: 2,
      error: () => osError("ENOSPC"),
    }]);
    const err = await stageAll(dir, { fs, retry: false }).catch((e) => e);
    assert.equal(err.code, "no_space");
    assert.match(err.message, /disk is full/);
    await assertOld(dir);
  });
});

Deno.test("a file system without hard links gets copied backups", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = faultFs(denoFileSystem, [{
      op: "rename",
      path: /d\.txt$/,
      error: () => osError("EACCES"),
    }]);
    await assert.rejects(stageAll(dir, { fs, retry: false }), {
      code: "permission_denied",
    });
    await assertOld(dir);
    await stageAll(dir, { fs: faultFs(denoFileSystem, []) });
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "d.txt"]);
  });
});

Deno.test("a link refused with EPERM falls back to a copied backup", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = Object.assign(faultFs(denoFileSystem, []), {
      link: () => Promise.reject(osError("EPERM")),
    });
    await stageAll(dir, { fs });
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "d.txt"]);
  });
});

Deno.test("durability none makes no sync call", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const fs = linking([]);
    await stageAll(dir, { fs, durability: "none" });
    assert.deepEqual(fs.calls.filter((c) => /^sync/.test(c)), []);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new a");
  });
});

Deno.test("an aborted signal before the commit writes nothing", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const controller = new AbortController();
    const reason = new Error("stop");
    const err = await transaction(async (tx) => {
      await tx.writeText(`${dir}/a.txt`, "new a");
      controller.abort(reason);
      await tx.writeText(`${dir}/b.json`, "new b");
    }, { signal: controller.signal }).catch((e) => e);
    assert.equal(err, reason);
    await assertOld(dir);
  });
});

Deno.test("a commit that times out while staging never commits later", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const clock = new FakeClock();
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const base = linking([]);
    const fs: FileSystem = {
      ...base,
      open: async (path, options) => {
        if (path.endsWith(".sturdy-tmp")) await gate;
        return base.open(path, options);
      },
    };
    const pending = stageAll(dir, { fs, clock, timeout: 1_000 });
    pending.catch(() => {});
    await flush();
    await clock.tick(1_000);
    await assert.rejects(pending, IoTimeoutError);
    release();
    for (let i = 0; i < 20; i++) await flush();
    await assertOld(dir);
  });
});

Deno.test("staging after the callback has returned is refused", async () => {
  await withDir(async (dir) => {
    let saved!: Parameters<Parameters<typeof transaction>[0]>[0];
    await transaction((tx) => {
      saved = tx;
      return Promise.resolve();
    });
    await assert.rejects(saved.writeText(`${dir}/a.txt`, "late"), {
      code: "transaction_closed",
    });
    assert.deepEqual(await tree(dir), []);
  });
});

Deno.test("bad input is refused with a typed error and leaves the disk intact", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    await Deno.mkdir(`${dir}/sub`);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    await assert.rejects(
      transaction((tx) => tx.writeText(`${dir}/a\0.txt`, "x")),
      { code: "invalid_path" },
    );
    await assert.rejects(
      transaction((tx) => tx.writeJson(`${dir}/b.json`, loop)),
      { code: "invalid_data" },
    );
    const err = await transaction(async (tx) => {
      await tx.writeText(`${dir}/a.txt`, "new");
      await tx.writeText(`${dir}/sub`, "x");
    }).catch((e) => e);
    assert.equal(err.code, "is_a_directory");
    assert.equal(err.path, `${dir}/sub`);
    await assert.rejects(
      transaction((tx) => tx.writeText(`${dir}/missing/a.txt`, "x")),
      { code: "not_found" },
    );
    await Deno.remove(`${dir}/sub`);
    await assertOld(dir);
  });
});

Deno.test({
  name: "a missing write permission is a typed error naming the flag",
  permissions: { read: true, write: false },
  async fn() {
    const dir = Deno.cwd();
    const err = await transaction((tx) =>
      tx.writeText(`${dir}/never-written.txt`, "x")
    ).catch((e) => e);
    assert.equal(err.code, "missing_permission");
    assert.match(err.message, /--allow-write/);
  },
});

Deno.test("a failed transaction is reported to the reporter", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const reporter = new ErrorReporter({ dir: `${dir}/.sturdy` });
    const fs = linking([{ op: "write", error: () => osError("ENOSPC") }]);
    await assert.rejects(stageAll(dir, { fs, retry: false, reporter }));
    const [report] = await reporter.list();
    assert.equal(report?.operation, "transaction");
    assert.equal(report?.code, "no_space");
  });
});

Deno.test("transactions from one process on the same targets run one at a time", async () => {
  await withDir(async (dir) => {
    const runs = Array.from({ length: 8 }, (_, i) =>
      transaction(async (tx) => {
        await tx.writeText(`${dir}/a.txt`, `${i}`);
        await tx.writeText(`${dir}/b.txt`, `${i}`);
      }));
    await Promise.all(runs);
    const a = await Deno.readTextFile(`${dir}/a.txt`);
    assert.equal(await Deno.readTextFile(`${dir}/b.txt`), a);
    assert.deepEqual(await tree(dir), ["a.txt", "b.txt"]);
  });
});

Deno.test("concurrent transactions on other files of one directory do not roll each other back", async () => {
  await withDir(async (dir) => {
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        transaction(async (tx) => {
          await tx.writeText(`${dir}/f${i}.txt`, `${i}`);
          await tx.writeText(`${dir}/g${i}.txt`, `${i}`);
        })),
    );
    for (let i = 0; i < 6; i++) {
      assert.equal(await Deno.readTextFile(`${dir}/f${i}.txt`), `${i}`);
      assert.equal(await Deno.readTextFile(`${dir}/g${i}.txt`), `${i}`);
    }
  });
});

// A commit whose rename of the second target fails and whose rollback
// fails too: the journal stays on disk, as after a crash mid-switch.
async function leaveHotJournal(dir: string): Promise<unknown> {
  let failing = true;
  const base = linking([]);
  const fs: FileSystem = {
    ...base,
    rename: (from, to) => {
      if (failing && /y\/b\.txt$/.test(to)) {
        return Promise.reject(osError("EIO"));
      }
      // The rollback's restore of x/a.txt from its backup fails too.
      if (failing && from.endsWith(".sturdy-bak")) {
        return Promise.reject(osError("EIO"));
      }
      return base.rename(from, to);
    },
  };
  const err = await transaction(async (tx) => {
    await tx.writeText(`${dir}/x/a.txt`, "new a");
    await tx.writeText(`${dir}/y/b.txt`, "new b");
  }, { fs, retry: false }).catch((e) => e);
  failing = false;
  return err;
}

async function seedTwoDirs(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/x`);
  await Deno.mkdir(`${dir}/y`);
  await Deno.writeTextFile(`${dir}/x/a.txt`, "old a");
  await Deno.writeTextFile(`${dir}/y/b.txt`, "old b");
}

Deno.test("a failed rollback keeps the journal and says how to finish it", async () => {
  await withDir(async (dir) => {
    await seedTwoDirs(dir);
    const err = await leaveHotJournal(dir) as Error & { code: string };
    assert.equal(err.code, "rollback_failed");
    assert.match(err.message, /recoverTransactions\(".*\/x"\)/);
    // Half switched: a.txt is new, b.txt old, the journal is hot.
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "new a");
    assert.equal([...Deno.readDirSync(`${dir}/x/.sturdy-tx`)].length, 1);
  });
});

Deno.test("recoverTransactions() from any touched directory rolls a hot journal back", async () => {
  await withDir(async (dir) => {
    await seedTwoDirs(dir);
    await leaveHotJournal(dir);
    // y only holds a ref to the journal in x.
    const result = await recoverTransactions(`${dir}/y`);
    assert.equal(result.rolledBack.length, 1);
    assert.match(result.rolledBack[0]!, /\/x\/\.sturdy-tx\/.*\.json$/);
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "old a");
    assert.equal(await Deno.readTextFile(`${dir}/y/b.txt`), "old b");
    assert.deepEqual(await tree(dir), ["x/a.txt", "y/b.txt"]);
    assert.deepEqual(await recoverTransactions(`${dir}/x`), {
      rolledBack: [],
      removed: [],
    });
  });
});

Deno.test("the next transaction in a directory rolls back a hot journal first", async () => {
  await withDir(async (dir) => {
    await seedTwoDirs(dir);
    await leaveHotJournal(dir);
    await transaction((tx) => tx.writeText(`${dir}/y/c.txt`, "c"));
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "old a");
    assert.equal(await Deno.readTextFile(`${dir}/y/b.txt`), "old b");
    assert.deepEqual(await tree(dir), ["x/a.txt", "y/b.txt", "y/c.txt"]);
  });
});

Deno.test("a corrupt journal blocks transactions there with a clear error until deleted", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    const journal = `${dir}/.sturdy-tx/999999-x-x-${"0".repeat(24)}.json`;
    await Deno.writeTextFile(journal, '{"format": "sturdy.transac');
    const err = await stageAll(dir, fast).catch((e) => e);
    assert.equal(err.name, "FileWriteError");
    assert.equal(err.code, "corrupt_journal");
    assert.equal(err.path, journal);
    assert.match(err.message, /is unreadable \(not valid JSON\)/);
    assert.match(err.message, /then delete it$/);
    await assert.rejects(recoverTransactions(dir), { code: "corrupt_journal" });
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old a");
    assert.equal(await Deno.readTextFile(`${dir}/c.bin`), "old c");
    assert.equal(
      await Deno.readTextFile(journal),
      '{"format": "sturdy.transac',
    );
    await Deno.remove(journal);
    await stageAll(dir);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new a");
  });
});

Deno.test("a journal naming files outside its rules is treated as corrupt, not obeyed", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    const id = `999999-x-x-${"0".repeat(24)}`;
    await Deno.writeTextFile(
      `${dir}/.sturdy-tx/${id}.json`,
      JSON.stringify({
        format: "sturdy.transaction/1",
        id,
        createdAt: "",
        refs: [],
        entries: [{
          target: `${dir}/a.txt`,
          temp: `${dir}/b.json`,
          backup: null,
          ino: null,
        }],
      }),
    );
    await assert.rejects(recoverTransactions(dir), { code: "corrupt_journal" });
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old a");
    assert.equal(await Deno.readTextFile(`${dir}/b.json`), "old b");
  });
});

Deno.test("recoverTransactions() removes orphan temps and backups of dead processes", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // As a transaction killed mid-commit leaves them: a locked-kind temp
    // and a backup, next to the transaction's lock file, all unlocked.
    const id = `999999-x-x-${"1".repeat(24)}`;
    await Deno.writeTextFile(`${dir}/.a.txt.${id}-l.sturdy-tmp`, "half");
    await Deno.link(`${dir}/a.txt`, `${dir}/.a.txt.${id}.sturdy-bak`);
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    await Deno.writeTextFile(`${dir}/.sturdy-tx/${id}.lock`, "");
    // Held, the lock file keeps the backup (the temp has its own lock).
    const held = await Deno.open(`${dir}/.sturdy-tx/${id}.lock`);
    await held.lock(true);
    const live = await recoverTransactions(dir);
    assert.deepEqual(live.removed, [`${dir}/.a.txt.${id}-l.sturdy-tmp`]);
    held.close();
    // Free, it proves them orphans at once (maxAge is an hour).
    const result = await recoverTransactions(dir);
    assert.deepEqual(result.removed.sort(), [
      `${dir}/.a.txt.${id}.sturdy-bak`,
      `${dir}/.sturdy-tx/${id}.lock`,
    ]);
    await assertOld(dir);
  });
});

Deno.test("recoverTransactions() judges leftovers without a lock file by age", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // As left where locks are unavailable: unlocked names, no lock file.
    const id = `999999-x-x-${"3".repeat(24)}`;
    await Deno.writeTextFile(`${dir}/.a.txt.${id}.sturdy-tmp`, "half");
    await Deno.link(`${dir}/a.txt`, `${dir}/.a.txt.${id}.sturdy-bak`);
    assert.deepEqual((await recoverTransactions(dir)).removed, []);
    const result = await recoverTransactions(dir, { maxAge: 0 });
    assert.equal(result.removed.length, 2);
    await assertOld(dir);
  });
});

Deno.test("a lock a recovery probed is released at once, even for a child spawned meanwhile", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // A dead transaction's backups, judged one after another by the same
    // lock file. The recovering process spawns children all the time, so
    // each descriptor it closes lives on a while in a child: a lock taken
    // by one probe must not make the next probe find the owner alive.
    const id = `999999-x-x-${"4".repeat(24)}`;
    const backups = ["a.txt", "b.json", "c.bin"].map((name) =>
      `${dir}/.${name}.${id}.sturdy-bak`
    );
    for (const [i, name] of ["a.txt", "b.json", "c.bin"].entries()) {
      await Deno.link(`${dir}/${name}`, backups[i]!);
    }
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    await Deno.writeTextFile(`${dir}/.sturdy-tx/${id}.lock`, "");
    const fs = forkingFs();
    try {
      const result = await recoverTransactions(dir, { fs });
      assert.deepEqual(
        result.removed.sort(),
        [...backups, `${dir}/.sturdy-tx/${id}.lock`].sort(),
      );
    } finally {
      fs.flush();
    }
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "c.bin"]);
    await assertOld(dir);
  });
});

Deno.test("leftovers of a -l transaction whose lock file is gone are removed at once", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // A `-l` id promises a lock file in every target directory before any
    // of its files: with none left (removed after a free probe, or by its
    // owner after a clean-up that failed), the transaction is over.
    const id = `999999-x-x-${"5".repeat(24)}-l`;
    await Deno.link(`${dir}/a.txt`, `${dir}/.a.txt.${id}.sturdy-bak`);
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    const journal = `${dir}/home/.sturdy-tx/${id}.json`;
    await Deno.writeTextFile(
      `${dir}/.sturdy-tx/${id}.ref`,
      JSON.stringify({ format: "sturdy.transaction-ref/1", journal }),
    );
    // An id without the flag promises nothing: judged by age.
    const other = `999999-x-x-${"6".repeat(24)}`;
    await Deno.link(`${dir}/b.json`, `${dir}/.b.json.${other}.sturdy-bak`);
    const result = await recoverTransactions(dir);
    assert.deepEqual(result.removed, [`${dir}/.a.txt.${id}.sturdy-bak`]);
    assert.deepEqual(await tree(dir), [
      `.b.json.${other}.sturdy-bak`,
      "a.txt",
      "b.json",
      "c.bin",
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "old a");
  });
});

Deno.test("a lock file held in this very process keeps its transaction live", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // As a commit in flight in another worker of this process (the ids in
    // flight are known per worker) leaves its files: the pid is ours, the
    // lock is held.
    const id = `${Deno.pid}-x-x-${"7".repeat(24)}-l`;
    await Deno.link(`${dir}/a.txt`, `${dir}/.a.txt.${id}.sturdy-bak`);
    await Deno.mkdir(`${dir}/.sturdy-tx`);
    const held = await Deno.open(`${dir}/.sturdy-tx/${id}.lock`, {
      write: true,
      createNew: true,
    });
    await held.lock(true);
    try {
      assert.deepEqual((await recoverTransactions(dir)).removed, []);
    } finally {
      held.close();
    }
    assert.deepEqual((await recoverTransactions(dir)).removed.sort(), [
      `${dir}/.a.txt.${id}.sturdy-bak`,
      `${dir}/.sturdy-tx/${id}.lock`,
    ]);
  });
});

Deno.test("a transaction id says whether it holds a lock file in every directory", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const lockFiles = (calls: string[]) =>
      calls.filter((c) => c.startsWith("open ") && c.endsWith(".lock"));
    const fs = linking([]);
    await stageAll(dir, { fs });
    assert.equal(lockFiles(fs.calls).length, 1);
    assert.match(lockFiles(fs.calls)[0]!, /-l\.lock$/);
    // Where no lock can be had, the id drops the flag: its files are
    // judged by age there, never by a missing lock file.
    const noLocks = linking([]);
    const open = noLocks.open;
    noLocks.open = async (path, options) => {
      const { tryLock: _, lock: __, ...handle } = await open(path, options);
      return handle;
    };
    await transaction(async (tx) => {
      await tx.writeText(`${dir}/a.txt`, "newer a");
    }, { fs: noLocks });
    const calls = lockFiles(noLocks.calls);
    assert.ok(calls.length >= 2, calls.join("\n"));
    assert.match(calls[0]!, /-l\.lock$/);
    assert.doesNotMatch(calls.at(-1)!, /-l\.lock$/);
    assert.deepEqual(await tree(dir), ["a.txt", "b.json", "d.txt"]);
  });
});

Deno.test("recoverTransactions() on a directory without transactions does nothing", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    assert.deepEqual(await recoverTransactions(dir), {
      rolledBack: [],
      removed: [],
    });
    await assert.rejects(recoverTransactions(`${dir}/none`), {
      code: "not_found",
    });
  });
});

Deno.test("a journal locked by a live process is left alone until its lock is free", async () => {
  await withDir(async (dir) => {
    await seedTwoDirs(dir);
    await leaveHotJournal(dir);
    // Rename the journal to an owner that cannot be checked by name, as
    // written by a process on another host or without access to /proc.
    const txDir = `${dir}/x/.sturdy-tx`;
    const [name] = [...Deno.readDirSync(txDir)].map((e) => e.name);
    const id = `999999-x-x-${"2".repeat(24)}`;
    const text = (await Deno.readTextFile(`${txDir}/${name}`))
      .replaceAll(name!.slice(0, -5), id);
    await Deno.writeTextFile(`${txDir}/${id}.json`, text);
    await Deno.remove(`${txDir}/${name}`);
    await Deno.remove(`${dir}/y/.sturdy-tx`, { recursive: true });
    // Backups are named after the transaction too.
    for (const d of ["x", "y"]) {
      for (const e of Deno.readDirSync(`${dir}/${d}`)) {
        if (!e.name.endsWith(".sturdy-bak")) continue;
        await Deno.rename(
          `${dir}/${d}/${e.name}`,
          `${dir}/${d}/${e.name.replace(name!.slice(0, -5), id)}`,
        );
      }
    }
    const held = await Deno.open(`${txDir}/${id}.json`, { read: true });
    await held.lock(true);
    const result = await recoverTransactions(`${dir}/x`);
    assert.deepEqual(result.rolledBack, []);
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "new a");
    held.close();
    const after = await recoverTransactions(`${dir}/x`);
    assert.deepEqual(after.rolledBack, [`${txDir}/${id}.json`]);
    assert.equal(await Deno.readTextFile(`${dir}/x/a.txt`), "old a");
    assert.equal(await Deno.readTextFile(`${dir}/y/b.txt`), "old b");
  });
});

/**
 * A file system that a test can "kill": from `die()` on, every call fails
 * and every file opened through it is closed (its locks dropped), and
 * nothing more reaches the disk, as when the process is SIGKILLed.
 */
function mortalFs(base: FileSystem): { fs: FileSystem; die(): void } {
  let dead = false;
  const open = new Set<FileHandle>();
  const gone = () => Promise.reject(osError("EIO", "the process is dead"));
  const guard = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, key) {
        const value = Reflect.get(t, key);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) =>
          dead ? gone() : Reflect.apply(value, t, args);
      },
    });
  const fs: FileSystem = {
    ...Object.fromEntries(
      Object.entries(base).map(([k, v]) => [
        k,
        (...args: unknown[]) =>
          dead ? gone() : Reflect.apply(v as () => unknown, base, args),
      ]),
    ) as unknown as FileSystem,
    async open(path, options) {
      if (dead) return await gone();
      const handle = await base.open(path, options);
      open.add(handle);
      const guarded = guard(handle);
      return Object.assign(Object.create(guarded), {
        close: () => {
          if (open.delete(handle)) handle.close();
        },
      }) as FileHandle;
    },
    readDir(path) {
      if (!dead) return base.readDir(path);
      return {
        [Symbol.asyncIterator]: () => ({ next: gone }),
      } as AsyncIterable<Deno.DirEntry>;
    },
  };
  return {
    fs,
    die() {
      dead = true;
      for (const handle of open) handle.close();
      open.clear();
    },
  };
}

/** `at` resolves `reached`, then waits until `go` is called. */
function gate(): {
  reached: Promise<void>;
  go(): void;
  at(): Promise<void>;
} {
  const reached = Promise.withResolvers<void>();
  const go = Promise.withResolvers<void>();
  return {
    reached: reached.promise,
    go: () => go.resolve(),
    at: () => {
      reached.resolve();
      return go.promise;
    },
  };
}

for (
  const [when, death, expected] of [
    // After its ref, before its journal: nothing switched.
    ["before the journal", { op: "rename", path: /\.json$/ }, "old"],
    // The switch is done, the journal still hot: it must roll back.
    ["after the switch", { op: "remove", path: /\.json$/ }, "old"],
    // Committed, before its clean-up.
    ["after the commit point", { op: "remove", path: /sturdy-bak$/ }, "new"],
  ] as const
) {
  Deno.test(`a commit dying ${when} while a recovery is listing its directory leaves all ${expected}`, async () => {
    await withDir(async (dir) => {
      await seedTwoDirs(dir);
      const x = `${dir}/x`;
      const y = `${dir}/y`;
      // The committer: paused once its temps and backups exist, before it
      // writes the ref in y (its second mkdir of y/.sturdy-tx), and killed
      // at `death`.
      const committerGate = gate();
      const mortal = mortalFs(denoFileSystem);
      const committerFs = faultFs(mortal.fs, [
        {
          op: "mkdir",
          path: /\/y\/\.sturdy-tx$/,
          nth: 2,
          before: committerGate.at,
        },
        { ...death, nth: 1, before: () => mortal.die() },
      ]);
      const committing = transaction(async (tx) => {
        await tx.writeText(`${x}/a.txt`, "new a");
        await tx.writeText(`${y}/b.txt`, "new b");
      }, { fs: committerFs, retry: false }).then(() => {}, (err) => err);
      await committerGate.reached;
      const backups = (await tree(y)).filter((f) => f.endsWith("sturdy-bak"));
      assert.equal(backups.length, 1);
      // The recovery: it lists y/.sturdy-tx (no ref there yet), then is
      // paused before its sweep of backups lists y.
      const recoveryGate = gate();
      const recoveryFs = faultFs(denoFileSystem, [
        {
          op: "readDir",
          path: new RegExp(`^${y}$`),
          nth: 2,
          before: recoveryGate.at,
        },
      ]);
      const recovering = recoverTransactions(y, { fs: recoveryFs });
      await recoveryGate.reached;
      // Meanwhile the committer writes its ref and journal, switches, and
      // dies (its locks go with it, its files stay).
      committerGate.go();
      const outcome = await committing;
      if (when === "after the switch") {
        // Half way through its rollback: nothing of it reached the disk.
        assert.equal((outcome as { code?: string })?.code, "rollback_failed");
        assert.equal(await Deno.readTextFile(`${y}/b.txt`), "new b");
      }
      const id = backups[0]!.slice(".b.txt.".length, -".sturdy-bak".length);
      assert.ok(
        (await tree(y)).includes(`.sturdy-tx/${id}.ref`),
        "the committer wrote its ref",
      );
      // The recovery goes on: the lock is free now, but the ref says a
      // journal may still need the backup.
      recoveryGate.go();
      await recovering;
      // Later recoveries, from either directory, finish the job.
      for (const d of [y, x, y]) await recoverTransactions(d);
      assert.equal(await Deno.readTextFile(`${x}/a.txt`), `${expected} a`);
      assert.equal(await Deno.readTextFile(`${y}/b.txt`), `${expected} b`);
      assert.deepEqual(await tree(x), ["a.txt"]);
      assert.deepEqual(await tree(y), ["b.txt"]);
    });
  });
}

Deno.test("a commit unlocks its staged files before closing them, so a child spawned meanwhile keeps no lock", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    // forkingFs closes nothing until flush, like a child that still shares
    // every descriptor: only the explicit unlocks release the locks.
    const fs = forkingFs();
    try {
      await transaction(async (tx) => {
        await tx.writeText(`${dir}/a.txt`, "new a");
      }, { fs });
      // The staged temp became a.txt: its lock must be free.
      const file = await Deno.open(`${dir}/a.txt`);
      try {
        assert.equal(await file.tryLock(true), true);
      } finally {
        file.close();
      }
    } finally {
      fs.flush();
    }
  });
});
