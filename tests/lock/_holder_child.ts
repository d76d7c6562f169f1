// A lock holder in its own process, driven by lines on stdin and
// reporting JSON events on stdout (one per line).
//
// argv[0]: JSON { root, name, ttl?, heartbeat?, host?, kind? }
// Commands:
//   acquire <timeoutMs>        acquire and hold -> acquired | timeout
//   try-at <epochMs>           at that wall-clock time, try once ->
//                              acquired | busy
//   inc <n> <file> <holdMs>    n times: acquire, add our fence to the
//                              counter file, release -> acq, done, finished
//   release                    -> released
//   crash                      exit at once without releasing
//   exit                       release if held, exit 0
// Events also: compromised { reason, aborted }.

import { acquireLock, type Lock, tryAcquireLock } from "../../lock/mod.ts";
import type { LockOptions } from "../../lock/mod.ts";

interface Config {
  root: string;
  name: string;
  ttl?: number;
  heartbeat?: number;
  host?: string;
  kind?: "dir" | "flock";
}

const config: Config = JSON.parse(Deno.args[0]!);
const encoder = new TextEncoder();

function emit(event: Record<string, unknown>): void {
  // Synchronous, so an event is out before a kill can land after it.
  Deno.stdout.writeSync(
    encoder.encode(
      JSON.stringify({ ...event, pid: Deno.pid, t: Date.now() }) + "\n",
    ),
  );
}

let held: Lock | null = null;

function options(extra: LockOptions = {}): LockOptions {
  return {
    root: config.root,
    ...(config.ttl ? { ttl: config.ttl } : {}),
    ...(config.heartbeat ? { heartbeat: config.heartbeat } : {}),
    ...(config.host ? { host: config.host } : {}),
    ...(config.kind ? { kind: config.kind } : {}),
    onCompromised: (event) => {
      emit({
        ev: "compromised",
        reason: event.reason,
        aborted: held?.signal.aborted ?? null,
        fence: event.fence,
      });
    },
    ...extra,
  };
}

interface Counter {
  count: number;
  fences: number[];
}

async function increment(n: number, file: string, holdMs: number) {
  for (let i = 0; i < n; i++) {
    const lock = await acquireLock(
      config.name,
      options({ timeout: 120_000, purpose: "inc" }),
    );
    held = lock;
    emit({ ev: "acq", fence: lock.fence });
    let counter: Counter = { count: 0, fences: [] };
    try {
      counter = JSON.parse(await Deno.readTextFile(file));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
    counter = {
      count: counter.count + 1,
      fences: [...counter.fences, lock.fence],
    };
    // Atomic replace, so a kill never leaves a torn counter.
    const tmp = `${file}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(counter));
    await Deno.rename(tmp, file);
    emit({ ev: "done", fence: lock.fence, value: counter.count });
    held = null;
    await lock.release();
  }
  emit({ ev: "finished" });
}

async function run(line: string): Promise<boolean> {
  const [command, ...args] = line.trim().split(" ");
  switch (command) {
    case "acquire": {
      try {
        held = await acquireLock(
          config.name,
          options({ timeout: Number(args[0]) }),
        );
        emit({ ev: "acquired", fence: held.fence, token: held.token });
      } catch (err) {
        emit({
          ev: "timeout",
          code: (err as { code?: string }).code,
          message: String(err),
        });
      }
      return true;
    }
    case "try-at": {
      const wait = Number(args[0]) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      held = await tryAcquireLock(config.name, options());
      emit(
        held
          ? { ev: "acquired", fence: held.fence, token: held.token }
          : { ev: "busy" },
      );
      return true;
    }
    case "inc":
      await increment(Number(args[0]), args[1]!, Number(args[2] ?? 0));
      return true;
    case "release": {
      const lock = held;
      held = null;
      await lock?.release();
      emit({ ev: "released", compromised: lock?.compromised ?? null });
      return true;
    }
    case "crash":
      Deno.exit(3);
      break;
    case "exit":
      await held?.release();
      return false;
  }
  return true;
}

emit({ ev: "ready" });
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffer = "";
outer: for await (const chunk of lines) {
  buffer += chunk;
  let newline: number;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    if (line.trim() && !(await run(line))) break outer;
  }
}
await (held as Lock | null)?.release();
Deno.exit(0);
