import { createHash } from "node:crypto";
import { dirname, resolve } from "node:path";
import { readText } from "../fs/mod.ts";
import {
  RECOVERY_ACTIONS,
  type RecoveryAction,
  type Strategy,
} from "../recovery/types.ts";
import { formatDuration, SturdyError } from "../retry/mod.ts";
import { EpisodeConfigError } from "./errors.ts";
import {
  field,
  Fields,
  isMapping,
  type Mapping,
  shown,
  suggest,
} from "./_fields.ts";
import { configError } from "./_problems.ts";
import { orderTasks } from "./_task_graph.ts";
import { parseYaml, type PathSegment } from "./_yaml.ts";

// Referenced by TaskConfig; re-exported so this entry point is whole.
export type { RecoveryAction, Strategy } from "../recovery/types.ts";

/**
 * The agent restart cooldown: geometric from `initialMs` to `maxMs` in
 * `steps` steps (see `cooldownDelay`). A plain duration such as `60s` in
 * the file means `initialMs = maxMs = 60000`, `steps: 0`.
 */
export interface CooldownPolicy {
  /** The delay before the first recovery, in milliseconds. */
  readonly initialMs: number;
  /** The longest delay, reached after `steps` recoveries, in milliseconds. */
  readonly maxMs: number;
  /** How many recoveries it takes to grow from `initialMs` to `maxMs`. */
  readonly steps: number;
  /** How long an agent must stay healthy before the cooldown starts over, in milliseconds. */
  readonly resetAfterMs: number;
}

/** When errors stop the episode: `count` errors within `windowMs`. */
export interface ThresholdPolicy {
  /** How many errors reach the threshold. */
  readonly count: number;
  /** The sliding window, in milliseconds; `undefined` counts the whole episode. */
  readonly windowMs?: number;
}

/** The `limits` section with every default filled in. */
export interface EpisodeLimits {
  /** Recoveries allowed per agent per episode before it escalates. */
  readonly maxRecoveryAttempts: number;
  /** The agent restart cooldown. */
  readonly recoveryCooldown: CooldownPolicy;
  /** When errors stop the episode. */
  readonly errorThreshold: ThresholdPolicy;
  /** What happens at the threshold: stop (`abort`) or hand over to a human (`escalate`). */
  readonly onThreshold: "abort" | "escalate";
  /** The default interval of agent health checks, in milliseconds. */
  readonly agentHealthCheckIntervalMs: number;
  /** The default first delay of a task's retries, in milliseconds. */
  readonly taskRetryDelayMs: number;
  /** How many tasks may run at once. */
  readonly concurrency: number;
}

/** The settings every health check shares. */
export interface HealthTiming {
  /** Time between checks, in milliseconds. */
  readonly intervalMs: number;
  /** How long one check may take, in milliseconds; shorter than `intervalMs`. */
  readonly timeoutMs: number;
  /** Consecutive failures that make the agent unhealthy. */
  readonly failureThreshold: number;
  /** Failures do not count until the first success or until this has passed, in milliseconds. */
  readonly startPeriodMs: number;
}

/** A watchdog: the agent is unhealthy when it has not reported progress in time. */
export interface HeartbeatHealthConfig extends HealthTiming {
  /** The kind of check. */
  readonly check: "heartbeat";
  /** The longest silence allowed, in milliseconds. */
  readonly heartbeatTimeoutMs: number;
}

/** A probe command: exit code 0 means healthy. */
export interface CommandHealthConfig extends HealthTiming {
  /** The kind of check. */
  readonly check: "command";
  /** The probe's argv, e.g. `["deno", "run", "probe.ts"]`. */
  readonly command: readonly string[];
}

/** How an agent's health is checked. */
export type HealthConfig = HeartbeatHealthConfig | CommandHealthConfig;

/** An agent declared in the file. */
export interface AgentConfig {
  /** The agent's id. */
  readonly id: string;
  /** Its health check, if it has one. */
  readonly health?: HealthConfig;
}

/** How often and how patiently a task is retried. */
export interface TaskRetryConfig {
  /** Total runs allowed, the first included. */
  readonly attempts: number;
  /** The delay before the second run, in milliseconds; it doubles after that. */
  readonly delayMs: number;
  /** The longest delay between runs, in milliseconds. */
  readonly maxDelayMs: number;
}

/** A task declared in the file, with every default filled in. */
export interface TaskConfig {
  /** The task's id, unique in the episode. */
  readonly id: string;
  /** The argv to run; a `sh` line becomes `["sh", "-c", line]`. */
  readonly run: readonly string[];
  /** Whether `run` came from a `sh` line. */
  readonly shell: boolean;
  /** The agent that runs it, if any. */
  readonly agent?: string;
  /** Ids of the tasks that must succeed first. */
  readonly needs: readonly string[];
  /** Its retry settings. */
  readonly retry: TaskRetryConfig;
  /**
   * What to do when it fails: one action, `"auto"`, or a chain of actions
   * (the recovery module's {@linkcode Strategy}).
   */
  readonly strategy: Strategy;
  /** Files to snapshot and roll back, as written (relative to `cwd`). */
  readonly files: readonly string[];
  /** The lock held while it runs, if any. */
  readonly lock?: string;
  /** The limit on one run, in milliseconds, if any. */
  readonly timeoutMs?: number;
  /** Extra environment variables. */
  readonly env: Readonly<Record<string, string>>;
  /** The absolute directory it runs in. */
  readonly cwd: string;
  /** Whether the episode may succeed when this task fails. */
  readonly optional: boolean;
}

/** A validated `episode.yaml`, with defaults filled in and durations in milliseconds. */
export interface EpisodeConfig {
  /** The file format version. */
  readonly version: 1;
  /** The episode id (the file's `episode` key). */
  readonly id: string;
  /** The file it came from, as named to the loader, if any. */
  readonly file?: string;
  /** The absolute directory relative paths resolve against. */
  readonly baseDir: string;
  /** The absolute state root. */
  readonly root: string;
  /** The limits. */
  readonly limits: EpisodeLimits;
  /** Shutdown settings. */
  readonly shutdown: {
    /** How long tasks get to finish after the first signal, in milliseconds. */
    readonly gracePeriodMs: number;
  };
  /** The agents, in file order. */
  readonly agents: readonly AgentConfig[];
  /** The tasks, in file order (see {@linkcode taskOrder} for run order). */
  readonly tasks: readonly TaskConfig[];
  /**
   * SHA-256 of the source text's UTF-8 bytes (after a byte order mark is
   * dropped), as lowercase hex: it tells whether the file changed.
   */
  readonly hash: string;
}

/** Options of {@linkcode loadEpisode}. */
export interface LoadEpisodeOptions {
  /**
   * The largest file accepted, in bytes; a bigger one fails with code
   * `too_large` before it is read.
   *
   * @default {1_048_576} (1 MiB)
   */
  maxBytes?: number;
}

/** Options of {@linkcode parseEpisode}. */
export interface ParseEpisodeOptions {
  /**
   * The file name used in error messages and kept as `config.file`.
   *
   * @default {undefined} (messages say "episode text")
   */
  file?: string;
  /**
   * The directory that relative `root` and `cwd` resolve against.
   *
   * @default {undefined} (the directory of `file`, or the current directory)
   */
  baseDir?: string;
}

const DEFAULT_MAX_BYTES = 1_048_576;
const STRATEGIES: readonly (RecoveryAction | "auto")[] = [
  ...RECOVERY_ACTIONS,
  "auto",
];

/**
 * Reads and validates an episode file: at most `maxBytes` (1 MiB), one
 * YAML document, no aliases, no duplicate keys, every rule checked at once.
 * Relative paths in it resolve against the file's directory.
 *
 * @param path The `episode.yaml` to load.
 * @param options The size limit.
 * @returns The validated configuration.
 * @throws {EpisodeConfigError} Code `not_found`, `too_large`, `yaml_syntax`
 * or `invalid_config` (with every problem listed), or the code of another
 * read failure.
 *
 * @example Load a file and read its defaults
 * ```ts
 * import { loadEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/episode.yaml`,
 *   "version: 1\nepisode: demo\ntasks:\n  - id: build\n    sh: echo hi\n",
 * );
 * const config = await loadEpisode(`${dir}/episode.yaml`);
 * assert.equal(config.id, "demo");
 * assert.equal(config.limits.maxRecoveryAttempts, 3);
 * assert.deepEqual(config.tasks[0]?.run, ["sh", "-c", "echo hi"]);
 * await assert.rejects(loadEpisode(`${dir}/missing.yaml`), { code: "not_found" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadEpisode(
  path: string,
  options?: LoadEpisodeOptions,
): Promise<EpisodeConfig> {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES;
  let text: string;
  try {
    text = await readText(path, { maxBytes });
  } catch (err) {
    if (!(err instanceof SturdyError)) throw err;
    const message = err.code === "not_found"
      ? `Cannot load episode "${path}": no such file; check the path`
      : err.code === "too_large"
      ? `Cannot load episode "${path}": it is larger than the limit of ${maxBytes} bytes (maxBytes); an episode file is normally a few kilobytes`
      : err.message;
    throw new EpisodeConfigError(message, {
      code: err.code,
      file: path,
      cause: err,
    });
  }
  return parseEpisode(text, { file: path, baseDir: dirname(resolve(path)) });
}

/**
 * Validates episode YAML given as text: the same rules as
 * {@linkcode loadEpisode} without touching the disk (except to resolve a
 * relative `baseDir` against the current directory).
 *
 * @param text The YAML text.
 * @param options The file name for messages and the base directory.
 * @returns The validated configuration.
 * @throws {EpisodeConfigError} Code `yaml_syntax` or `invalid_config`,
 * listing every problem with its YAML path and line.
 *
 * @example Defaults, and a problem named by path and line
 * ```ts
 * import { parseEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 *
 * const config = parseEpisode("version: 1\nepisode: demo\n", { baseDir: "/srv/demo" });
 * assert.equal(config.limits.recoveryCooldown.maxMs, 60_000);
 * assert.equal(config.root, join(config.baseDir, ".sturdy"));
 *
 * assert.throws(
 *   () =>
 *     parseEpisode("version: 1\nepisode: demo\nlimits:\n  maxRecoveryAttempt: 3\n", {
 *       file: "episode.yaml",
 *       baseDir: "/srv/demo",
 *     }),
 *   {
 *     code: "invalid_config",
 *     message:
 *       'episode.yaml: limits.maxRecoveryAttempt: unknown key, did you mean "maxRecoveryAttempts"? (line 4)',
 *   },
 * );
 * ```
 */
export function parseEpisode(
  text: string,
  options?: ParseEpisodeOptions,
): EpisodeConfig {
  const file = options?.file;
  const baseDir = options?.baseDir !== undefined
    ? resolve(options.baseDir)
    : file !== undefined
    ? dirname(resolve(file))
    : Deno.cwd();
  const source = parseYaml(text, file);
  const fields = new Fields(source);
  const config = readEpisode(fields, source.value, baseDir);
  if (fields.problems.length > 0 || config === undefined) {
    throw configError(file, fields.problems);
  }
  return deepFreeze({
    ...config,
    ...(file !== undefined ? { file } : {}),
    hash: createHash("sha256").update(text).digest("hex"),
  });
}

/**
 * The task ids in an order that runs every task after the tasks it needs,
 * keeping file order wherever the dependencies allow.
 *
 * @param config The configuration, or anything with its `tasks`.
 * @returns The ids in run order.
 * @throws {EpisodeConfigError} If a task needs an unknown task or the
 * tasks form a cycle (a config from {@linkcode parseEpisode} never does).
 *
 * @example Dependencies first, file order otherwise
 * ```ts
 * import { parseEpisode, taskOrder } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const config = parseEpisode(
 *   `version: 1
 * episode: demo
 * tasks:
 *   - { id: deploy, sh: ./deploy, needs: [test] }
 *   - { id: lint, sh: ./lint }
 *   - { id: test, sh: ./test }
 * `,
 *   { baseDir: "/srv/demo" },
 * );
 * assert.deepEqual(taskOrder(config), ["lint", "test", "deploy"]);
 * ```
 */
export function taskOrder(
  config: { readonly tasks: readonly Pick<TaskConfig, "id" | "needs">[] },
): string[] {
  const ids = new Set(config.tasks.map((task) => task.id));
  const problems = config.tasks.flatMap((task, i) =>
    task.needs.flatMap((need, j) =>
      ids.has(need) ? [] : [{
        yamlPath: `tasks[${i}].needs[${j}]`,
        message: `unknown task "${need}"`,
      }]
    )
  );
  const { order, cycles } = orderTasks(config.tasks);
  for (const cycle of cycles) {
    problems.push({
      yamlPath: `tasks[${
        config.tasks.findIndex((t) => t.id === cycle[0])
      }].needs`,
      message: `tasks form a cycle ${cycle.join(" -> ")}`,
    });
  }
  if (problems.length > 0) throw configError(undefined, problems);
  return order;
}

// ---------------------------------------------------------------------------
// Reading the file, section by section. Every reader falls back to the
// default after reporting a problem, so one run reports every problem.

type Unbuilt = Omit<EpisodeConfig, "hash" | "file">;

const TOP_KEYS = [
  "version",
  "episode",
  "root",
  "limits",
  "shutdown",
  "agents",
  "tasks",
];

function readEpisode(
  fields: Fields,
  value: unknown,
  baseDir: string,
): Unbuilt | undefined {
  if (value === undefined) {
    fields.report(
      [],
      'is empty, an episode file starts with "version: 1" and "episode: <id>"',
    );
    return undefined;
  }
  const top = fields.mapping(value, [], TOP_KEYS);
  if (top === undefined) return undefined;

  const version = field(top, "version");
  if (version === undefined) {
    fields.report(["version"], 'is required, add "version: 1"');
  } else if (version !== 1) {
    fields.report(
      ["version"],
      `must be 1, the only version this release reads, got ${shown(version)}`,
    );
  }
  const idValue = field(top, "episode");
  const id = idValue === undefined
    ? fields.report(
      ["episode"],
      'is required, add "episode: <id>" naming the episode',
    )
    : fields.name(idValue, ["episode"], "episode id");

  const rootValue = field(top, "root");
  const root = rootValue === undefined
    ? ".sturdy"
    : fields.string(rootValue, ["root"]) ?? ".sturdy";

  const limits = readLimits(fields, field(top, "limits"));
  const shutdown =
    fields.mapping(field(top, "shutdown") ?? null, ["shutdown"], [
      "gracePeriod",
    ]) ?? {};
  const gracePeriodMs = optional(
    shutdown,
    "gracePeriod",
    (v) => fields.duration(v, ["shutdown", "gracePeriod"]),
  ) ?? 10_000;
  const agents = readAgents(fields, field(top, "agents"), limits);
  const tasks = readTasks(fields, field(top, "tasks"), agents, limits, baseDir);

  return {
    version: 1,
    id: id ?? "",
    baseDir,
    root: resolve(baseDir, root),
    limits,
    shutdown: { gracePeriodMs },
    agents,
    tasks,
  };
}

function readLimits(fields: Fields, value: unknown): EpisodeLimits {
  const path = ["limits"];
  const limits = fields.mapping(value ?? null, path, [
    "maxRecoveryAttempts",
    "recoveryCooldown",
    "errorThreshold",
    "onThreshold",
    "agentHealthCheckInterval",
    "taskRetryDelay",
    "concurrency",
  ]) ?? {};
  const at = (key: string) => [...path, key];
  return {
    maxRecoveryAttempts: optional(
      limits,
      "maxRecoveryAttempts",
      (v) => fields.integer(v, at("maxRecoveryAttempts"), 0),
    ) ?? 3,
    recoveryCooldown: readCooldown(
      fields,
      field(limits, "recoveryCooldown"),
      at("recoveryCooldown"),
    ),
    errorThreshold: readThreshold(
      fields,
      field(limits, "errorThreshold"),
      at("errorThreshold"),
    ),
    onThreshold: optional(
      limits,
      "onThreshold",
      (v) => fields.oneOf(v, at("onThreshold"), ["abort", "escalate"] as const),
    ) ?? "abort",
    agentHealthCheckIntervalMs: optional(
      limits,
      "agentHealthCheckInterval",
      (v) =>
        fields.duration(v, at("agentHealthCheckInterval"), {
          positive: true,
        }),
    ) ?? 300_000,
    taskRetryDelayMs: optional(
      limits,
      "taskRetryDelay",
      (v) => fields.duration(v, at("taskRetryDelay")),
    ) ?? 30_000,
    concurrency: optional(
      limits,
      "concurrency",
      (v) => fields.integer(v, at("concurrency"), 1, 64),
    ) ?? 1,
  };
}

const RESET_AFTER_MS = 300_000;

function readCooldown(
  fields: Fields,
  value: unknown,
  path: PathSegment[],
): CooldownPolicy {
  // A plain duration: the same cooldown before every recovery.
  const fixed = (ms: number) => ({
    initialMs: ms,
    maxMs: ms,
    steps: 0,
    resetAfterMs: RESET_AFTER_MS,
  });
  if (value === undefined) return fixed(60_000);
  if (typeof value === "string" || typeof value === "number") {
    return fixed(fields.duration(value, path) ?? 60_000);
  }
  if (!isMapping(value)) {
    fields.report(
      path,
      `must be a duration such as 60s or a mapping of initial, max, steps and resetAfter, got ${
        shown(value)
      }`,
    );
    return fixed(60_000);
  }
  const map = fields.mapping(value, path, [
    "initial",
    "max",
    "steps",
    "resetAfter",
  ]) ?? {};
  const at = (key: string) => [...path, key];
  const initialMs =
    optional(map, "initial", (v) => fields.duration(v, at("initial"))) ?? 1_000;
  const maxMs = optional(map, "max", (v) => fields.duration(v, at("max"))) ??
    Math.max(60_000, initialMs);
  const grows = maxMs > initialMs;
  const steps =
    optional(map, "steps", (v) => fields.integer(v, at("steps"), 0)) ??
      (grows ? 6 : 0);
  const resetAfterMs =
    optional(map, "resetAfter", (v) => fields.duration(v, at("resetAfter"))) ??
      RESET_AFTER_MS;
  if (maxMs < initialMs) {
    fields.report(
      at("max"),
      `must be at least initial (${ms(initialMs)}), got ${ms(maxMs)}`,
    );
  } else if (grows && initialMs === 0) {
    fields.report(
      at("initial"),
      "must be longer than 0 when max is longer, a geometric cooldown cannot grow from 0",
    );
  } else if (grows && steps === 0) {
    fields.report(
      at("steps"),
      "must be 1 or more when max is longer than initial",
    );
  }
  return { initialMs, maxMs, steps, resetAfterMs };
}

function readThreshold(
  fields: Fields,
  value: unknown,
  path: PathSegment[],
): ThresholdPolicy {
  if (value === undefined) return { count: 5 };
  if (typeof value === "number") {
    return { count: fields.integer(value, path, 1) ?? 5 };
  }
  if (!isMapping(value)) {
    fields.report(
      path,
      `must be a count such as 5 or a mapping of count and window, got ${
        shown(value)
      }`,
    );
    return { count: 5 };
  }
  const map = fields.mapping(value, path, ["count", "window"]) ?? {};
  const count =
    optional(map, "count", (v) => fields.integer(v, [...path, "count"], 1)) ??
      5;
  const windowMs = optional(
    map,
    "window",
    (v) => fields.duration(v, [...path, "window"], { positive: true }),
  );
  return windowMs === undefined ? { count } : { count, windowMs };
}

const AGENT_KEYS = ["health"];
const HEALTH_KEYS = [
  "check",
  "heartbeatTimeout",
  "command",
  "interval",
  "timeout",
  "failureThreshold",
  "startPeriod",
];

function readAgents(
  fields: Fields,
  value: unknown,
  limits: EpisodeLimits,
): AgentConfig[] {
  const map = fields.mapping(value ?? null, ["agents"], undefined) ?? {};
  const agents: AgentConfig[] = [];
  for (const [key, agentValue] of Object.entries(map)) {
    const path = ["agents", key];
    // An invalid id is reported but kept, so tasks naming it are not
    // reported as naming an unknown agent too.
    const id = fields.name(key, path, "agent id") ?? key;
    const agent = fields.mapping(agentValue, path, AGENT_KEYS) ?? {};
    const healthValue = field(agent, "health");
    const health = healthValue === undefined
      ? undefined
      : readHealth(fields, healthValue, [...path, "health"], limits);
    agents.push(health === undefined ? { id } : { id, health });
  }
  return agents;
}

function readHealth(
  fields: Fields,
  value: unknown,
  path: PathSegment[],
  limits: EpisodeLimits,
): HealthConfig | undefined {
  const map = fields.mapping(value, path, HEALTH_KEYS);
  if (map === undefined) return undefined;
  const at = (key: string) => [...path, key];
  const check = optional(
    map,
    "check",
    (v) => fields.oneOf(v, at("check"), ["heartbeat", "command"] as const),
  ) ??
    (field(map, "command") !== undefined ? "command" : "heartbeat");
  const intervalMs = optional(
    map,
    "interval",
    (v) => fields.duration(v, at("interval"), { positive: true }),
  ) ?? limits.agentHealthCheckIntervalMs;
  const timeoutMs = optional(
    map,
    "timeout",
    (v) => fields.duration(v, at("timeout"), { positive: true }),
  ) ?? 5_000;
  if (timeoutMs >= intervalMs) {
    fields.report(
      at("timeout"),
      `must be shorter than interval (${ms(intervalMs)}), got ${
        ms(timeoutMs)
      }; checks never overlap`,
    );
  }
  const timing: HealthTiming = {
    intervalMs,
    timeoutMs,
    failureThreshold: optional(
      map,
      "failureThreshold",
      (v) => fields.integer(v, at("failureThreshold"), 1),
    ) ?? 3,
    startPeriodMs: optional(
      map,
      "startPeriod",
      (v) => fields.duration(v, at("startPeriod")),
    ) ?? 0,
  };
  if (check === "heartbeat") {
    if (field(map, "command") !== undefined) {
      fields.report(at("command"), "applies only to check: command", "key");
    }
    const heartbeatTimeoutMs = optional(map, "heartbeatTimeout", (v) =>
      fields.duration(v, at("heartbeatTimeout"), { positive: true })) ?? 60_000;
    return { check, heartbeatTimeoutMs, ...timing };
  }
  if (field(map, "heartbeatTimeout") !== undefined) {
    fields.report(
      at("heartbeatTimeout"),
      "applies only to check: heartbeat",
      "key",
    );
  }
  const commandValue = field(map, "command");
  const command = commandValue === undefined
    ? fields.report(
      at("command"),
      'is required for check: command, e.g. ["deno", "run", "probe.ts"]',
    )
    : fields.argv(commandValue, at("command"));
  return { check, command: command ?? [], ...timing };
}

const TASK_KEYS = [
  "id",
  "run",
  "sh",
  "agent",
  "needs",
  "retry",
  "strategy",
  "files",
  "lock",
  "timeout",
  "env",
  "cwd",
  "optional",
];

function readTasks(
  fields: Fields,
  value: unknown,
  agents: readonly AgentConfig[],
  limits: EpisodeLimits,
  baseDir: string,
): TaskConfig[] {
  const items = fields.list(value ?? null, ["tasks"]) ?? [];
  const agentIds = agents.map((agent) => agent.id);
  const tasks: { task: TaskConfig; index: number }[] = [];
  items.forEach((item, index) => {
    const task = readTask(fields, item, index, agentIds, limits, baseDir);
    if (task !== undefined) tasks.push({ task, index });
  });

  // Checks across tasks: unique ids, needs that exist, no cycles.
  const firstIndex = new Map<string, number>();
  for (const { task, index } of tasks) {
    const first = firstIndex.get(task.id);
    if (first === undefined) firstIndex.set(task.id, index);
    else {
      fields.report(
        ["tasks", index, "id"],
        `duplicate task id "${task.id}", already used by tasks[${first}]`,
      );
    }
  }
  const ids = [...firstIndex.keys()];
  for (const { task, index } of tasks) {
    task.needs.forEach((need, j) => {
      if (firstIndex.has(need)) return;
      const guess = suggest(need, ids);
      fields.report(
        ["tasks", index, "needs", j],
        `unknown task "${need}"${
          guess === undefined ? "" : `, did you mean "${guess}"?`
        }`,
      );
    });
  }
  for (const cycle of orderTasks(tasks.map(({ task }) => task)).cycles) {
    const start = tasks.find(({ task }) => task.id === cycle[0])!;
    fields.report(
      ["tasks", start.index, "needs", start.task.needs.indexOf(cycle[1]!)],
      `tasks form a cycle ${cycle.join(" -> ")}, remove one of these needs`,
    );
  }
  return tasks.map(({ task }) => ({
    ...task,
    needs: [...new Set(task.needs)],
  }));
}

function readTask(
  fields: Fields,
  value: unknown,
  index: number,
  agentIds: readonly string[],
  limits: EpisodeLimits,
  baseDir: string,
): TaskConfig | undefined {
  const path = ["tasks", index];
  const at = (key: string) => [...path, key];
  const map = fields.mapping(value, path, TASK_KEYS);
  if (map === undefined) return undefined;
  const idValue = field(map, "id");
  // An invalid id or command is reported but the task is kept (with the id
  // as written), so other tasks' needs are still checked against it.
  const id = idValue === undefined
    ? fields.report(at("id"), 'is required, add "id: <name>"')
    : fields.name(idValue, at("id"), "task id") ??
      (typeof idValue === "string" ? idValue : undefined);

  const runValue = field(map, "run");
  const shValue = field(map, "sh");
  let run: string[] | undefined;
  if (runValue !== undefined && shValue !== undefined) {
    fields.report(
      path,
      "has both run and sh, keep one: run takes an argv list, sh a shell line",
    );
  } else if (runValue !== undefined) {
    run = fields.argv(runValue, at("run"));
  } else if (shValue !== undefined) {
    const line = fields.string(shValue, at("sh"));
    if (line !== undefined) run = ["sh", "-c", line];
  } else {
    fields.report(
      path,
      'needs run (an argv list such as ["deno", "run", "x.ts"]) or sh (a shell line)',
    );
  }

  const agent = optional(map, "agent", (v) => {
    if (typeof v === "string" && agentIds.includes(v)) return v;
    const guess = typeof v === "string" ? suggest(v, agentIds) : undefined;
    return fields.report(
      at("agent"),
      `unknown agent ${shown(v)}, ${
        guess !== undefined
          ? `did you mean "${guess}"?`
          : agentIds.length === 0
          ? "no agents are declared under agents:"
          : `declared agents: ${agentIds.join(", ")}`
      }`,
    );
  });

  const needs = optional(map, "needs", (v) => {
    const list = fields.list(v, at("needs"));
    return list && fields.strings(list, at("needs"));
  }) ?? [];

  const retry = readRetry(fields, field(map, "retry"), at("retry"), limits);
  const strategy =
    optional(map, "strategy", (v): TaskConfig["strategy"] | undefined => {
      if (!Array.isArray(v)) return fields.oneOf(v, at("strategy"), STRATEGIES);
      if (v.length === 0) {
        return fields.report(
          at("strategy"),
          "must name at least one strategy, e.g. [retry, rollback, escalate]",
        );
      }
      const chain = v.map((item, i) =>
        item === "auto"
          ? fields.report(
            [...at("strategy"), i],
            'cannot be part of a chain, write "strategy: auto" alone',
          )
          : fields.oneOf(item, [...at("strategy"), i], RECOVERY_ACTIONS)
      );
      return chain.every((item) => item !== undefined)
        ? chain as RecoveryAction[]
        : undefined;
    }) ?? "retry";
  const files = optional(map, "files", (v) => {
    const list = fields.list(v, at("files"));
    return list && fields.strings(list, at("files"));
  }) ?? [];
  const lock = optional(
    map,
    "lock",
    (v) => fields.name(v, at("lock"), "lock name"),
  );
  const timeoutMs = optional(
    map,
    "timeout",
    (v) => fields.duration(v, at("timeout"), { positive: true }),
  );
  const env = optional(map, "env", (v) => readEnv(fields, v, at("env"))) ?? {};
  const cwd = optional(map, "cwd", (v) => fields.string(v, at("cwd")));
  const isOptional =
    optional(map, "optional", (v) => fields.boolean(v, at("optional"))) ??
      false;

  if (id === undefined) return undefined;
  return {
    id,
    run: run ?? [],
    shell: runValue === undefined,
    ...(agent !== undefined ? { agent } : {}),
    needs,
    retry,
    strategy,
    files,
    ...(lock !== undefined ? { lock } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    env,
    cwd: cwd === undefined ? baseDir : resolve(baseDir, cwd),
    optional: isOptional,
  };
}

function readRetry(
  fields: Fields,
  value: unknown,
  path: PathSegment[],
  limits: EpisodeLimits,
): TaskRetryConfig {
  const delayDefault = limits.taskRetryDelayMs;
  const maxDelayDefault = (delayMs: number) => Math.max(60_000, delayMs);
  if (value === undefined) {
    return {
      attempts: 3,
      delayMs: delayDefault,
      maxDelayMs: maxDelayDefault(delayDefault),
    };
  }
  if (!isMapping(value)) {
    const attempts = typeof value === "number"
      ? fields.integer(value, path, 1)
      : fields.report(
        path,
        `must be a number of attempts such as 3 or a mapping of attempts, delay and maxDelay, got ${
          shown(value)
        }`,
      );
    return {
      attempts: attempts ?? 3,
      delayMs: delayDefault,
      maxDelayMs: maxDelayDefault(delayDefault),
    };
  }
  const map = fields.mapping(value, path, ["attempts", "delay", "maxDelay"]) ??
    {};
  const at = (key: string) => [...path, key];
  const attempts =
    optional(map, "attempts", (v) => fields.integer(v, at("attempts"), 1)) ?? 3;
  const delayMs =
    optional(map, "delay", (v) => fields.duration(v, at("delay"))) ??
      delayDefault;
  const maxDelayMs =
    optional(map, "maxDelay", (v) => fields.duration(v, at("maxDelay"))) ??
      maxDelayDefault(delayMs);
  if (maxDelayMs < delayMs) {
    fields.report(
      at("maxDelay"),
      `must be at least delay (${ms(delayMs)}), got ${ms(maxDelayMs)}`,
    );
  }
  return { attempts, delayMs, maxDelayMs };
}

function readEnv(
  fields: Fields,
  value: unknown,
  path: PathSegment[],
): Record<string, string> | undefined {
  const map = fields.mapping(value, path, undefined);
  if (map === undefined) return undefined;
  const env: [string, string][] = [];
  for (const [key, item] of Object.entries(map)) {
    if (key === "" || /[=\0]/.test(key)) {
      fields.report(
        [...path, key],
        `${
          shown(key)
        } is not a valid variable name, it must be non-empty without "=" or NUL`,
        "key",
      );
    } else if (typeof item !== "string") {
      fields.report(
        [...path, key],
        `must be a string, got ${shown(item)}${
          typeof item === "number" || typeof item === "boolean"
            ? `; quote it: "${item}"`
            : ""
        }`,
      );
    } else if (item.includes("\0")) {
      fields.report([...path, key], "must not contain a NUL character");
    } else env.push([key, item]);
  }
  return Object.fromEntries(env);
}

/** Reads `map[key]` with `read` when present; `undefined` when absent. */
function optional<T>(
  map: Mapping,
  key: string,
  read: (value: unknown) => T | undefined,
): T | undefined {
  const value = field(map, key);
  return value === undefined ? undefined : read(value);
}

function ms(value: number): string {
  return formatDuration(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
