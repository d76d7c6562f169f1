// Child of crash_test.ts and concurrency_test.ts. Usage:
//   _create_child.ts <root> random <from>      create versions from, from+1,
//                                              … until killed
//   _create_child.ts <root> count <from>       create one version, counting
//                                              file-system steps
//   _create_child.ts <root> step <from> <n>    create one version, SIGKILL
//                                              itself just before step n
//   _create_child.ts <root> burst <from> <k>   create k versions, then exit
// With `warm` after count's or step's arguments, the child first creates
// version <from> without counting, and counts (or kills) the create of
// <from>+1: a manager's second create, which writes its file before it
// takes the agent lock (it knows its seq from the first), where a first
// create takes the lock first.
// It prints `ready` once the manager is open, `ack <version> <seq>` after
// each create returns, and in count mode `steps <n>` at the end.
//
// A "step" is any call that changes the file system or syncs it, made
// through Deno's API by any layer (fs/, lock/, the checkpoint store and
// journal): Deno.* and FsFile methods are wrapped before the library is
// loaded, so nothing can bypass the count, whatever the manager lets a
// caller inject.

const [root, mode, fromText, nText] = Deno.args;
const warm = Deno.args.includes("warm");
const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

let counting = false;
let steps = 0;
const killAt = mode === "step" ? Number(nText) : Infinity;

function step(): void {
  if (!counting) return;
  steps++;
  if (steps === killAt) Deno.kill(Deno.pid, "SIGKILL");
}

const MUTATING = [
  "open",
  "openSync",
  "create",
  "createSync",
  "rename",
  "renameSync",
  "remove",
  "removeSync",
  "mkdir",
  "mkdirSync",
  "writeFile",
  "writeFileSync",
  "writeTextFile",
  "writeTextFileSync",
  "link",
  "linkSync",
  "symlink",
  "symlinkSync",
  "truncate",
  "truncateSync",
  "chmod",
  "chmodSync",
  "utime",
  "utimeSync",
  "makeTempFile",
  "makeTempDir",
] as const;
const deno = Deno as unknown as Record<string, unknown>;
for (const name of MUTATING) {
  const original = deno[name];
  if (typeof original !== "function") continue;
  deno[name] = function (this: unknown, ...args: unknown[]) {
    // Opening for reading changes nothing on disk.
    if (name.startsWith("open")) {
      const options = args[1] as Deno.OpenOptions | undefined;
      if (
        options && (options.write || options.append || options.create ||
          options.createNew || options.truncate)
      ) step();
    } else {
      step();
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
}
const FILE_METHODS = [
  "write",
  "writeSync",
  "syncData",
  "syncDataSync",
  "sync",
  "syncSync",
  "truncate",
  "truncateSync",
  "utime",
  "utimeSync",
] as const;
const proto = Deno.FsFile.prototype as unknown as Record<string, unknown>;
for (const name of FILE_METHODS) {
  const original = proto[name];
  if (typeof original !== "function") continue;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    step();
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
}

// Loaded only now, so every reference the library takes to Deno's API is
// already the wrapped one.
const { openCheckpoints } = await import("../../checkpoint/mod.ts");
const { stateFor } = await import("./_crash_state.ts");

await using checkpoints = await openCheckpoints<unknown>({
  agentId: "crash",
  root: root!,
  // A burst keeps everything, so the concurrency test can count it all.
  ...(mode === "burst" ? { retention: { auto: false } } : {}),
});
say("ready");

let version = Number(fromText);
const creates = mode === "random"
  ? Infinity
  : mode === "burst"
  ? Number(nText)
  : warm
  ? 2
  : 1;
for (let i = 0; i < creates; i++, version++) {
  const state = await stateFor(version);
  counting = (mode === "count" || mode === "step") && i === creates - 1;
  const ref = await checkpoints.create("routine", { state });
  counting = false;
  say(`ack ${version} ${ref.seq}`);
}
if (mode === "count" || mode === "step") say(`steps ${steps}`);
