import assert from "node:assert/strict";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";

function spawnLock(args: string[], cwd: string): Promise<Deno.ChildProcess> {
  return spawnCli(["lock", ...args], { cwd });
}

function lock(args: string[], cwd: string) {
  return runCli(["lock", ...args], { cwd });
}

async function waitForFile(path: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (true) {
    try {
      await Deno.lstat(path);
      return;
    } catch {
      if (Date.now() > until) {
        throw new Error(`No ${path} after ${timeoutMs}ms`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Starts `sturdy lock NAME -- sh -c 'touch started; exec sleep S'`, waits. */
async function holdLock(
  dir: string,
  name: string,
  seconds: number,
  flags: string[] = [],
): Promise<Deno.ChildProcess> {
  const holder = await spawnLock(
    [
      name,
      "--purpose",
      "test holder",
      ...flags,
      "--",
      "sh",
      "-c",
      `touch started; exec sleep ${seconds}`,
    ],
    dir,
  );
  await waitForFile(`${dir}/started`);
  return holder;
}

Deno.test("sturdy lock runs the command holding the lock and gives it the name and a growing fence", async () => {
  await inTempDir(async (dir) => {
    const cmd = ["sh", "-c", 'echo "$STURDY_LOCK_NAME $STURDY_LOCK_FENCE"'];
    const first = await lock(["deploy", "--", ...cmd], dir);
    assert.equal(first.code, 0, first.stderr);
    const second = await lock(["deploy", "--", ...cmd], dir);
    const [name, f1] = first.stdout.trim().split(" ");
    const [, f2] = second.stdout.trim().split(" ");
    assert.equal(name, "deploy");
    assert.ok(Number(f2) > Number(f1), `${f1} then ${f2}`);
  });
});

Deno.test("sturdy lock exits with the command's code and releases the lock", async () => {
  await inTempDir(async (dir) => {
    const run = await lock(["job", "--", "sh", "-c", "exit 7"], dir);
    assert.equal(run.code, 7);
    const status = await lock(["status", "--json"], dir);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout).locks, []);
  });
});

Deno.test("sturdy lock exits 127 for a command that does not exist, and releases the lock", async () => {
  await inTempDir(async (dir) => {
    const run = await lock(["job", "--", "no-such-command-sturdy"], dir);
    assert.equal(run.code, 127);
    assert.match(run.stderr, /command not found/);
    const again = await lock(["job", "--timeout", "0", "--", "true"], dir);
    assert.equal(again.code, 0, again.stderr);
  });
});

Deno.test("sturdy lock exits 3 when the lock is held past --timeout, naming the holder; SIGTERM reaches the holder's command and frees the lock", async () => {
  await inTempDir(async (dir) => {
    const holder = await holdLock(dir, "deploy", 30);
    try {
      const run = await lock(
        ["--verbose", "deploy", "--timeout", "300ms", "--", "true"],
        dir,
      );
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /waiting for lock "deploy": held by pid \d+/);
      assert.match(run.stderr, /Cannot acquire lock "deploy"/);
      assert.match(
        run.stderr,
        new RegExp(`pid ${holder.pid} on host \\S+ for \\d`),
      );
      assert.match(run.stderr, /sturdy lock break deploy/);
    } finally {
      holder.kill("SIGTERM");
    }
    const out = await holder.output();
    assert.equal(
      out.code,
      128 + 15,
      "sh was terminated by the forwarded SIGTERM",
    );
    const after = await lock(["deploy", "--timeout", "0", "--", "true"], dir);
    assert.equal(after.code, 0, after.stderr);
  });
});

Deno.test("sturdy lock status shows the holder, its state and fence, as a table and as JSON", async () => {
  await inTempDir(async (dir) => {
    const holder = await holdLock(dir, "nightly", 30);
    try {
      const table = await lock(["status"], dir);
      assert.equal(table.code, 0, table.stderr);
      const [header, row] = table.stdout.trim().split("\n");
      assert.match(
        header!,
        /^NAME\s+HOLDER\s+HELD FOR\s+HEARTBEAT\s+STATE\s+FENCE$/,
      );
      assert.match(
        row!,
        new RegExp(
          `^nightly\\s+${holder.pid}@\\S+\\s+\\S+\\s+.+ago\\s+alive\\s+1$`,
        ),
      );
      const json = await lock(["status", "nightly", "--json"], dir);
      const [info] = JSON.parse(json.stdout).locks;
      assert.equal(info.name, "nightly");
      assert.equal(info.owner.pid, holder.pid);
      assert.equal(info.owner.purpose, "test holder");
      assert.equal(info.holder, "alive");
      const none = await lock(["status", "other"], dir);
      assert.match(none.stdout, /Lock "other" is not held/);
    } finally {
      holder.kill("SIGTERM");
      await holder.output();
    }
  });
});

Deno.test("sturdy lock break refuses a live holder; --force breaks it and the holder stops its command", async () => {
  await inTempDir(async (dir) => {
    const holder = await holdLock(dir, "deploy", 30, ["--ttl", "600ms"]);
    try {
      const refused = await lock(["break", "deploy"], dir);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        new RegExp(
          `Refusing to break lock "deploy": held by pid ${holder.pid} on host \\S+ for \\d.*, and it is alive`,
        ),
      );
      assert.match(refused.stderr, /--force/);
      const forced = await lock(["break", "deploy", "--force"], dir);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /Broke lock "deploy"/);
    } finally {
      // The holder notices at its next heartbeat (every 200ms).
      const out = await holder.output();
      assert.equal(out.code, 128 + 15);
      assert.match(
        new TextDecoder().decode(out.stderr),
        /lock "deploy" was lost \(its lock was removed/,
      );
    }
    const taken = await lock(["deploy", "--timeout", "0", "--", "true"], dir);
    assert.equal(taken.code, 0, taken.stderr);
  });
});

Deno.test("sturdy lock break removes the lock of a holder killed with SIGKILL without --force", async () => {
  await inTempDir(async (dir) => {
    const holder = await holdLock(dir, "deploy", 1);
    holder.kill("SIGKILL");
    await holder.output();
    const status = await lock(["status", "deploy", "--json"], dir);
    assert.equal(JSON.parse(status.stdout).locks[0]?.holder, "dead");
    const broke = await lock(["break", "deploy"], dir);
    assert.equal(broke.code, 0, broke.stderr);
    const empty = await lock(["status", "--json"], dir);
    assert.deepEqual(JSON.parse(empty.stdout).locks, []);
  });
});

Deno.test("sturdy lock refuses bad usage with exit 2", async () => {
  await inTempDir(async (dir) => {
    const cases: Array<[string[], RegExp]> = [
      [["deploy"], /Missing the command to run: put it after "--"/],
      [[], /Missing the lock name/],
      [["../x", "--", "true"], /Invalid lock name "\.\.\/x"/],
      [["deploy", "--timeout", "soon", "--", "true"], /--timeout/],
      [["deploy", "--kind", "nfs", "--", "true"], /Invalid --kind "nfs"/],
      [["deploy", "extra", "--", "true"], /Unexpected "extra"/],
      [["break"], /Missing the lock to break/],
      [["status", "--force"], /does not apply/],
      [["deploy", "--tiemout", "1s", "--", "true"], /did you mean "--timeout"/],
    ];
    for (const [args, message] of cases) {
      const run = await lock(args, dir);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    // Nothing was created for the bad name.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("sturdy lock --help shows usage and examples", async () => {
  await inTempDir(async (dir) => {
    const run = await lock(["--help"], dir);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /sturdy lock NAME \[options\] -- CMD/);
    assert.match(run.stdout, /STURDY_LOCK_FENCE/);
    assert.match(
      run.stdout,
      /Examples:\n {2}sturdy lock deploy -- \.\/deploy\.sh/,
    );
  });
});
