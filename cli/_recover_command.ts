// `sturdy recover`: run a command as a recovery task (back up the files it
// touches, run, retry, roll back, escalate), and look at tasks, statistics
// and escalations, answer escalations, clean up.
//
// Exit codes of `recover run`: 0 when the task succeeded (or was skipped,
// with a notice); the command's own last code when it ran and failed or was
// rolled back (124 when a --timeout killed it); 3 when it was escalated to
// a person (as an episode does: a supervisor can stop restarting on 3);
// 127 when the command cannot be found; 130/143 when interrupted.

import { readText } from "../fs/mod.ts";
import {
  commandTask,
  type Escalation,
  parseRules,
  RECOVERY_ACTIONS,
  type RecoveryAction,
  RecoveryManager,
  type RecoveryStats,
  RESOLUTION_ACTIONS,
  type ResolutionAction,
  type Strategy,
  type TaskResult,
  type TaskState,
} from "../recovery/mod.ts";
import { formatDuration, validateName } from "../retry/mod.ts";
import { CliError, UsageError } from "./_cli_error.ts";
import {
  closest,
  CommandContext,
  GLOBAL_HELP,
  parseCommandArgs,
  pickSubcommand,
  splitAtDash,
} from "./_context.ts";
import { ExitCode } from "./_exit_codes.ts";
import { FlagReader } from "./_flags.ts";
import { onInterrupt, signalExitCode } from "./_child.ts";

/** `sturdy recover --help`. */
export const RECOVER_HELP =
  `Run a command as a recovery task, and inspect and answer what happened.

Usage:
  sturdy recover run TASK [options] -- CMD [ARGS...]
  sturdy recover status [TASK]
  sturdy recover stats [--since D]
  sturdy recover escalations [--all]
  sturdy recover resolve TASK --action retry|skip|rollback|fail [--note TEXT]
  sturdy recover forget TASK
  sturdy recover cleanup --older-than D [--dry-run]

Options of run:
  --strategy S      auto (default: rules decide per error), retry, rollback, skip,
                    manual, escalate, fail, or a chain such as retry,rollback,escalate
  --rules FILE      A JSON rule table for auto (see README "Recovery rules")
  --files F         A file to back up before the first run and restore exactly on
                    rollback (repeat for several; a file that did not exist is removed)
  --attempts N      Total runs for retry (default: 3)
  --delay D         First retry delay, doubling (default: 2s)
  --max-delay D     Longest retry delay (default: 60s)
  --timeout D       Kill a run after D (SIGTERM, then SIGKILL 5s later)
  --prompt TEXT     With manual: the question for the person
  --fresh           Forget an earlier run of TASK first (a succeeded task is
                    otherwise not run again)
Options of the others:
  --since D         stats: only the last D (e.g. 24h, 7d)
  --all             escalations: resolved ones too
  --action A        resolve: retry (run again next time), skip, rollback (restore the
                    backed-up files now), fail
  --note TEXT       resolve: a note for the record
  --older-than D    cleanup: finished tasks unchanged for D
  --dry-run         cleanup: show what would go, remove nothing

${GLOBAL_HELP}

State lives in <home>/recovery/: tasks/TASK.json (resumable state), logs/TASK.jsonl
(every decision), escalations/TASK.json (open ones are never cleaned up). A task that
succeeded is not run again; one cut short by a crash or Ctrl-C resumes with its
attempt count intact. The command gets STURDY_TASK_ID and STURDY_TASK_ATTEMPT.
STURDY_DEBUG=1 prints every decision as it is made.

Exit codes of run:
  0     the task succeeded (or was skipped)
  N     the command's last exit code when it failed or was rolled back
  124   the last run was killed by --timeout
  3     escalated: a person must act ("sturdy recover escalations")
  127   the command was not found
  130/143 interrupted by SIGINT/SIGTERM (resume by running it again)

Examples:
  sturdy recover run fetch --strategy retry --attempts 5 --delay 1s -- ./fetch.sh
  sturdy recover run migrate --strategy retry,rollback,escalate --files db.json -- deno task migrate
  sturdy recover run deploy --strategy manual --prompt "Deploy to prod?" -- ./deploy.sh
  sturdy recover status
  sturdy recover stats --since 7d --json
  sturdy recover escalations
  sturdy recover resolve migrate --action rollback --note "schema bug, see #42"
  sturdy recover cleanup --older-than 30d --dry-run`;

/** The flags of `sturdy recover`. */
export const RECOVER_OPTIONS = {
  strategy: { type: "string" },
  rules: { type: "string" },
  files: { type: "string", multiple: true },
  attempts: { type: "string" },
  delay: { type: "string" },
  "max-delay": { type: "string" },
  timeout: { type: "string" },
  prompt: { type: "string" },
  fresh: { type: "boolean" },
  since: { type: "string" },
  all: { type: "boolean" },
  action: { type: "string" },
  note: { type: "string" },
  "older-than": { type: "string" },
  "dry-run": { type: "boolean" },
} as const;

const SUBCOMMANDS: Record<string, { flags: string[]; task: boolean }> = {
  run: {
    flags: [
      "strategy",
      "rules",
      "files",
      "attempts",
      "delay",
      "max-delay",
      "timeout",
      "prompt",
      "fresh",
    ],
    task: true,
  },
  status: { flags: [], task: false },
  stats: { flags: ["since"], task: false },
  escalations: { flags: ["all"], task: false },
  resolve: { flags: ["action", "note"], task: true },
  forget: { flags: [], task: true },
  cleanup: { flags: ["older-than", "dry-run"], task: false },
};

/**
 * Runs `sturdy recover`. Register it with `wraps: false`: it splits the
 * command after `--` itself (TASK comes before it).
 */
export async function recoverCommand(
  own: string[],
  wrapped: string[],
  ctx: CommandContext,
): Promise<number> {
  const { before, command } = splitAtDash(own, wrapped);
  const { values, positionals } = parseCommandArgs(
    "recover",
    before,
    RECOVER_OPTIONS,
  );
  ctx = new CommandContext(values, ctx.io);
  if (values.help) {
    ctx.io.stdout(RECOVER_HELP + "\n");
    return ExitCode.ok;
  }
  const [subArg, ...rest] = positionals;
  const { sub, spec } = pickSubcommand(
    "recover",
    subArg,
    SUBCOMMANDS,
    values,
    Object.keys(RECOVER_OPTIONS),
  );
  if (sub !== "run" && command.length > 0) {
    throw new UsageError(
      `"sturdy recover ${sub}" runs no command; remove what follows "--"`,
      "recover",
    );
  }
  const maxPositionals = sub === "status" || spec.task ? 1 : 0;
  if (rest.length > maxPositionals) {
    throw new UsageError(
      `Unexpected ${JSON.stringify(rest.slice(maxPositionals).join(" "))}${
        sub === "run" ? '; put the command to run after "--"' : ""
      }`,
      "recover",
    );
  }
  const taskArg = rest[0];
  if (spec.task && taskArg === undefined) {
    throw new UsageError(
      `Missing the task id, e.g. sturdy recover ${sub} nightly-sync${
        sub === "run" ? " -- ./sync.sh" : ""
      }`,
      "recover",
    );
  }
  const taskId = taskArg === undefined ? undefined : checkTaskId(taskArg);
  const flags = new FlagReader("recover");
  const debug = ctx.io.env("STURDY_DEBUG");
  const recovery = (extra: { rules?: Parameters<typeof parseRules>[0] } = {}) =>
    new RecoveryManager({
      root: ctx.home,
      ...(extra.rules !== undefined
        ? { rules: parseRules(extra.rules, values.rules) }
        : {}),
      retry: {
        maxAttempts: flags.integer(values.attempts, "--attempts", 3, 1),
        minDelay: flags.duration(values.delay, "--delay", 2_000),
        maxDelay: flags.duration(values["max-delay"], "--max-delay", 60_000),
      },
      ...(debug && debug !== "0"
        ? {
          onEvent: (r) =>
            ctx.io.stderr(
              `sturdy[debug]: ${r.task}#${r.execution} ${r.event}${
                r.attempt !== undefined ? ` attempt=${r.attempt}` : ""
              }${r.action ? ` action=${r.action}` : ""}${
                r.rule ? ` rule=${r.rule}` : ""
              }${r.delayMs !== undefined ? ` delay=${r.delayMs}ms` : ""}${
                r.error ? ` error=${JSON.stringify(r.error)}` : ""
              }${r.reason ? ` reason=${JSON.stringify(r.reason)}` : ""}${
                r.note ? ` note=${JSON.stringify(r.note)}` : ""
              }\n`,
            ),
        }
        : {
          onEvent: (r) => {
            if (r.event === "retry_scheduled") {
              ctx.notice(
                `${r.task}: run ${(r.attempt ?? 2) - 1} failed; retrying in ${
                  formatDuration(r.delayMs ?? 0)
                }`,
              );
            } else if (r.event === "rollback_done") {
              ctx.notice(`${r.task}: rolled back (${r.note})`);
            } else if (r.event === "manual_requested") {
              ctx.warn(
                `${r.task}: waiting for a person: ${r.note}; answer with "sturdy recover resolve ${r.task} --action retry|skip|rollback|fail"`,
              );
            }
          },
        }),
    });
  switch (sub) {
    case "run": {
      if (command.length === 0) {
        throw new UsageError(
          `Missing the command to run: put it after "--", e.g. sturdy recover run ${taskId} -- ./job.sh`,
          "recover",
        );
      }
      const strategy = parseStrategy(values.strategy);
      if (values.rules !== undefined && strategy !== "auto") {
        throw new UsageError(
          `--rules applies to --strategy auto only, not ${values.strategy}`,
          "recover",
        );
      }
      const rulesText = values.rules === undefined
        ? undefined
        : await readText(values.rules);
      return await runTask(
        recovery(rulesText === undefined ? {} : { rules: rulesText }),
        taskId!,
        command,
        ctx,
        {
          strategy,
          files: values.files ?? [],
          timeout: flags.optionalDuration(values.timeout, "--timeout"),
          prompt: values.prompt,
          fresh: values.fresh === true,
        },
      );
    }
    case "status":
      return await status(recovery(), taskId, ctx);
    case "stats": {
      const since = flags.optionalDuration(values.since, "--since");
      const stats = await recovery().stats(
        since === undefined ? {} : { since: Date.now() - since },
      );
      ctx.result(stats, formatStats(stats, values.since));
      return ExitCode.ok;
    }
    case "escalations": {
      const list = await recovery().escalations(
        values.all ? {} : { status: "open" },
      );
      ctx.result(list, formatEscalations(list, values.all === true));
      return ExitCode.ok;
    }
    case "resolve": {
      if (values.action === undefined) {
        throw new UsageError(
          `Missing --action: one of ${
            RESOLUTION_ACTIONS.join(", ")
          }, e.g. sturdy recover resolve ${taskId} --action retry`,
          "recover",
        );
      }
      const action = flags.choice<ResolutionAction>(
        values.action,
        "--action",
        RESOLUTION_ACTIONS,
        "retry",
      );
      const esc = await recovery().resolve(taskId!, {
        action,
        by: "cli",
        ...(values.note !== undefined ? { note: values.note } : {}),
      });
      const after = await recovery().loadTaskState(taskId!);
      ctx.result(
        { escalation: esc, task: after },
        `Resolved ${esc.id}: ${action}${
          after ? ` (task ${taskId} is now ${after.status})` : ""
        }${
          action === "retry" && after?.status !== "awaiting_manual"
            ? `; run the task again to retry it`
            : ""
        }`,
      );
      return ExitCode.ok;
    }
    case "forget": {
      const forgot = await recovery().forget(taskId!);
      ctx.result(
        { taskId, forgotten: forgot },
        forgot
          ? `Forgot task ${taskId}: it runs afresh next time (its log is kept)`
          : `Task ${taskId} has no state; nothing to forget`,
      );
      return ExitCode.ok;
    }
    case "cleanup": {
      if (values["older-than"] === undefined) {
        throw new UsageError(
          "Missing --older-than D, e.g. sturdy recover cleanup --older-than 30d --dry-run",
          "recover",
        );
      }
      const plan = await recovery().cleanup({
        olderThan: flags.duration(values["older-than"], "--older-than", 0),
        dryRun: values["dry-run"] === true,
      });
      const tasks = [...new Set(plan.remove.map((i) => i.taskId))];
      const lines = [
        `${plan.dryRun ? "Would remove" : "Removed"} ${tasks.length} task${
          tasks.length === 1 ? "" : "s"
        }${tasks.length ? ": " + tasks.join(", ") : ""}`,
        ...plan.keep.map((k) => `  kept ${k.taskId}: ${k.reason}`),
      ];
      ctx.result(plan, lines.join("\n"));
      return ExitCode.ok;
    }
  }
  throw new UsageError(`Unknown subcommand "${sub}"`, "recover");
}

function checkTaskId(text: string): string {
  try {
    return validateName(text, "task id");
  } catch (err) {
    throw new UsageError((err as Error).message, "recover");
  }
}

function parseStrategy(text: string | undefined): Strategy {
  if (text === undefined || text === "auto") return "auto";
  const steps = text.split(",").map((s) => s.trim());
  for (const step of steps) {
    if (!RECOVERY_ACTIONS.includes(step as RecoveryAction)) {
      const near = closest(step, [...RECOVERY_ACTIONS, "auto"]);
      throw new UsageError(
        `--strategy: unknown action "${step}"${
          near ? ` (did you mean "${near}"?)` : ""
        }; use auto, ${
          RECOVERY_ACTIONS.join(", ")
        }, or a chain like retry,rollback,escalate`,
        "recover",
      );
    }
  }
  return steps.length === 1
    ? steps[0] as RecoveryAction
    : steps as RecoveryAction[];
}

async function runTask(
  recovery: RecoveryManager,
  taskId: string,
  command: string[],
  ctx: CommandContext,
  options: {
    strategy: Strategy;
    files: string[];
    timeout: number | undefined;
    prompt: string | undefined;
    fresh: boolean;
  },
): Promise<number> {
  if (options.fresh) await recovery.forget(taskId);
  const stop = new AbortController();
  let interrupted: Deno.Signal | undefined;
  const interrupts = onInterrupt((sig) => {
    interrupted ??= sig;
    stop.abort(new CliError(`Interrupted by ${sig}`, signalExitCode(sig)));
  });
  let result: TaskResult<void>;
  try {
    result = await recovery.execute(
      taskId,
      commandTask(command, {
        stdout: ctx.json ? "stderr" : "inherit",
      }),
      {
        strategy: options.strategy,
        files: options.files,
        signal: stop.signal,
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        ...(options.prompt !== undefined ? { prompt: options.prompt } : {}),
      },
    );
  } catch (err) {
    if (interrupted && err === stop.signal.reason) {
      ctx.warn(
        `${taskId}: interrupted by ${interrupted}; run the same command again to resume`,
      );
    }
    throw err;
  } finally {
    interrupts[Symbol.dispose]();
  }
  const line = describe(result);
  if (result.status === "succeeded" || result.status === "skipped") {
    ctx.result(result);
    if (result.replayed) {
      ctx.warn(
        `${taskId}: already ${result.status}; not run again (use --fresh to run it anyway)`,
      );
    } else if (result.status === "skipped" || result.recovered) {
      ctx.warn(line);
    } else ctx.notice(line);
    return ExitCode.ok;
  }
  ctx.result(result);
  ctx.warn(line);
  if (result.status === "escalated" || result.status === "awaiting_manual") {
    return 3;
  }
  return lastExitCode(result);
}

// The command's own last exit code, as DESIGN §7 asks of wrapping
// commands; 124 when --timeout killed the last run.
function lastExitCode(result: TaskResult<void>): number {
  const error = result.error;
  if (!error) return ExitCode.failed;
  if (error.category === "timeout") return ExitCode.timedOut;
  return error.exitCode ?? ExitCode.failed;
}

function describe(result: TaskResult<void>): string {
  const runs = `${result.attempts} run${result.attempts === 1 ? "" : "s"}`;
  const why = result.error
    ? ` (${result.error.category}: ${result.error.message})`
    : "";
  switch (result.status) {
    case "succeeded":
      return `${result.taskId}: succeeded after ${runs}${
        result.recovered ? " (recovered)" : ""
      }`;
    case "escalated":
      return `${result.taskId}: escalated after ${runs}${why}; see "sturdy recover escalations"`;
    case "rolled_back":
      return `${result.taskId}: failed after ${runs} and was rolled back${why}`;
    default:
      return `${result.taskId}: ${result.status} after ${runs}${why}`;
  }
}

async function status(
  recovery: RecoveryManager,
  taskId: string | undefined,
  ctx: CommandContext,
): Promise<number> {
  if (taskId !== undefined) {
    const state = await recovery.loadTaskState(taskId);
    if (!state) {
      throw new CliError(
        `No task "${taskId}" in ${recovery.root}/recovery/tasks/`,
        ExitCode.failed,
        'List tasks with "sturdy recover status"',
      );
    }
    const log = (await recovery.readLog(taskId)).slice(-12);
    ctx.result(
      { state, log },
      [
        formatTask(state),
        ...(state.lastError
          ? [
            `  last error: ${state.lastError.name}: ${state.lastError.message} (${state.lastError.category})`,
          ]
          : []),
        ...(state.progress !== undefined
          ? [`  progress: ${JSON.stringify(state.progress)}`]
          : []),
        "  recent events:",
        ...log.map((r) =>
          `    ${r.ts} ${r.event}${r.attempt ? ` #${r.attempt}` : ""}${
            r.action ? ` → ${r.action} (${r.rule}: ${r.reason})` : ""
          }${r.error ? ` ${r.error}` : ""}${r.note ? ` ${r.note}` : ""}`
        ),
      ].join("\n"),
    );
    return ExitCode.ok;
  }
  const tasks = await recovery.listTasks();
  ctx.result(
    tasks,
    tasks.length === 0
      ? `No tasks in ${recovery.root}/recovery/tasks/`
      : tasks.map(formatTask).join("\n"),
  );
  return ExitCode.ok;
}

function formatTask(state: TaskState): string {
  const age = formatDuration(Math.max(0, Date.now() - state.updatedAt));
  return `${state.taskId.padEnd(24)} ${state.status.padEnd(15)} ${
    String(state.attemptsMade).padStart(2)
  } run${state.attemptsMade === 1 ? " " : "s"}  ${age} ago${
    state.escalationId && state.status === "escalated"
      ? `  (${state.escalationId})`
      : ""
  }`;
}

function rate(value: number | null): string {
  return value === null ? "n/a" : `${Math.round(value * 1000) / 10}%`;
}

function formatStats(stats: RecoveryStats, since: string | undefined): string {
  const lines = [
    `Tasks finished${
      since ? ` in the last ${since}` : ""
    }: ${stats.total} (${stats.tasks} distinct)`,
    `  succeeded ${stats.succeeded} (recovered ${stats.recovered}), failed ${stats.failed}, ` +
    `rolled back ${stats.rolledBack}, skipped ${stats.skipped}, escalated ${stats.escalated}, interrupted runs ${stats.interrupted}`,
    `  success rate ${rate(stats.successRate)}, recovery rate ${
      rate(stats.recoveryRate)
    }, failed runs ${stats.failedAttempts}`,
  ];
  const cats = Object.entries(stats.byCategory);
  if (cats.length) {
    lines.push(
      `  failures by category: ${cats.map(([k, v]) => `${k} ${v}`).join(", ")}`,
    );
  }
  const strategies = Object.entries(stats.byStrategy);
  if (strategies.length) {
    lines.push(
      `  by strategy: ${
        strategies.map(([k, v]) => `${k} ${v.succeeded}/${v.total}`).join(", ")
      }`,
    );
  }
  if (stats.timeToRecover.count) {
    lines.push(
      `  time to recover: p50 ${
        formatDuration(stats.timeToRecover.p50Ms)
      }, p95 ${formatDuration(stats.timeToRecover.p95Ms)}`,
    );
  }
  return lines.join("\n");
}

function formatEscalations(list: Escalation[], all: boolean): string {
  if (list.length === 0) {
    return all ? "No escalations" : "No open escalations";
  }
  return list.map((e) =>
    [
      `${e.id} [${e.type}, ${e.status}] ${e.summary}`,
      ...(e.prompt ? [`  question: ${e.prompt}`] : []),
      ...(e.resolution
        ? [
          `  resolved: ${e.resolution.action} by ${e.resolution.by}${
            e.resolution.note ? ` (${e.resolution.note})` : ""
          }`,
        ]
        : e.suggested.map((s) => `  $ ${s}`)),
    ].join("\n")
  ).join("\n");
}
