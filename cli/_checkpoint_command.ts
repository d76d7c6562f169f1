// `sturdy checkpoint`: an agent's checkpoints from the shell. Create one
// from a JSON file or stdin, list and show them, restore the newest valid
// one to a file, check them, look for drift, and apply retention.
//
// Exit codes follow Terraform's -detailed-exitcode: `verify` and `drift`
// exit 0 when clean and 2 when something is wrong (findings printed), so a
// cron job can tell "drifted" from "could not check" (1). A bad command
// line is 2 as well, with a pointer to --help on stderr.

import {
  type CheckpointManager,
  type CheckpointRef,
  type CheckpointType,
  type DriftReport,
  openCheckpoints,
  type RetentionPlan,
  type RetentionPolicy,
} from "../checkpoint/mod.ts";
import { writeJson } from "../fs/mod.ts";
import { formatDuration, validateName } from "../retry/mod.ts";
import { CliError, UsageError } from "./_cli_error.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
  pickSubcommand,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader } from "./_flags.ts";

/** `sturdy checkpoint --help`. */
export const CHECKPOINT_HELP =
  `Create, inspect, verify and restore an agent's checkpoints.

Usage:
  sturdy checkpoint create AGENT [--type T] [--from FILE|-] [--label TEXT] [--state-version N]
  sturdy checkpoint list AGENT [--type T] [--limit N]
  sturdy checkpoint latest AGENT [--type T]
  sturdy checkpoint show AGENT ID
  sturdy checkpoint restore AGENT [ID] --to FILE|-
  sturdy checkpoint verify AGENT
  sturdy checkpoint drift AGENT
  sturdy checkpoint plan AGENT
  sturdy checkpoint prune AGENT [--dry-run]

Options:
  --type T          routine (default for create) | pre_operation | recovery
  --from FILE       The state to checkpoint, as JSON; "-" reads stdin (default: -)
  --label TEXT      A label stored with the checkpoint, shown by list
  --state-version N The state's schema version, as the agent's stateVersion (default: 1)
  --limit N         List at most N checkpoints, newest first
  --to FILE         Where restore writes the state (durably, atomically); "-" prints it
  --dry-run         With prune: show what would be trashed, change nothing
  --keep-last N     Retention for create, plan, prune: routine checkpoints kept (default: 3)
  --keep-within D   Retention: recovery checkpoints kept this long (default: 7d)

${GLOBAL_HELP}

Checkpoints live in <home>/checkpoints/AGENT/. IDs look like 000000000042.routine;
"list" shows them. Restore checks each file's length, checksum and format, and falls
back to the next older valid checkpoint when one is bad (it is moved to quarantine/ and
the reason printed). Prune moves checkpoints to trash/, never deleting the newest valid
one or one pinned by an open operation; "plan" shows the reason for every decision.

Exit codes:
  0     ok; for verify and drift: nothing wrong
  2     verify: a checkpoint is corrupt; drift: a warning or critical finding
        (also bad options)
  1     failed (e.g. no valid checkpoint to restore)

Examples:
  jq '{step: 3, todo: .todo}' agent.json | sturdy checkpoint create planner
  sturdy checkpoint create planner --type recovery --from state.json --label "before v2"
  sturdy checkpoint list planner --limit 5
  sturdy checkpoint show planner 000000000042.routine
  sturdy checkpoint restore planner --to state.json
  sturdy checkpoint verify planner || alert "planner checkpoints damaged"
  sturdy checkpoint drift planner --json
  sturdy checkpoint prune planner --dry-run`;

/** The flags of `sturdy checkpoint`. */
export const CHECKPOINT_OPTIONS = {
  type: { type: "string" },
  from: { type: "string" },
  label: { type: "string" },
  limit: { type: "string" },
  to: { type: "string" },
  "dry-run": { type: "boolean" },
  "keep-last": { type: "string" },
  "keep-within": { type: "string" },
  "state-version": { type: "string" },
} as const;

/** `verify` and `drift` found something wrong (Terraform's "changes present"). */
const FOUND_PROBLEMS = 2;

type Values = ReturnType<
  typeof parseCommandArgs<typeof CHECKPOINT_OPTIONS>
>["values"];

/** Which flags each subcommand takes, and its extra positional. */
const SUBCOMMANDS: Record<
  string,
  { flags: string[]; id: "none" | "optional" | "required" }
> = {
  create: {
    flags: [
      "type",
      "from",
      "label",
      "state-version",
      "keep-last",
      "keep-within",
    ],
    id: "none",
  },
  list: { flags: ["type", "limit"], id: "none" },
  latest: { flags: ["type"], id: "none" },
  show: { flags: [], id: "required" },
  restore: { flags: ["to"], id: "optional" },
  verify: { flags: [], id: "none" },
  drift: { flags: [], id: "none" },
  plan: { flags: ["keep-last", "keep-within"], id: "none" },
  prune: { flags: ["dry-run", "keep-last", "keep-within"], id: "none" },
};

/** Runs `sturdy checkpoint`; returns the exit code. */
export async function checkpointCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "checkpoint",
    own,
    CHECKPOINT_OPTIONS,
  );
  if (values.help) {
    ctx.io.stdout(CHECKPOINT_HELP + "\n");
    return ExitCode.ok;
  }
  const [subArg, agentArg, ...rest] = positionals;
  const { sub, spec } = pickSubcommand(
    "checkpoint",
    subArg,
    SUBCOMMANDS,
    values,
    Object.keys(CHECKPOINT_OPTIONS),
  );
  if (agentArg === undefined) {
    throw new UsageError(
      `Missing the agent, e.g. sturdy checkpoint ${sub} planner`,
      "checkpoint",
    );
  }
  const agentId = checkName(agentArg);
  const maxIds = spec.id === "none" ? 0 : 1;
  if (rest.length > maxIds) {
    throw new UsageError(
      `Unexpected ${JSON.stringify(rest.slice(maxIds).join(" "))} after ${
        maxIds ? "ID" : "AGENT"
      }`,
      "checkpoint",
    );
  }
  const id = rest[0];
  if (spec.id === "required" && id === undefined) {
    throw new UsageError(
      `Missing the checkpoint ID, e.g. sturdy checkpoint ${sub} ${agentId} 000000000001.routine; "sturdy checkpoint list ${agentId}" shows them`,
      "checkpoint",
    );
  }
  const flags = new FlagReader("checkpoint");
  const type = values.type === undefined ? undefined : flags.choice<
    CheckpointType
  >(values.type, "--type", ["routine", "pre_operation", "recovery"], "routine");
  if (sub === "restore" && values.to === undefined) {
    throw new UsageError(
      `Missing --to FILE: where to write the restored state, e.g. sturdy checkpoint restore ${agentId} --to state.json`,
      "checkpoint",
    );
  }
  if (values.to === "-" && ctx.json) {
    throw new UsageError(
      '"--to -" prints the state, so it cannot be combined with --json',
      "checkpoint",
    );
  }
  // Read the input before opening anything, so a bad file changes nothing.
  const limit = values.limit === undefined
    ? undefined
    : flags.integer(values.limit, "--limit", 0, 1);
  const state = sub === "create"
    ? await readState(values.from, ctx)
    : undefined;
  const stateVersion = sub === "create"
    ? flags.integer(values["state-version"], "--state-version", 1, 1)
    : undefined;
  await using checkpoints = await openCheckpoints<unknown>({
    agentId,
    root: ctx.home,
    retention: retention(values, flags),
    // The CLI has no migrate() of the agent's: it writes the version it is
    // told, and reads every version as stored (the highest version with an
    // identity migration), so a newer agent's checkpoints are not refused.
    ...(stateVersion === undefined
      ? { stateVersion: Number.MAX_SAFE_INTEGER, migrate: (state) => state }
      : { stateVersion }),
  });
  switch (sub) {
    case "create":
      return await create(checkpoints, state, type, values.label, ctx);
    case "list":
      return await list(checkpoints, agentId, type, limit, ctx);
    case "latest":
      return await latest(checkpoints, agentId, type, ctx);
    case "show":
      return await show(checkpoints, agentId, id!, ctx);
    case "restore":
      return await restore(checkpoints, id, values.to!, ctx);
    case "verify":
      return await verify(checkpoints, agentId, ctx);
    case "drift":
      return driftResult(await checkpoints.detectDrift(), agentId, ctx);
    case "plan":
      return planResult(await checkpoints.plan(), agentId, false, ctx);
    default: {
      const dryRun = values["dry-run"] === true;
      const plan = await checkpoints.prune({ dryRun });
      return planResult(plan, agentId, !dryRun, ctx);
    }
  }
}

function checkName(name: string): string {
  try {
    return validateName(name, "agent id");
  } catch (err) {
    throw new UsageError((err as Error).message, "checkpoint");
  }
}

function retention(values: Values, flags: FlagReader): RetentionPolicy {
  const keepLast = values["keep-last"] === undefined
    ? undefined
    : flags.integer(values["keep-last"], "--keep-last", 3, 1);
  const keepWithin = flags.optionalDuration(
    values["keep-within"],
    "--keep-within",
  );
  return {
    ...(keepLast === undefined ? {} : { routineKeepLast: keepLast }),
    ...(keepWithin === undefined ? {} : { recoveryKeepWithinMs: keepWithin }),
  };
}

/** The state to checkpoint: JSON from a file, or from stdin with "-". */
async function readState(
  from: string | undefined,
  ctx: CommandContext,
): Promise<unknown> {
  const source = from ?? "-";
  let text: string;
  if (source === "-") {
    const input = ctx.io.stdin?.() ?? Deno.stdin.readable;
    text = await new Response(input).text();
  } else {
    try {
      text = await Deno.readTextFile(source);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new CliError(
          `Cannot read the state from "${source}": no such file`,
          ExitCode.failed,
          'Check the path, or pipe the state in with "--from -"',
        );
      }
      throw err;
    }
  }
  const where = source === "-" ? "stdin" : `"${source}"`;
  if (text.trim() === "") {
    throw new CliError(
      `Refusing to checkpoint empty input from ${where}: nothing was written`,
      ExitCode.failed,
      "Check the command before the pipe; the state must be one JSON value",
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(
      `Cannot checkpoint the input from ${where}: not valid JSON (${
        (err as Error).message
      })`,
      ExitCode.failed,
      'The state must be one JSON value, e.g. {"step": 3}',
    );
  }
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** `000000000004.routine (seq 4, 1.2 KiB, 2026-…)` */
function describe(ref: CheckpointRef): string {
  return `${ref.id} (seq ${ref.seq}, ${size(ref.stateBytes)}${
    ref.encoding === "gzip" ? ` as ${size(ref.bytes)} gzip` : ""
  }, ${ref.createdAt}${ref.label ? `, "${ref.label}"` : ""})`;
}

async function create(
  checkpoints: CheckpointManager<unknown>,
  state: unknown,
  type: CheckpointType | undefined,
  label: string | undefined,
  ctx: CommandContext,
): Promise<number> {
  const ref = await checkpoints.create(type ?? "routine", {
    state,
    ...(label === undefined ? {} : { label }),
  });
  ctx.result({ ok: true, ref }, `Created checkpoint ${describe(ref)}`);
  return ExitCode.ok;
}

async function list(
  checkpoints: CheckpointManager<unknown>,
  agentId: string,
  type: CheckpointType | undefined,
  limit: number | undefined,
  ctx: CommandContext,
): Promise<number> {
  const refs = await checkpoints.list({
    ...(type === undefined ? {} : { type }),
    ...(limit === undefined ? {} : { limit }),
  });
  const rows = refs.map((ref) => ({
    id: ref.id,
    type: ref.type,
    created: ref.createdAt,
    size: size(ref.stateBytes),
    label: ref.label ?? "",
  }));
  ctx.result(
    { agentId, checkpoints: refs },
    rows.length === 0
      ? `No checkpoints for agent "${agentId}"${type ? ` of type ${type}` : ""}`
      : table(rows, {
        id: "ID",
        type: "TYPE",
        created: "CREATED",
        size: "SIZE",
        label: "LABEL",
      }),
  );
  return ExitCode.ok;
}

function noCheckpoint(agentId: string, type?: CheckpointType): CliError {
  return new CliError(
    `No checkpoints for agent "${agentId}"${type ? ` of type ${type}` : ""}`,
    ExitCode.failed,
    `Create one with "sturdy checkpoint create ${agentId} --from state.json"`,
  );
}

async function latest(
  checkpoints: CheckpointManager<unknown>,
  agentId: string,
  type: CheckpointType | undefined,
  ctx: CommandContext,
): Promise<number> {
  const ref = await checkpoints.latest(type);
  if (ref === undefined) throw noCheckpoint(agentId, type);
  ctx.result({ ok: true, ref }, describe(ref));
  return ExitCode.ok;
}

async function show(
  checkpoints: CheckpointManager<unknown>,
  agentId: string,
  id: string,
  ctx: CommandContext,
): Promise<number> {
  const { ref, state } = await checkpoints.read(id);
  ctx.result(
    { ok: true, agentId, ref, state },
    `${describe(ref)}\nsha256 ${ref.sha256}${
      ref.operationId ? `\noperation ${ref.operationId}` : ""
    }\n${JSON.stringify(state, null, 2)}`,
  );
  return ExitCode.ok;
}

async function restore(
  checkpoints: CheckpointManager<unknown>,
  id: string | undefined,
  to: string,
  ctx: CommandContext,
): Promise<number> {
  const result = await checkpoints.restore(id);
  for (const skip of result.skipped) {
    ctx.warn(`skipped checkpoint ${skip.id}: ${skip.reason}`);
  }
  if (to === "-") {
    ctx.io.stdout(JSON.stringify(result.state, null, 2) + "\n");
  } else {
    await writeJson(to, result.state);
  }
  ctx.result(
    { ok: true, ref: result.ref, skipped: result.skipped, to },
    to === "-"
      ? undefined
      : `Restored checkpoint ${describe(result.ref)} to ${to}${
        result.skipped.length > 0
          ? ` (after skipping ${result.skipped.length} newer: see above)`
          : ""
      }`,
  );
  return ExitCode.ok;
}

async function verify(
  checkpoints: CheckpointManager<unknown>,
  agentId: string,
  ctx: CommandContext,
): Promise<number> {
  const report = await checkpoints.verify();
  const lines = report.ok
    ? [`All ${report.checked} checkpoints of agent "${agentId}" verify`]
    : [
      `${report.problems.length} of ${report.checked} checkpoints of agent "${agentId}" fail verification:`,
      ...report.problems.map((p) => `  ${p.id}: ${p.reason}`),
    ];
  ctx.result({ agentId, ...report }, lines.join("\n"));
  return report.ok ? ExitCode.ok : FOUND_PROBLEMS;
}

function driftResult(
  report: DriftReport,
  agentId: string,
  ctx: CommandContext,
): number {
  const lines = report.findings.length === 0
    ? [`No drift for agent "${agentId}"`]
    : [
      report.drifted
        ? `Agent "${agentId}" has drifted (${report.level}):`
        : `No drift for agent "${agentId}"; notes:`,
      ...report.findings.map((f) => `  [${f.level}] ${f.kind}: ${f.message}`),
    ];
  ctx.result({ agentId, ...report }, lines.join("\n"));
  return report.drifted ? FOUND_PROBLEMS : ExitCode.ok;
}

function planResult(
  plan: RetentionPlan,
  agentId: string,
  applied: boolean,
  ctx: CommandContext,
): number {
  const verb = applied ? "trashed" : "to trash";
  const rows = plan.decisions.map((d) => ({
    action: d.action === "trash" ? (applied ? "trashed" : "trash") : "keep",
    id: d.id,
    reasons: d.reasons.join("; "),
  }));
  const policy =
    `policy: routine keep last ${plan.policy.routineKeepLast}, recovery keep ${
      formatDuration(plan.policy.recoveryKeepWithinMs)
    } (at least ${plan.policy.recoveryKeepAtLeast})`;
  ctx.result(
    { agentId, applied, ...plan },
    rows.length === 0
      ? `No checkpoints for agent "${agentId}"`
      : `${
        table(rows, { action: "ACTION", id: "ID", reasons: "WHY" })
      }\n${plan.trash.length} ${verb}, ${plan.keep.length} kept; ${policy}`,
  );
  return ExitCode.ok;
}

function table(
  rows: Array<Record<string, string>>,
  headers: Record<string, string>,
): string {
  const keys = Object.keys(headers);
  const widths = keys.map((k) =>
    Math.max(headers[k]!.length, ...rows.map((r) => r[k]!.length))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!))
      .join("  ").trimEnd();
  return [
    line(keys.map((k) => headers[k]!)),
    ...rows.map((r) => line(keys.map((k) => r[k]!))),
  ].join("\n");
}
