// The limit every durable write is measured against: the syscalls of a
// durable atomic replace, written inline with nothing else around them.

import { dirname } from "node:path";

/** open(createNew), write all, fdatasync, close, rename, fsync(dir). */
export async function rawDurable(
  path: string,
  data: Uint8Array,
): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true });
  try {
    let off = 0;
    while (off < data.length) off += await file.write(data.subarray(off));
    await file.syncData();
  } finally {
    file.close();
  }
  await Deno.rename(temp, path);
  const d = await Deno.open(dirname(path), { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}
