// Shared helpers for the checkpoint manager tests.
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Flips one bit of the byte `fromEnd` bytes before the end of a file. */
export async function flipByte(path: string, fromEnd = 2): Promise<void> {
  const bytes = await Deno.readFile(path);
  const at = bytes.length - fromEnd;
  bytes[at] = bytes[at]! ^ 0x01;
  await Deno.writeFile(path, bytes);
}

/** Cuts `count` bytes off the end of a file. */
export async function truncateBy(path: string, count: number): Promise<void> {
  const { size } = await Deno.stat(path);
  await Deno.truncate(path, size - count);
}

/** Rewrites a checkpoint's header fields, keeping its payload. */
export async function editHeader(
  path: string,
  edit: (header: Record<string, unknown>) => void,
): Promise<void> {
  const bytes = await Deno.readFile(path);
  const end = bytes.indexOf(10);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, end)));
  edit(header);
  const head = new TextEncoder().encode(JSON.stringify(header) + "\n");
  await Deno.writeFile(
    path,
    new Uint8Array([...head, ...bytes.subarray(end + 1)]),
  );
}

/** Replaces a checkpoint's payload with `text`, with a matching checksum. */
export async function replacePayload(
  path: string,
  text: string,
): Promise<void> {
  const payload = new TextEncoder().encode(text);
  await editHeader(path, (h) => {
    h.size = payload.length;
    h.sha256 = createHash("sha256").update(payload).digest("hex");
  });
  const bytes = await Deno.readFile(path);
  const end = bytes.indexOf(10);
  await Deno.writeFile(
    path,
    new Uint8Array([...bytes.subarray(0, end + 1), ...payload]),
  );
}

/** The reason record beside a quarantined checkpoint. */
export async function quarantineReason(
  agentDir: string,
  id: string,
): Promise<{ reason: string; check: string; from: string }> {
  return JSON.parse(
    await Deno.readTextFile(join(agentDir, "quarantine", `${id}.reason.json`)),
  );
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
