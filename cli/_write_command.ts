// `sturdy write FILE`: stdin to a durable atomic replace, like sponge(1).
// The input is staged in a temp file next to FILE and renamed over it only
// once every byte has arrived, so `jq . a.json | sturdy write a.json` never
// truncates a.json, and a failed or interrupted pipeline leaves it intact.

import { type Durability, ErrorReporter, writeStream } from "../fs/mod.ts";
import { CliError } from "./_cli_error.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader, single } from "./_flags.ts";

/** `sturdy write --help`. */
export const WRITE_HELP =
  `Replace FILE with stdin atomically: readers see the old content or the new, never a mix.

Usage:
  sturdy write FILE [options] < input

Options:
  --durability L   durable (fsync file and directory) | atomic (no fsync) | none (default: durable)
  --backup         Keep the previous content as FILE.bak
  --allow-empty    Replace FILE even when stdin is empty (refused by default, since an empty
                   input usually means the command before the pipe failed)

${GLOBAL_HELP}

Unlike "cmd > FILE", nothing is truncated before the input is complete: the bytes go to a
temp file next to FILE, which is renamed over FILE at the end. Failures are recorded under
<home>/reports/io (see "sturdy reports").

Examples:
  jq '.version = "2.0"' package.json | sturdy write package.json
  sort -u words.txt | sturdy write --backup words.txt
  generate-report | sturdy write --json out/report.html`;

/** The flags of `sturdy write`. */
export const WRITE_OPTIONS = {
  durability: { type: "string" },
  backup: { type: "boolean" },
  "allow-empty": { type: "boolean" },
} as const;

/** Runs `sturdy write`; returns the exit code. */
export async function writeCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs("write", own, WRITE_OPTIONS);
  const flags = new FlagReader("write");
  const file = single(positionals, "write", "FILE");
  const durability = flags.choice<Durability>(
    values.durability,
    "--durability",
    ["durable", "atomic", "none"],
    "durable",
  );
  const input = ctx.io.stdin?.() ?? Deno.stdin.readable;
  const { stream, first } = await peek(input);
  if (first === undefined && !values["allow-empty"]) {
    throw new CliError(
      `Refusing to replace "${file}" with empty input; "${file}" was left as it was`,
      ExitCode.failed,
      "Check the command before the pipe; pass --allow-empty to write an empty file",
    );
  }
  let bytes = 0;
  const counted = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
  await using reporter = new ErrorReporter({ dir: ctx.home });
  await writeStream(file, counted, {
    durability,
    backup: values.backup ?? false,
    reporter,
    context: { command: "sturdy write" },
  });
  ctx.notice(`wrote ${bytes} bytes to ${file} (${durability})`);
  ctx.result({
    ok: true,
    path: file,
    bytes,
    durability,
    backup: values.backup ?? false,
  });
  return ExitCode.ok;
}

// Reads the first chunk so an empty input is caught before anything is
// written, and returns a stream that still yields every byte.
async function peek(
  input: ReadableStream<Uint8Array>,
): Promise<
  { stream: ReadableStream<Uint8Array>; first: Uint8Array | undefined }
> {
  const reader = input.getReader();
  let first: Uint8Array | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (value.byteLength > 0) {
      first = value;
      break;
    }
  }
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (first) controller.enqueue(first);
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { stream, first };
}
