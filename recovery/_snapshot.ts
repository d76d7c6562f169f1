// File snapshots for rollback. Invariant: a snapshot is usable only once
// its manifest exists, and the manifest is written (durably) after every
// blob it names, so a crash while snapshotting leaves no manifest and the
// next run takes the snapshot again, from files the task has not touched
// yet. Restoring goes through an fs/ transaction: every file all old or
// (if the restore is cut short) all as the task left it, never a mix.
import { dirname, join, resolve } from "node:path";
import {
  ensureDir,
  isNotFound,
  readBytes,
  readJson,
  remove,
  transaction,
  writeBytes,
  writeJson,
} from "../fs/mod.ts";
import { RecoveryError } from "./errors.ts";

interface SnapshotEntry {
  path: string;
  existed: boolean;
  mode?: number;
  blob?: string;
  size?: number;
  sha256?: string;
}

interface SnapshotManifest {
  format: "sturdy.snapshot/1";
  taskId: string;
  takenAt: number;
  files: SnapshotEntry[];
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** Whether a complete snapshot exists in `dir`. */
export async function hasSnapshot(dir: string): Promise<boolean> {
  try {
    await Deno.lstat(join(dir, "manifest.json"));
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Copies `files` (or notes their absence) into `dir`. */
export async function takeSnapshot(
  dir: string,
  taskId: string,
  files: readonly string[],
  now: number,
): Promise<void> {
  // Leftovers of a snapshot cut short by a crash hold no manifest.
  await remove(dir, { recursive: true, missingOk: true });
  await ensureDir(dir);
  const entries: SnapshotEntry[] = [];
  const seen = new Set<string>();
  for (const [i, file] of files.entries()) {
    const path = resolve(file);
    if (seen.has(path)) continue;
    seen.add(path);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        entries.push({ path, existed: false });
        continue;
      }
      throw new RecoveryError(
        `Cannot snapshot "${path}" for task "${taskId}" before running it: ${
          (err as Error).message
        }`,
        { code: "snapshot_failed", taskId, path, cause: err },
      );
    }
    if (!info.isFile) {
      throw new RecoveryError(
        `Cannot snapshot "${path}" for task "${taskId}": it is not a regular file; list the files inside a directory one by one`,
        { code: "snapshot_failed", taskId, path },
      );
    }
    const bytes = await readBytes(path);
    const blob = `${i}.bin`;
    await writeBytes(join(dir, blob), bytes);
    entries.push({
      path,
      existed: true,
      blob,
      size: bytes.byteLength,
      sha256: await sha256(bytes),
      ...(info.mode !== null ? { mode: info.mode & 0o7777 } : {}),
    });
  }
  const manifest: SnapshotManifest = {
    format: "sturdy.snapshot/1",
    taskId,
    takenAt: now,
    files: entries,
  };
  await writeJson(join(dir, "manifest.json"), manifest);
}

/**
 * Puts every snapshotted file back as it was (deleting those that did not
 * exist), in one transaction. Returns the paths restored.
 */
export async function restoreSnapshot(
  dir: string,
  taskId: string,
): Promise<string[]> {
  const manifestPath = join(dir, "manifest.json");
  let manifest: SnapshotManifest;
  try {
    manifest = await readJson<SnapshotManifest>(manifestPath);
  } catch (err) {
    throw new RecoveryError(
      isNotFound(err)
        ? `Cannot roll back task "${taskId}": no snapshot in ${dir} (it names no files, or was cleaned up)`
        : `Cannot roll back task "${taskId}": its snapshot manifest ${manifestPath} is unreadable (${
          (err as Error).message
        }); restore the files by hand from ${dir}`,
      { code: "rollback_failed", taskId, path: manifestPath, cause: err },
    );
  }
  const contents = new Map<string, Uint8Array>();
  for (const entry of manifest.files) {
    if (!entry.existed) continue;
    const blobPath = join(dir, entry.blob!);
    const bytes = await readBytes(blobPath);
    if (
      bytes.byteLength !== entry.size || await sha256(bytes) !== entry.sha256
    ) {
      throw new RecoveryError(
        `Cannot roll back task "${taskId}": the snapshot of "${entry.path}" (${blobPath}) is damaged (size or checksum differs); nothing was restored`,
        { code: "rollback_failed", taskId, path: blobPath },
      );
    }
    contents.set(entry.path, bytes);
  }
  // A file created in a directory the task removed needs its directory.
  for (const entry of manifest.files) {
    if (entry.existed) await ensureDir(dirname(entry.path));
  }
  await transaction(async (tx) => {
    for (const entry of manifest.files) {
      if (entry.existed) {
        await tx.writeBytes(
          entry.path,
          contents.get(entry.path)!,
          entry.mode !== undefined ? { mode: entry.mode } : {},
        );
      } else {
        await tx.remove(entry.path);
      }
    }
  });
  return manifest.files.map((f) => f.path);
}
