// The permission flags of deno.json's `compile` task: the single source of
// truth for what the CLI may do. The demo and the CLI tests read them here
// instead of copying them, so they run the CLI exactly as the binary would.

/** Reads the compile task's `--allow-*`, `--deny-*` and `--no-prompt` flags. */
export async function compileFlags(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks: { compile: { command: string } } };
  const words = config.tasks.compile.command.match(/'[^']*'|\S+/g) ?? [];
  return words
    .map((w) => w.replace(/^'(.*)'$/, "$1"))
    .filter((w) =>
      w.startsWith("--allow-") || w.startsWith("--deny-") || w === "--no-prompt"
    );
}
