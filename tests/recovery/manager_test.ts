import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Escalation,
  RecoveryError,
  type RecoveryLogRecord,
  TaskFailedError,
} from "../../recovery/mod.ts";
import { openCheckpoints } from "../../checkpoint/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { codeError, InstantClock, manager } from "./_helpers.ts";

async function readJsonFile<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

function events(log: RecoveryLogRecord[]): string[] {
  return log.map((r) => r.event);
}

Deno.test("execute() retries a transient failure with backoff and records a recovery", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root);
    let calls = 0;
    const result = await recovery.execute("fetch", (ctx) => {
      calls++;
      assert.equal(ctx.attempt, calls);
      if (calls < 3) throw codeError("ECONNRESET", "socket hang up");
      return { rows: 7 };
    }, { strategy: "retry" });
    assert.equal(result.status, "succeeded");
    assert.equal(result.ok, true);
    assert.deepEqual(result.value, { rows: 7 });
    assert.equal(result.attempts, 3);
    assert.equal(result.recovered, true);
    assert.deepEqual(clock.sleeps, [100, 200]);
    const state = (await recovery.loadTaskState("fetch"))!;
    assert.equal(state.status, "succeeded");
    assert.equal(state.attemptsMade, 3);
    assert.equal(state.attemptsStarted, 3);
    assert.deepEqual(state.result, { rows: 7 });
    const log = await recovery.readLog("fetch");
    assert.deepEqual(events(log), [
      "task_started",
      "attempt_started",
      "attempt_failed",
      "decision",
      "retry_scheduled",
      "attempt_started",
      "attempt_failed",
      "decision",
      "retry_scheduled",
      "attempt_started",
      "succeeded",
    ]);
    const done = log.at(-1)!;
    assert.equal(done.recovered, true);
    assert.equal(done.timeToRecoverMs, 300);
    assert.equal(log[2]!.category, "network");
  });
});

Deno.test("execute() fails once retries are spent, keeping the last error", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const result = await recovery.execute("flaky", () => {
      throw codeError("EBUSY", "device busy");
    }, { strategy: "retry", retry: { maxAttempts: 4 } });
    assert.equal(result.status, "failed");
    assert.equal(result.ok, false);
    assert.equal(result.attempts, 4);
    assert.equal(result.error?.code, "EBUSY");
    assert.equal(result.error?.category, "transient");
    assert.equal(result.decisions.length, 3);
    assert.ok(result.decisions.every((d) => d.action === "retry"));
  });
});

Deno.test("a plain retry strategy does not retry a permanent error", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root);
    let calls = 0;
    const result = await recovery.execute("read-config", () => {
      calls++;
      throw new Deno.errors.NotFound("config.json");
    }, { strategy: "retry" });
    assert.equal(calls, 1);
    assert.equal(result.status, "failed");
    assert.deepEqual(clock.sleeps, []);
    const stop = (await recovery.readLog("read-config")).find((r) =>
      r.event === "decision"
    )!;
    assert.match(
      stop.reason!,
      /permanent error \(NotFound\): retrying cannot help/,
    );
  });
});

Deno.test("an error's retryable: false and retryAfterMs override the rules", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root);
    let calls = 0;
    const no = await recovery.execute("no-retry", () => {
      calls++;
      throw Object.assign(new Error("quota gone"), { retryable: false });
    }, { strategy: ["retry", "skip"] });
    assert.equal(calls, 1);
    assert.equal(no.status, "skipped");
    const slow = await recovery.execute("slow-down", (ctx) => {
      if (ctx.attempt === 1) {
        throw Object.assign(new Error("busy"), { retryAfterMs: 4_321 });
      }
      return "ok";
    }, { strategy: "retry" });
    assert.equal(slow.status, "succeeded");
    assert.deepEqual(clock.sleeps, [4_321]);
  });
});

Deno.test("chain retry then escalate writes a complete escalation and calls the hook", async () => {
  await inTempDir(async (root) => {
    const seen: Escalation[] = [];
    const { recovery } = manager(root, {
      escalate: (esc) => {
        seen.push(esc);
      },
    });
    const cause = new Error("upstream said 502");
    const result = await recovery.execute("sync", () => {
      throw new Error("sync failed", { cause });
    }, { strategy: ["retry", "escalate"] });
    assert.equal(result.status, "escalated");
    assert.equal(result.attempts, 3);
    assert.equal(result.escalationId, "esc-sync-1");
    const esc = await readJsonFile<Escalation>(
      join(root, "recovery/escalations/sync.json"),
    );
    assert.equal(esc.format, "sturdy.escalation/1");
    assert.equal(esc.type, "escalation");
    assert.equal(esc.status, "open");
    assert.match(
      esc.summary,
      /Task "sync" failed 3 runs over .*transient: sync failed/,
    );
    assert.deepEqual(esc.error?.causeChain, ["Error: upstream said 502"]);
    assert.deepEqual(
      esc.timeline.map((d) => d.action),
      ["retry", "retry", "escalate"],
    );
    assert.ok(
      esc.suggested.includes(
        'sturdy recover resolve sync --action retry --note "…"',
      ),
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.id, esc.id);
    // An open escalation stops the task from running again by itself.
    let ran = false;
    const again = await recovery.execute("sync", () => {
      ran = true;
    });
    assert.equal(ran, false);
    assert.equal(again.status, "escalated");
    assert.equal(again.replayed, true);
  });
});

Deno.test("a failing escalate hook is logged, never thrown", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root, {
      escalate: () => {
        throw new Error("pager down");
      },
    });
    const result = await recovery.execute("t", () => {
      throw new RangeError("bad");
    }, { strategy: "escalate" });
    assert.equal(result.status, "escalated");
    const log = await recovery.readLog("t");
    assert.ok(
      log.some((r) =>
        r.event === "escalate_hook_failed" && r.error === "Error: pager down"
      ),
    );
  });
});

Deno.test("rollback restores several files byte-exactly, including deleted and created ones", async () => {
  await inTempDir(async (root) => {
    const work = join(root, "work");
    await Deno.mkdir(join(work, "sub"), { recursive: true });
    const a = join(work, "a.json");
    const bin = join(work, "sub/blob.bin");
    const gone = join(work, "gone.txt");
    const created = join(work, "new.txt");
    const bytes = crypto.getRandomValues(new Uint8Array(60_000));
    await Deno.writeTextFile(a, '{"version":1}\n');
    await Deno.writeFile(bin, bytes);
    await Deno.chmod(bin, 0o640);
    await Deno.writeTextFile(gone, "keep me");
    const { recovery } = manager(root);
    const result = await recovery.execute("migrate", async () => {
      await Deno.writeTextFile(a, '{"version":2,"half":');
      await Deno.writeFile(bin, new Uint8Array([1, 2, 3]));
      await Deno.remove(gone);
      await Deno.writeTextFile(created, "junk");
      throw new Error("step 3 of 4 failed");
    }, { strategy: "rollback", files: [a, bin, gone, created] });
    assert.equal(result.status, "rolled_back");
    assert.equal(await Deno.readTextFile(a), '{"version":1}\n');
    assert.deepEqual(await Deno.readFile(bin), bytes);
    assert.equal((await Deno.stat(bin)).mode! & 0o777, 0o640);
    assert.equal(await Deno.readTextFile(gone), "keep me");
    await assert.rejects(Deno.stat(created), Deno.errors.NotFound);
    // No snapshot or transaction leftovers.
    assert.deepEqual(
      [...Deno.readDirSync(work)].map((e) => e.name).sort(),
      [".sturdy-tx", "a.json", "gone.txt", "sub"],
    );
    // fs/'s transaction folder stays, empty.
    assert.deepEqual([...Deno.readDirSync(join(work, ".sturdy-tx"))], []);
    assert.deepEqual(
      [...Deno.readDirSync(join(root, "recovery/snapshots"))],
      [],
    );
    const log = events(await recovery.readLog("migrate"));
    assert.ok(log.includes("rollback_started"));
    assert.ok(log.includes("rollback_done"));
  });
});

Deno.test("chain retry, rollback, escalate: retries, then restores, then hands over", async () => {
  await inTempDir(async (root) => {
    const file = join(root, "counter.txt");
    await Deno.writeTextFile(file, "0");
    const { recovery } = manager(root);
    let calls = 0;
    const result = await recovery.execute("count", async () => {
      calls++;
      await Deno.writeTextFile(file, String(calls * 10));
      throw codeError("EAGAIN", "try again");
    }, { strategy: ["retry", "rollback", "escalate"], files: [file] });
    assert.equal(calls, 3);
    assert.equal(result.status, "escalated");
    assert.equal(await Deno.readTextFile(file), "0");
    assert.deepEqual(result.decisions.map((d) => d.action), [
      "retry",
      "retry",
      "rollback",
      "escalate",
    ]);
    // The snapshot stays while the escalation is open: a person may roll
    // back again.
    const esc = (await recovery.escalations())[0]!;
    assert.ok(esc.suggested.some((s) => s.includes("--action rollback")));
  });
});

Deno.test("rollback then retry runs again from the restored state", async () => {
  await inTempDir(async (root) => {
    const file = join(root, "state.txt");
    await Deno.writeTextFile(file, "clean");
    const { recovery } = manager(root);
    const seen: string[] = [];
    const result = await recovery.execute("redo", async (ctx) => {
      seen.push(await Deno.readTextFile(file));
      await Deno.writeTextFile(file, "dirty");
      if (ctx.attempt === 1) throw new Error("half done");
      return "ok";
    }, { strategy: ["rollback", "retry"], files: [file] });
    assert.equal(result.status, "succeeded");
    assert.deepEqual(seen, ["clean", "clean"]);
  });
});

Deno.test("a rollback strategy with nothing to roll back is refused up front", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await assert.rejects(
      recovery.execute("x", () => 1, { strategy: ["retry", "rollback"] }),
      (err: unknown) =>
        err instanceof RecoveryError && err.code === "invalid_option" &&
        /pass `files` or a `checkpoint`/.test(err.message),
    );
    await assert.rejects(
      recovery.execute("x", () => 1, {
        strategy: ["retry", "reboot" as "retry"],
      }),
      /Invalid strategy/,
    );
  });
});

Deno.test("rollback restores the task's pre_operation checkpoint through apply", async () => {
  await inTempDir(async (root) => {
    let memory = { balance: 10 };
    await using checkpoints = await openCheckpoints<typeof memory>({
      agentId: "bank",
      root,
      collect: () => memory,
      apply: (state) => {
        memory = state;
      },
    });
    const { recovery } = manager(root);
    const result = await recovery.execute("transfer", () => {
      memory = { balance: -5 };
      throw new Error("transfer failed");
    }, { strategy: "rollback", checkpoint: checkpoints });
    assert.equal(result.status, "rolled_back");
    assert.deepEqual(memory, { balance: 10 });
    const ops = await checkpoints.listOperations();
    assert.equal(ops.length, 1);
    assert.equal(ops[0]!.status, "failed");
    const ok = await recovery.execute("deposit", () => {
      memory = { balance: 20 };
      return memory.balance;
    }, { strategy: "rollback", checkpoint: checkpoints });
    assert.equal(ok.value, 20);
    assert.equal(
      (await checkpoints.listOperations({ status: "open" })).length,
      0,
    );
  });
});

Deno.test("skip marks the task skipped; a fallback supplies a value", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const skipped = await recovery.execute("optional", () => {
      throw new TypeError("x is undefined");
    }, { strategy: "skip" });
    assert.equal(skipped.status, "skipped");
    assert.equal(skipped.ok, false);
    const withFallback = await recovery.execute("prices", () => {
      throw new TypeError("x is undefined");
    }, {
      strategy: "skip",
      fallback: ({ status, error }) => {
        assert.equal(status, "skipped");
        assert.ok(error instanceof TypeError);
        return [] as number[];
      },
    });
    assert.equal(withFallback.status, "skipped");
    assert.equal(withFallback.ok, true);
    assert.equal(withFallback.fromFallback, true);
    assert.deepEqual(withFallback.value, []);
    // Skipped is final: not run again.
    let ran = false;
    const again = await recovery.execute("optional", () => {
      ran = true;
    }, { strategy: "skip" });
    assert.equal(ran, false);
    assert.equal(again.replayed, true);
  });
});

Deno.test("auto applies the default rules: corruption rolls back, permission escalates, transient retries", async () => {
  await inTempDir(async (root) => {
    const file = join(root, "data.json");
    await Deno.writeTextFile(file, "{}");
    const { recovery, clock } = manager(root);
    const corrupt = await recovery.execute("parse", async () => {
      await Deno.writeTextFile(file, "{oops");
      JSON.parse(await Deno.readTextFile(file));
    }, { files: [file] });
    assert.equal(corrupt.status, "rolled_back");
    assert.equal(await Deno.readTextFile(file), "{}");
    assert.equal(corrupt.decisions[0]!.rule, "corruption");

    const denied = await recovery.execute("upload", () => {
      throw Object.assign(new Error("Forbidden"), { status: 403 });
    });
    assert.equal(denied.status, "escalated");
    assert.equal(denied.decisions[0]!.rule, "permission");

    clock.sleeps.length = 0;
    const full = await recovery.execute("save", () => {
      throw codeError("ENOSPC", "no space left on device");
    });
    assert.equal(full.status, "failed");
    assert.equal(full.attempts, 3);
    // The transient rule's own first delay (2 s), doubling.
    assert.deepEqual(clock.sleeps, [2_000, 4_000]);

    const bug = await recovery.execute("bug", () => {
      throw new RangeError("index out of range");
    });
    assert.equal(bug.status, "failed");
    assert.equal(bug.attempts, 1);
    assert.deepEqual(bug.decisions.map((d) => `${d.rule}:${d.action}`), [
      "default:fail",
    ]);
  });
});

Deno.test("auto without files turns a corruption rollback into a plain failure", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const result = await recovery.execute("parse", () => {
      JSON.parse("{");
    });
    assert.equal(result.status, "failed");
    const log = await recovery.readLog("parse");
    assert.ok(log.some((r) => /nothing to roll back/.test(r.note ?? "")));
  });
});

Deno.test("custom rules match by name, code, status, message and predicate, first match wins", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root, {
      rules: [
        {
          name: "validation",
          match: { name: "ValidationError" },
          action: "skip",
        },
        { name: "gone", match: { status: 410 }, action: "fail" },
        {
          name: "locked",
          match: { code: ["ELOCKED", "EBUSY"] },
          action: "retry",
          attempts: 2,
          delay: 7,
          then: "escalate",
        },
        {
          name: "late-attempts",
          match: (_err, state) => state.attemptsMade >= 2,
          action: "escalate",
        },
        {
          name: "maintenance",
          match: { message: /maintenance/i },
          action: "retry",
        },
        { name: "rest", match: "*", action: "fail" },
      ],
    });
    const validation = Object.assign(new Error("bad email"), {
      name: "ValidationError",
    });
    assert.equal(
      (await recovery.execute("a", () => {
        throw validation;
      })).status,
      "skipped",
    );
    assert.equal(
      (await recovery.execute("b", () => {
        throw Object.assign(new Error("gone"), { status: 410 });
      })).status,
      "failed",
    );
    const locked = await recovery.execute("c", () => {
      throw codeError("ELOCKED");
    });
    assert.equal(locked.status, "escalated");
    assert.equal(locked.attempts, 2);
    assert.deepEqual(locked.decisions.map((d) => `${d.rule}:${d.action}`), [
      "locked:retry",
      "locked:escalate",
    ]);
    assert.equal(locked.decisions[0]!.delayMs, 7);
    const maint = await recovery.execute("d", () => {
      throw new Error("Down for MAINTENANCE");
    });
    // Retried by "maintenance" until the predicate rule sees two attempts.
    assert.equal(maint.status, "escalated");
    assert.deepEqual(maint.decisions.map((d) => d.rule), [
      "maintenance",
      "late-attempts",
    ]);
  });
});

Deno.test("manual waits for a resolution and acts on it", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root, {
      clock: new (class extends InstantClock {
        override sleep(ms: number, signal?: AbortSignal): Promise<void> {
          // Answer the question while the task waits.
          if (this.sleeps.length === 1) {
            queueMicrotask(() => {
              recovery.resolve("approve", {
                action: "retry",
                note: "approved by ops",
                by: "test",
              }).catch(() => {});
            });
          }
          return super.sleep(ms, signal).then(() =>
            new Promise((r) => setTimeout(r, 5))
          );
        }
      })(),
    });
    let calls = 0;
    const result = await recovery.execute("approve", () => {
      if (++calls === 1) throw new Error("needs approval");
      return "deployed";
    }, { strategy: "manual", prompt: "Approve the deploy?" });
    assert.equal(result.status, "succeeded");
    assert.equal(result.value, "deployed");
    const [esc] = await recovery.escalations();
    assert.equal(esc!.type, "manual");
    assert.equal(esc!.prompt, "Approve the deploy?");
    assert.equal(esc!.status, "resolved");
    assert.equal(esc!.resolution!.note, "approved by ops");
    const log = await recovery.readLog("approve");
    assert.ok(log.some((r) => r.event === "manual_requested"));
    assert.ok(
      log.some((r) =>
        r.event === "manual_resolved" &&
        /retry by test: approved by ops/.test(r.note!)
      ),
    );
  });
});

Deno.test("manual without an answer in time escalates", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root, { manualTimeout: 60_000 });
    const result = await recovery.execute("ask", () => {
      throw new Error("which region?");
    }, { strategy: "manual" });
    assert.equal(result.status, "escalated");
    assert.equal(clock.sleeps.reduce((a, b) => a + b, 0), 60_000);
    const esc = (await recovery.escalations())[0]!;
    assert.equal(esc.type, "escalation");
    assert.equal(esc.status, "open");
  });
});

Deno.test("resolve() applies skip, fail and rollback at once to a task nobody runs", async () => {
  await inTempDir(async (root) => {
    const file = join(root, "f.txt");
    await Deno.writeTextFile(file, "before");
    const { recovery } = manager(root);
    await recovery.execute("esc", async () => {
      await Deno.writeTextFile(file, "after");
      throw new Deno.errors.PermissionDenied("write /etc/x");
    }, { strategy: "escalate", files: [file] });
    assert.equal(await Deno.readTextFile(file), "after");
    const esc = await recovery.resolve("esc", {
      action: "rollback",
      note: "undo it",
      by: "cli:alice",
    });
    assert.equal(esc.status, "resolved");
    assert.equal(await Deno.readTextFile(file), "before");
    assert.equal((await recovery.loadTaskState("esc"))!.status, "rolled_back");
    await assert.rejects(
      recovery.resolve("esc", { action: "skip" }),
      (err: unknown) =>
        err instanceof RecoveryError && err.code === "escalation_not_found" &&
        /already resolved \(rollback by cli:alice\)/.test(err.message),
    );
    await assert.rejects(
      recovery.resolve("nothing", { action: "skip" }),
      /has no escalation/,
    );
    await assert.rejects(
      recovery.resolve("esc", { action: "reboot" as "skip" }),
      /Invalid resolution "reboot"/,
    );
  });
});

Deno.test("a retry resolution makes the next execute run an escalated task afresh", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await recovery.execute("t", () => {
      throw new RangeError("bad input");
    }, { strategy: "escalate" });
    await recovery.resolve("t", { action: "retry" });
    const result = await recovery.execute("t", () => "fixed", {
      strategy: "escalate",
    });
    assert.equal(result.status, "succeeded");
    assert.equal(result.attempts, 1);
    assert.equal((await recovery.loadTaskState("t"))!.executions, 2);
  });
});

Deno.test("a task found running after a crash resumes without charging the cut-short run", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await recovery.execute("job", (ctx) => {
      if (ctx.attempt === 1) throw codeError("EAGAIN");
      return "ok";
    }, { strategy: "retry", retry: { maxAttempts: 1 } }); // fails fast
    const state = (await recovery.loadTaskState("job"))!;
    // Pretend a process died in its second run.
    await recovery.saveTaskState({
      ...state,
      status: "running",
      attemptsStarted: 2,
      attemptsMade: 1,
      progress: { page: 4 },
    });
    const seen: unknown[] = [];
    const result = await recovery.execute("job", (ctx) => {
      seen.push(ctx.attempt, ctx.previousProgress, ctx.attemptsStarted);
      return "done";
    }, { strategy: "retry" });
    assert.equal(result.status, "succeeded");
    assert.deepEqual(seen, [2, { page: 4 }, 3]);
    assert.equal(result.attempts, 2);
    const log = await recovery.readLog("job");
    const resumed = log.find((r) => r.event === "task_resumed")!;
    assert.match(
      resumed.note!,
      /found running \(run 2 was cut short\); 1 run made so far/,
    );
    assert.ok(log.some((r) => r.event === "interrupted" && r.attempt === 2));
  });
});

Deno.test("a task waiting to retry resumes at its next attempt time", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root);
    const now = clock.now();
    await recovery.saveTaskState({
      format: "sturdy.task/1",
      taskId: "w",
      status: "waiting_retry",
      strategy: "retry",
      attemptsStarted: 1,
      attemptsMade: 1,
      executions: 1,
      step: 0,
      startedAt: now - 1_000,
      updatedAt: now,
      nextAttemptAt: now + 2_500,
      decisions: [],
    });
    const result = await recovery.execute("w", (ctx) => ctx.attempt, {
      strategy: "retry",
    });
    assert.equal(result.value, 2);
    assert.deepEqual(clock.sleeps, [2_500]);
  });
});

Deno.test("a succeeded task is replayed, never redone", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    let runs = 0;
    const first = await recovery.execute("once", () => ++runs);
    const second = await recovery.execute("once", () => ++runs);
    assert.equal(runs, 1);
    assert.equal(first.value, 1);
    assert.equal(second.value, 1);
    assert.equal(second.replayed, true);
  });
});

Deno.test("failed tasks run again unless rerun is false", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await recovery.execute("f", () => {
      throw new RangeError("no");
    });
    const replay = await recovery.execute("f", () => 1, { rerun: false });
    assert.equal(replay.status, "failed");
    assert.equal(replay.replayed, true);
    const rerun = await recovery.execute("f", () => 1);
    assert.equal(rerun.status, "succeeded");
  });
});

Deno.test("an abort leaves the task interrupted, uncharged, and rejects with the reason", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const controller = new AbortController();
    const reason = new Error("shutting down");
    const running = recovery.execute("long", async (ctx) => {
      controller.abort(reason);
      await new Promise((_, reject) =>
        ctx.signal.aborted
          ? reject(ctx.signal.reason)
          : ctx.signal.addEventListener("abort", () =>
            reject(ctx.signal.reason))
      );
    }, { signal: controller.signal });
    await assert.rejects(running, (err) => err === reason);
    const state = (await recovery.loadTaskState("long"))!;
    assert.equal(state.status, "interrupted");
    assert.equal(state.attemptsStarted, 1);
    assert.equal(state.attemptsMade, 0);
    const result = await recovery.execute("long", (ctx) => ctx.attempt);
    assert.equal(result.value, 1);
  });
});

Deno.test("an abort during a retry wait stops the wait at once", async () => {
  await inTempDir(async (root) => {
    const controller = new AbortController();
    const { recovery } = manager(root, {
      clock: new (class extends InstantClock {
        override sleep(_ms: number, signal?: AbortSignal): Promise<void> {
          controller.abort(new Error("stop"));
          return Promise.reject(signal!.reason);
        }
      })(),
    });
    await assert.rejects(
      recovery.execute("w", () => {
        throw codeError("EAGAIN");
      }, { strategy: "retry", signal: controller.signal }),
      /stop/,
    );
    assert.equal((await recovery.loadTaskState("w"))!.status, "interrupted");
  });
});

Deno.test("a run that exceeds its timeout counts as a timeout failure", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    let aborted = false;
    const result = await recovery.execute(
      "hang",
      (ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
      { strategy: "retry", timeout: 20, retry: { maxAttempts: 2 } },
    );
    assert.equal(aborted, true);
    assert.equal(result.status, "failed");
    assert.equal(result.attempts, 2);
    assert.equal(result.error?.category, "timeout");
    assert.match(result.error!.message, /run 2 timed out after 20ms/);
  });
});

Deno.test("progress is persisted and offered to the next run", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const result = await recovery.execute("pages", async (ctx) => {
      const start =
        (ctx.previousProgress as { page: number } | undefined)?.page ?? 0;
      for (let page = start; page < 5; page++) {
        await ctx.progress({ page });
        if (page === 2 && ctx.attempt === 1) throw codeError("ECONNRESET");
      }
      return start;
    }, { strategy: "retry" });
    assert.equal(result.value, 2);
  });
});

Deno.test("task ids that could escape the root are refused before anything is written", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    for (const id of ["../x", "a/b", "..", "", "a\0b", "x".repeat(129)]) {
      await assert.rejects(
        recovery.execute(id, () => 1),
        (err: unknown) =>
          err instanceof Error &&
          (err as { code?: string }).code === "invalid_name",
      );
    }
    await assert.rejects(
      recovery.loadTaskState("../../etc/passwd"),
      /Invalid task id/,
    );
    await assert.rejects(
      recovery.resolve("../x", { action: "skip" }),
      /Invalid task id/,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []);
  });
});

Deno.test("secrets in errors never reach the log, the state or the escalation", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await recovery.execute("leak", () => {
      throw new Error(
        "GET https://bob:hunter2@api.example.com/v1?api_key=sk_live_123 failed; Authorization: Bearer abc.def.ghi",
        { cause: new Error("token=s3cr3t rejected") },
      );
    }, { strategy: "escalate" });
    const dir = join(root, "recovery");
    for (
      const file of [
        "logs/leak.jsonl",
        "tasks/leak.json",
        "escalations/leak.json",
      ]
    ) {
      const text = await Deno.readTextFile(join(dir, file));
      for (
        const secret of ["hunter2", "sk_live_123", "abc.def.ghi", "s3cr3t"]
      ) {
        assert.ok(!text.includes(secret), `${secret} leaked into ${file}`);
      }
    }
    const state = (await recovery.loadTaskState("leak"))!;
    assert.match(
      state.lastError!.message,
      /https:\/\/\*\*\*@api\.example\.com/,
    );
  });
});

Deno.test("a second execute of a running task fails with task_busy", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const first = recovery.execute("busy", () => gate);
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(
      recovery.execute("busy", () => 1),
      (err: unknown) =>
        err instanceof RecoveryError && err.code === "task_busy" &&
        /another process is running it/.test(err.message),
    );
    release();
    assert.equal((await first).status, "succeeded");
  });
});

Deno.test("a corrupt task state is reported and left intact", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    await Deno.mkdir(join(root, "recovery/tasks"), { recursive: true });
    const path = join(root, "recovery/tasks/t.json");
    await Deno.writeTextFile(path, "{not json");
    await assert.rejects(
      recovery.execute("t", () => 1),
      (err: unknown) =>
        err instanceof RecoveryError && err.code === "corrupt_task_state" &&
        err.message.includes(path),
    );
    assert.equal(await Deno.readTextFile(path), "{not json");
    await Deno.writeTextFile(path, '{"format":"other"}');
    await assert.rejects(
      recovery.loadTaskState("t"),
      /not a sturdy.task\/1 record/,
    );
  });
});

Deno.test("wrap() returns values, undefined for skipped, and throws TaskFailedError otherwise", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    const ok = recovery.wrap("ok", (n: number) => n + 1);
    assert.equal(await ok(1), 2);
    const skipped = recovery.wrap("opt", () => {
      throw new RangeError("x");
    }, { strategy: "skip" });
    assert.equal(await skipped(), undefined);
    const failing = recovery.wrap("bad", () => {
      throw new RangeError("broken");
    });
    const err = await failing().catch((e) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.code, "task_failed");
    assert.match(
      err.message,
      /Task "bad" ended failed after 1 attempt: RangeError: broken/,
    );
  });
});

Deno.test("cleanup removes old finished tasks and keeps open escalations and open tasks", async () => {
  await inTempDir(async (root) => {
    const { recovery, clock } = manager(root);
    await recovery.execute("done", () => 1);
    await recovery.execute("esc", () => {
      throw new RangeError("x");
    }, { strategy: "escalate" });
    const t = clock.now();
    await recovery.saveTaskState({
      format: "sturdy.task/1",
      taskId: "open",
      status: "waiting_retry",
      strategy: "retry",
      attemptsStarted: 1,
      attemptsMade: 1,
      executions: 1,
      step: 0,
      startedAt: t,
      updatedAt: t,
      decisions: [],
    });
    clock.t += 8 * 86_400_000;
    const plan = await recovery.cleanup({
      olderThan: 7 * 86_400_000,
      dryRun: true,
    });
    assert.deepEqual([...new Set(plan.remove.map((i) => i.taskId))], ["done"]);
    assert.deepEqual(
      Object.fromEntries(plan.keep.map((i) => [i.taskId, i.reason])),
      { esc: "its escalation is open", open: "it is waiting_retry" },
    );
    assert.ok(await recovery.loadTaskState("done"));
    await recovery.cleanup({ olderThan: 7 * 86_400_000 });
    assert.equal(await recovery.loadTaskState("done"), undefined);
    assert.deepEqual(await recovery.readLog("done"), []);
    assert.ok(await recovery.loadTaskState("esc"));
    await assert.rejects(
      recovery.cleanup({ olderThan: -1 }),
      /Invalid olderThan/,
    );
    // Checkpoint retention runs with it.
    await using checkpoints = await openCheckpoints({ agentId: "a", root });
    for (let i = 0; i < 5; i++) {
      await checkpoints.create("routine", { state: i });
    }
    const withCheckpoints = await recovery.cleanup({
      olderThan: 0,
      checkpoints: [checkpoints],
    });
    // create() already applied retention: the last 3 stay.
    assert.equal(withCheckpoints.checkpoints[0]!.keep.length, 3);
  });
});

Deno.test("stats() over a generated history adds up", async () => {
  await inTempDir(async (root) => {
    const { recovery } = manager(root);
    // 12 tasks: i % 4 == 0 succeed at once, 1 recover after i%3+1 failures,
    // 2 are skipped, 3 escalate after exhausting retries.
    const expected = { succeeded: 0, recovered: 0, skipped: 0, escalated: 0 };
    for (let i = 0; i < 12; i++) {
      const kind = i % 4;
      const failures = i % 3 + 1;
      const result = await recovery.execute(`t${i}`, (ctx) => {
        if (kind === 0) return i;
        if (kind === 1 && ctx.attempt > failures) return i;
        if (kind === 2) throw new RangeError("optional input missing");
        throw codeError("ECONNRESET");
      }, {
        strategy: kind === 2 ? "skip" : ["retry", "escalate"],
        retry: { maxAttempts: 4 },
      });
      if (kind === 0) expected.succeeded++;
      if (kind === 1) {
        expected.succeeded++;
        expected.recovered++;
      }
      if (kind === 2) expected.skipped++;
      if (kind === 3) expected.escalated++;
      assert.ok(["succeeded", "skipped", "escalated"].includes(result.status));
    }
    const stats = await recovery.stats({ by: ["task"] });
    assert.equal(stats.total, 12);
    assert.equal(stats.tasks, 12);
    assert.equal(stats.succeeded, expected.succeeded);
    assert.equal(stats.recovered, expected.recovered);
    assert.equal(stats.skipped, expected.skipped);
    assert.equal(stats.escalated, expected.escalated);
    assert.equal(stats.successRate, 6 / 12);
    assert.equal(stats.recoveryRate, 3 / 9);
    assert.equal(stats.byStrategy["skip"]!.skipped, 3);
    assert.equal(stats.byStrategy["retry,escalate"]!.total, 9);
    // kind 1: failures 2,3,1 (i = 1, 5, 9) + kind 3: 4 each (i = 3, 7, 11).
    assert.equal(stats.byCategory["network"], 2 + 3 + 1 + 12);
    assert.equal(stats.byCategory["permanent"], 3);
    assert.deepEqual(stats.attemptsHistogram, {
      "1": 6,
      "2": 1,
      "3": 1,
      "4": 4,
    });
    assert.equal(stats.timeToRecover.count, 3);
    assert.equal(Object.keys(stats.byTask!).length, 12);
    const later = await recovery.stats({ since: Date.now() + 1e12 });
    assert.equal(later.total, 0);
    assert.equal(later.successRate, null);
  });
});
