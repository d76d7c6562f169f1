// `sturdy episode`: run an episode.yaml's tasks (resumably), show an
// episode's state, and check a file without running it.
//
// Exit codes of `run`: 0 completed, 1 failed or aborted by the error
// threshold, 2 a bad file or bad options, 3 escalated (a person must act;
// a supervisor such as systemd can use RestartPreventExitStatus=2 3),
// 130/143 interrupted by SIGINT/SIGTERM (run again with --resume).

import { join } from "node:path";
import { isNotFound, listDir, readJson } from "../fs/mod.ts";
import {
  type EpisodeConfig,
  EpisodeConfigError,
  EpisodeError,
  type EpisodeState,
  type EpisodeSummary,
  loadEpisode,
  runEpisode,
  type TaskSummary,
  worstCaseBudget,
} from "../episode/mod.ts";
import { formatDuration, validateName } from "../retry/mod.ts";
import { CliError, UsageError } from "./_cli_error.ts";
import {
  type CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
  pickSubcommand,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";

/** `sturdy episode --help`. */
export const EPISODE_HELP =
  `Run the tasks of an episode.yaml so they survive failures, signals and crashes.

Usage:
  sturdy episode run FILE [--resume]
  sturdy episode status [ID] [--root DIR]
  sturdy episode validate FILE

Options:
  --resume        Keep what an earlier run finished: tasks that succeeded are not run
                  again, one cut short by a crash or a signal continues with its
                  attempt count. Without it every task starts afresh.
  --root DIR      status: the state root of the episode (default: --home)

${GLOBAL_HELP}

An episode file names its tasks (argv "run:" or a "sh:" line), their order ("needs"),
retries, strategy (retry, rollback, skip, manual, escalate, auto, or a chain),
files to roll back, locks and timeouts; see README "Episodes". "deno" as a task's
program means the Deno running Sturdy. State lives under the file's "root"
(default .sturdy next to the file): episodes/ID/state.json, events.jsonl and
summary.json; task state, logs and escalations under recovery/.

The first SIGINT/SIGTERM stops new tasks, stops running ones and saves state within
shutdown.gracePeriod; a second one exits at once. Run again with --resume.

Exit codes of run:
  0       completed: every required task succeeded
  1       failed (a required task did not succeed), or aborted by the error threshold
  2       the file is invalid (every problem is listed with its line)
  3       escalated: a person must act ("sturdy recover escalations --home ROOT")
  130/143 interrupted by SIGINT/SIGTERM

Examples:
  sturdy episode validate examples/demo/episode.yaml
  sturdy episode run examples/demo/episode.yaml
  sturdy episode run examples/demo/episode.yaml --resume --json
  sturdy episode status demo --root examples/demo/.sturdy`;

/** The flags of `sturdy episode`. */
export const EPISODE_OPTIONS = {
  resume: { type: "boolean" },
  root: { type: "string" },
} as const;

const SUBCOMMANDS = {
  run: { flags: ["resume"] },
  status: { flags: ["root"] },
  validate: { flags: [] },
} as const;

/** Runs `sturdy episode`; returns the exit code. */
export async function episodeCommand(
  own: string[],
  _wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "episode",
    own,
    EPISODE_OPTIONS,
  );
  if (values.help) {
    ctx.io.stdout(EPISODE_HELP + "\n");
    return ExitCode.ok;
  }
  const [subArg, arg, ...rest] = positionals;
  const { sub } = pickSubcommand(
    "episode",
    subArg,
    SUBCOMMANDS,
    values,
    Object.keys(EPISODE_OPTIONS),
  );
  if (rest.length > 0) {
    throw new UsageError(
      `Unexpected ${JSON.stringify(rest.join(" "))}`,
      "episode",
    );
  }
  if (sub === "status") {
    return await status(arg, values.root ?? ctx.home, ctx);
  }
  if (arg === undefined) {
    throw new UsageError(
      `Missing the episode file, e.g. sturdy episode ${sub} episode.yaml`,
      "episode",
    );
  }
  const config = await load(arg);
  if (sub === "validate") {
    const budget = worstCaseBudget(config);
    ctx.result(
      { valid: true, id: config.id, tasks: config.tasks.length, budget },
      [
        `${arg}: valid episode "${config.id}" with ${config.tasks.length} task${
          config.tasks.length === 1 ? "" : "s"
        } and ${config.agents.length} agent${
          config.agents.length === 1 ? "" : "s"
        }`,
        `  ${budget.line}`,
      ].join("\n"),
    );
    return ExitCode.ok;
  }
  return await run(config, values.resume === true, ctx);
}

async function load(file: string): Promise<EpisodeConfig> {
  try {
    return await loadEpisode(file);
  } catch (err) {
    // A bad file is a usage error (2); a missing file (1) or a missing
    // permission (77) is reported as such by the caller.
    if (
      err instanceof EpisodeConfigError &&
      ["invalid_config", "yaml_syntax", "too_large"].includes(err.code)
    ) {
      throw new CliError(
        err.message,
        ExitCode.usage,
        `Fix the file and check it with "sturdy episode validate ${file}"`,
      );
    }
    throw err;
  }
}

async function run(
  config: EpisodeConfig,
  resume: boolean,
  ctx: CommandContext,
): Promise<number> {
  let summary: EpisodeSummary;
  try {
    summary = await runEpisode(config, {
      resume,
      handleSignals: true,
      stdout: ctx.json ? "stderr" : "inherit",
      onEvent: (e) => {
        if (e.event === "started") {
          ctx.warn(`episode ${e.episode}: ${e.detail}`);
        } else if (e.event === "stopping") {
          ctx.warn(
            `episode ${e.episode}: ${e.detail}: stopping (a second signal exits at once)`,
          );
        } else if (e.event === "error") {
          ctx.notice(
            `episode ${e.episode}: error${
              e.task ? ` in ${e.task}` : ""
            }: ${e.detail}`,
          );
        }
      },
      onTask: ({ event, task }) => {
        if (event === "started") ctx.notice(`${task.id}: started`);
        else ctx.notice(`${task.id}: ${task.outcome}`);
      },
    });
  } catch (err) {
    if (err instanceof EpisodeError && err.code === "crash_loop") {
      throw new CliError(err.message, 3);
    }
    if (err instanceof EpisodeError && err.code === "episode_busy") {
      throw new CliError(err.message, ExitCode.lockTimeout);
    }
    throw err;
  }
  ctx.result(summary, formatSummary(summary));
  return summary.exitCode;
}

function icon(status: TaskSummary["status"]): string {
  switch (status) {
    case "succeeded":
      return "ok  ";
    case "skipped":
      return "skip";
    case "escalated":
    case "awaiting_manual":
      return "ESC ";
    case "blocked":
    case "not_run":
      return "--  ";
    case "interrupted":
      return "INT ";
    default:
      return "FAIL";
  }
}

/** The human-readable summary printed at the end of a run. */
export function formatSummary(summary: EpisodeSummary): string {
  const width = Math.max(4, ...summary.tasks.map((t) => t.id.length));
  const lines = [
    `Episode ${summary.id} ${summary.status}${
      summary.reason ? ` (${summary.reason})` : ""
    } in ${formatDuration(summary.durationMs)}${
      summary.resumed ? ", resumed" : ""
    }`,
    ...summary.tasks.map((t) =>
      `  ${icon(t.status)} ${t.id.padEnd(width)}  ${t.status.padEnd(11)} ${
        String(t.attempts).padStart(2)
      } run${t.attempts === 1 ? " " : "s"}  ${
        t.strategy.padEnd(16)
      } ${t.outcome}`
    ),
    `  totals: ${
      Object.entries(summary.totals).map(([k, v]) => `${v} ${k}`).join(", ")
    }`,
  ];
  if (summary.escalations.length > 0) {
    lines.push("  needs a person:");
    for (const e of summary.escalations) {
      lines.push(`    ${e.id}: ${e.resolve}`);
    }
  }
  lines.push(`  state: ${summary.stateDir}`);
  return lines.join("\n");
}

async function status(
  id: string | undefined,
  root: string,
  ctx: CommandContext,
): Promise<number> {
  const dir = join(root, "episodes");
  if (id === undefined) {
    let entries;
    try {
      entries = await listDir(dir);
    } catch (err) {
      if (isNotFound(err)) {
        ctx.result([], `No episodes in ${dir}`);
        return ExitCode.ok;
      }
      throw err;
    }
    const states: EpisodeState[] = [];
    for (const e of entries.filter((e) => e.isDirectory)) {
      const s = await readState(join(dir, e.name));
      if (s) states.push(s);
    }
    ctx.result(
      states,
      states.length === 0
        ? `No episodes in ${dir}`
        : states.map((s) => formatState(s)).join("\n"),
    );
    return ExitCode.ok;
  }
  try {
    validateName(id, "episode id");
  } catch (err) {
    throw new UsageError((err as Error).message, "episode");
  }
  const state = await readState(join(dir, id));
  if (!state) {
    throw new CliError(
      `No episode "${id}" in ${dir}`,
      ExitCode.failed,
      'List episodes with "sturdy episode status", or give --root',
    );
  }
  let summary: EpisodeSummary | undefined;
  try {
    summary = await readJson<EpisodeSummary>(join(dir, id, "summary.json"));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  ctx.result(
    { state, summary },
    [
      formatState(state),
      ...(summary && summary.runId === state.runId
        ? [formatSummary(summary)]
        : []),
    ].join("\n"),
  );
  return ExitCode.ok;
}

async function readState(dir: string): Promise<EpisodeState | undefined> {
  try {
    return await readJson<EpisodeState>(join(dir, "state.json"));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function formatState(s: EpisodeState): string {
  const ended = s.endedAt ?? Date.now();
  const agents = Object.entries(s.agents);
  return `${s.id}: ${s.status}${
    s.reason ? ` (${s.reason})` : ""
  }, run ${s.runId}, started ${new Date(s.startedAt).toISOString()}, ${
    s.endedAt ? "took" : "running for"
  } ${formatDuration(ended - s.startedAt)}, ${s.errorCount} error${
    s.errorCount === 1 ? "" : "s"
  }${s.crashLoop.count ? `, crash loop ${s.crashLoop.count}` : ""}${
    agents.length
      ? `; agents: ${
        agents.map(([id, a]) =>
          `${id} ${a.health} (${a.recoveries} recoveries)`
        )
          .join(", ")
      }`
      : ""
  }`;
}
