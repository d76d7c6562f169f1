/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function inTempDir(
  fn: (dir: string) => Promise<void>,
  prefix = "sturdy-test-",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
