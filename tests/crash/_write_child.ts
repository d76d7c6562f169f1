// Child of write_crash_test.ts. Usage:
//   _write_child.ts <dir> random          write versions until killed
//   _write_child.ts <dir> step <op> <n>   write 2 versions, SIGKILL itself
//                                         just before the nth call of op
//   _write_child.ts <dir> recover         only recover and report
// It first runs recoverDir(dir) and prints `ready <removed> <left>` (temps
// removed, temps still there), then `ack <version>` after each write.

import {
  denoFileSystem,
  readJson,
  recoverDir,
  writeJson,
} from "../../fs/mod.ts";
import { isTempName } from "../../fs/_atomic_write.ts";
import { faultFs } from "../_helpers/fault_fs.ts";

const [dir, mode, op, nth] = Deno.args;
const target = `${dir}/state.json`;
const encoder = new TextEncoder();

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

const { removed } = await recoverDir(dir!);
const left = [...Deno.readDirSync(dir!)].filter((e) => isTempName(e.name));
say(`ready ${removed.length} ${left.length}`);
if (mode === "recover") Deno.exit(0);

let version = 0;
try {
  version = (await readJson<{ version: number }>(target)).version;
} catch { /* first run */ }

// In step mode the child kills itself just before the nth call of `op`.
const fs = mode === "step"
  ? faultFs(denoFileSystem, [{ op: op!, nth: Number(nth), kill: true }])
  : denoFileSystem;

const writes = mode === "step" ? 2 : 100_000;
for (let i = 0; i < writes; i++) {
  version++;
  const size = (version * 7919) % 40_000;
  const body = String.fromCharCode(97 + version % 26).repeat(size);
  await writeJson(target, { version, sha256: await sha256(body), body }, {
    fs,
    space: 0,
  });
  say(`ack ${version}`);
}
