import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  type EpisodeConfig,
  loadEpisode,
  parseEpisode,
  taskOrder,
} from "../../episode/config.ts";
import {
  EpisodeConfigError,
  type EpisodeConfigProblem,
  EpisodeError,
} from "../../episode/errors.ts";
import { SturdyError } from "../../retry/mod.ts";
import { inTempDir } from "../_helpers/temp_dir.ts";
import { sha256 } from "../_helpers/sha256.ts";

const BASE = resolve("/srv/demo");
const HEAD = "version: 1\nepisode: demo\n";

function parse(text: string): EpisodeConfig {
  return parseEpisode(text, { file: "episode.yaml", baseDir: BASE });
}

/** The error `parse(text)` throws; fails the test if it does not throw. */
function refusal(text: string): EpisodeConfigError {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof EpisodeConfigError, String(err));
    return err;
  }
  assert.fail("parseEpisode() accepted the text");
}

/** The single problem `parse(text)` reports. */
function onlyProblem(text: string): EpisodeConfigProblem {
  const err = refusal(text);
  assert.equal(err.problems.length, 1, err.message);
  return err.problems[0]!;
}

function problemAt(
  err: EpisodeConfigError,
  yamlPath: string,
): EpisodeConfigProblem {
  const found = err.problems.find((p) => p.yamlPath === yamlPath);
  assert.ok(found, `no problem at ${yamlPath} in:\n${err.message}`);
  return found;
}

// --- defaults and a full file ------------------------------------------------

Deno.test("parseEpisode() fills every default for a file with only version and episode", () => {
  const config = parse(HEAD);
  const { hash, ...rest } = config;
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.deepEqual(rest, {
    version: 1,
    id: "demo",
    file: "episode.yaml",
    baseDir: BASE,
    root: join(BASE, ".sturdy"),
    limits: {
      maxRecoveryAttempts: 3,
      recoveryCooldown: {
        initialMs: 60_000,
        maxMs: 60_000,
        steps: 0,
        resetAfterMs: 300_000,
      },
      errorThreshold: { count: 5 },
      onThreshold: "abort",
      agentHealthCheckIntervalMs: 300_000,
      taskRetryDelayMs: 30_000,
      concurrency: 1,
    },
    shutdown: { gracePeriodMs: 10_000 },
    agents: [],
    tasks: [],
  });
});

const FULL = `version: 1
episode: nightly
root: state
limits:
  maxRecoveryAttempts: 4
  recoveryCooldown: { initial: 1s, max: 60s, steps: 6, resetAfter: 10m }
  errorThreshold: { count: 7, window: 2m }
  onThreshold: escalate
  agentHealthCheckInterval: 20s
  taskRetryDelay: 2s
  concurrency: 4
shutdown:
  gracePeriod: 15s
agents:
  writer:
    health:
      check: heartbeat
      heartbeatTimeout: 90s
      startPeriod: 30s
  fetcher:
    health:
      check: command
      command: ["deno", "run", "probe.ts"]
      interval: 10s
      timeout: 2s
      failureThreshold: 5
  quiet:
tasks:
  - id: build
    run: ["deno", "run", "x.ts"]
    agent: writer
    retry: { attempts: 5, delay: 1s, maxDelay: 30s }
    strategy: [retry, rollback, escalate]
    files: [data/a.json]
    lock: counter
    timeout: 30s
    env: { KEY: value, EMPTY: "" }
    cwd: sub/dir
  - id: report
    sh: "echo hi > out.txt"
    needs: [build]
    retry: 1
    strategy: auto
    optional: true
`;

Deno.test("parseEpisode() reads every key of a full file into milliseconds and absolute paths", () => {
  const config = parse(FULL);
  assert.equal(config.id, "nightly");
  assert.equal(config.root, join(BASE, "state"));
  assert.deepEqual(config.limits, {
    maxRecoveryAttempts: 4,
    recoveryCooldown: {
      initialMs: 1_000,
      maxMs: 60_000,
      steps: 6,
      resetAfterMs: 600_000,
    },
    errorThreshold: { count: 7, windowMs: 120_000 },
    onThreshold: "escalate",
    agentHealthCheckIntervalMs: 20_000,
    taskRetryDelayMs: 2_000,
    concurrency: 4,
  });
  assert.deepEqual(config.shutdown, { gracePeriodMs: 15_000 });
  assert.deepEqual(config.agents, [
    {
      id: "writer",
      health: {
        check: "heartbeat",
        heartbeatTimeoutMs: 90_000,
        intervalMs: 20_000, // limits.agentHealthCheckInterval
        timeoutMs: 5_000,
        failureThreshold: 3,
        startPeriodMs: 30_000,
      },
    },
    {
      id: "fetcher",
      health: {
        check: "command",
        command: ["deno", "run", "probe.ts"],
        intervalMs: 10_000,
        timeoutMs: 2_000,
        failureThreshold: 5,
        startPeriodMs: 0,
      },
    },
    { id: "quiet" },
  ]);
  assert.deepEqual(config.tasks, [
    {
      id: "build",
      run: ["deno", "run", "x.ts"],
      shell: false,
      agent: "writer",
      needs: [],
      retry: { attempts: 5, delayMs: 1_000, maxDelayMs: 30_000 },
      strategy: ["retry", "rollback", "escalate"],
      files: ["data/a.json"],
      lock: "counter",
      timeoutMs: 30_000,
      env: { KEY: "value", EMPTY: "" },
      cwd: join(BASE, "sub", "dir"),
      optional: false,
    },
    {
      id: "report",
      run: ["sh", "-c", "echo hi > out.txt"],
      shell: true,
      needs: ["build"],
      retry: { attempts: 1, delayMs: 2_000, maxDelayMs: 60_000 },
      strategy: "auto",
      files: [],
      env: {},
      cwd: BASE,
      optional: true,
    },
  ]);
});

Deno.test("parseEpisode() returns a deeply frozen config", () => {
  const config = parse(FULL);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.limits.recoveryCooldown));
  assert.ok(Object.isFrozen(config.tasks));
  assert.ok(Object.isFrozen(config.tasks[0]!.run));
  assert.ok(Object.isFrozen(config.tasks[0]!.env));
  assert.throws(() => (config.tasks[0]!.run as string[]).push("x"), TypeError);
});

Deno.test("parseEpisode() accepts durations as whole numbers of milliseconds", () => {
  const config = parse(
    `${HEAD}limits: { taskRetryDelay: 1500, recoveryCooldown: 0 }\nshutdown: { gracePeriod: 250 }\n`,
  );
  assert.equal(config.limits.taskRetryDelayMs, 1_500);
  assert.equal(config.limits.recoveryCooldown.maxMs, 0);
  assert.equal(config.shutdown.gracePeriodMs, 250);
});

Deno.test("parseEpisode() defaults a geometric cooldown to 1s to 60s in 6 steps", () => {
  const config = parse(
    `${HEAD}limits:\n  recoveryCooldown: { resetAfter: 1m }\n`,
  );
  assert.deepEqual(config.limits.recoveryCooldown, {
    initialMs: 1_000,
    maxMs: 60_000,
    steps: 6,
    resetAfterMs: 60_000,
  });
});

Deno.test("parseEpisode() infers a command check from a command and defaults task retry to taskRetryDelay", () => {
  const config = parse(`${HEAD}limits: { taskRetryDelay: 90s }
agents:
  probe: { health: { command: [./probe] } }
tasks:
  - { id: a, sh: x, retry: { attempts: 2 } }
`);
  assert.equal(config.agents[0]!.health?.check, "command");
  assert.deepEqual(config.tasks[0]!.retry, {
    attempts: 2,
    delayMs: 90_000,
    maxDelayMs: 90_000, // never below the delay
  });
});

Deno.test("parseEpisode() resolves root and cwd against baseDir and keeps absolute ones", () => {
  const absolute = resolve("/var/lib/sturdy");
  const config = parse(
    `${HEAD}root: ${
      JSON.stringify(absolute)
    }\ntasks:\n  - { id: a, sh: x, cwd: ../up }\n`,
  );
  assert.equal(config.root, absolute);
  assert.equal(config.tasks[0]!.cwd, resolve(BASE, "../up"));
});

Deno.test("parseEpisode() takes baseDir from the file's directory when none is given", () => {
  const file = join(BASE, "conf", "episode.yaml");
  const config = parseEpisode(HEAD, { file });
  assert.equal(config.baseDir, join(BASE, "conf"));
  assert.equal(config.root, join(BASE, "conf", ".sturdy"));
  assert.equal(config.file, file);
});

Deno.test("parseEpisode() hashes the text with SHA-256 so a change is visible", async () => {
  const a = parse(HEAD);
  assert.equal(a.hash, await sha256(HEAD));
  assert.equal(parse(HEAD).hash, a.hash);
  assert.notEqual(parse(`${HEAD}# changed\n`).hash, a.hash);
});

Deno.test("parseEpisode() treats a key with nothing after it as an empty section", () => {
  const config = parse(`${HEAD}limits:\nagents:\ntasks:\nshutdown:\n`);
  assert.equal(config.limits.concurrency, 1);
  assert.deepEqual(config.agents, []);
  assert.deepEqual(config.tasks, []);
});

// --- the shape of the file ---------------------------------------------------

Deno.test("parseEpisode() refuses a top level that is not a mapping, at line 1", () => {
  for (
    const text of ["- version: 1\n- episode: demo\n", "just text\n", "42\n"]
  ) {
    const err = refusal(text);
    assert.equal(err.code, "invalid_config");
    assert.equal(err.yamlPath, "");
    assert.equal(err.line, 1);
    assert.match(err.message, /^episode\.yaml: the file must be a mapping/);
  }
});

Deno.test("parseEpisode() refuses an empty file, at line 1", () => {
  for (const text of ["", "# only a comment\n"]) {
    const err = refusal(text);
    assert.equal(
      err.message,
      'episode.yaml: the file is empty, an episode file starts with "version: 1" and "episode: <id>" (line 1)',
    );
  }
});

Deno.test("parseEpisode() reports a missing version and a missing episode together", () => {
  const err = refusal("root: .state\n");
  assert.deepEqual(err.problems, [
    { yamlPath: "version", line: 1, message: 'is required, add "version: 1"' },
    {
      yamlPath: "episode",
      line: 1,
      message: 'is required, add "episode: <id>" naming the episode',
    },
  ]);
  assert.equal(
    err.message,
    'episode.yaml: 2 problems\n  version: is required, add "version: 1" (line 1)\n' +
      '  episode: is required, add "episode: <id>" naming the episode (line 1)',
  );
});

Deno.test("parseEpisode() accepts only version 1, as a number", () => {
  assert.equal(
    onlyProblem('version: "1"\nepisode: demo\n').message,
    'must be 1, the only version this release reads, got "1"',
  );
  assert.equal(
    refusal("version: 2\nepisode: demo\n").message,
    "episode.yaml: version: must be 1, the only version this release reads, got 2 (line 1)",
  );
});

Deno.test("parseEpisode() names the expected type and what it got", () => {
  const err = refusal(`${HEAD}limits:
  concurrency: two
  onThreshold: [abort]
agents: [writer]
tasks:
  - id: a
    sh: x
    optional: "yes"
    needs: b
    env: { N: 3, B: true }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message]),
    [
      [
        "limits.concurrency",
        4,
        'must be a whole number from 1 to 64, got "two"',
      ],
      [
        "limits.onThreshold",
        5,
        "must be one of abort, escalate, got a list",
      ],
      ["agents", 6, "must be a mapping (key: value), got a list"],
      ["tasks[0].optional", 10, 'must be true or false, got "yes"'],
      ["tasks[0].needs", 11, 'must be a list, got "b"'],
      ["tasks[0].env.N", 12, 'must be a string, got 3; quote it: "3"'],
      ["tasks[0].env.B", 12, 'must be a string, got true; quote it: "true"'],
    ],
  );
});

Deno.test("parseEpisode() explains a value of the wrong kind for the short or long forms", () => {
  const err = refusal(`${HEAD}limits:
  recoveryCooldown: [1s]
  errorThreshold: five
tasks:
  - { id: a, sh: x, retry: "3" }
`);
  assert.match(
    problemAt(err, "limits.recoveryCooldown").message,
    /^must be a duration such as 60s or a mapping of initial, max, steps and resetAfter, got a list$/,
  );
  assert.match(
    problemAt(err, "limits.errorThreshold").message,
    /^must be a count such as 5 or a mapping of count and window, got "five"$/,
  );
  assert.match(
    problemAt(err, "tasks[0].retry").message,
    /^must be a number of attempts such as 3 or a mapping/,
  );
});

// --- unknown keys ------------------------------------------------------------

Deno.test("parseEpisode() refuses an unknown key and suggests the closest one", () => {
  const err = refusal(`${HEAD}limits:\n  maxRecoveryAttempt: 3\n`);
  assert.equal(
    err.message,
    'episode.yaml: limits.maxRecoveryAttempt: unknown key, did you mean "maxRecoveryAttempts"? (line 4)',
  );
  assert.equal(err.yamlPath, "limits.maxRecoveryAttempt");
  assert.equal(err.line, 4);
});

Deno.test("parseEpisode() suggests a key written in another case or in snake_case", () => {
  const err = refusal(`${HEAD}limits:
  max_recovery_attempts: 3
  TaskRetryDelay: 1s
tasks:
  - { id: a, sh: x, timout: 5s, needz: [] }
`);
  assert.match(
    problemAt(err, "limits.max_recovery_attempts").message,
    /did you mean "maxRecoveryAttempts"\?/,
  );
  assert.match(
    problemAt(err, "limits.TaskRetryDelay").message,
    /did you mean "taskRetryDelay"\?/,
  );
  assert.match(problemAt(err, "tasks[0].timout").message, /"timeout"/);
  assert.match(problemAt(err, "tasks[0].needz").message, /"needs"/);
});

Deno.test("parseEpisode() lists the known keys when nothing is close", () => {
  assert.deepEqual(onlyProblem(`${HEAD}shutdown: { signals: [SIGINT] }\n`), {
    yamlPath: "shutdown.signals",
    line: 3,
    message: "unknown key, expected one of: gracePeriod",
  });
});

Deno.test("parseEpisode() refuses a __proto__ key as unknown without touching prototypes", () => {
  const problem = onlyProblem(`${HEAD}__proto__: { polluted: true }\n`);
  assert.equal(problem.yamlPath, "__proto__");
  assert.match(problem.message, /^unknown key/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("parseEpisode() quotes keys that are not plain words in YAML paths", () => {
  const problem = onlyProblem(`${HEAD}agents:
  my.agent:
    health: { interval: 1s }
`);
  assert.equal(problem.yamlPath, 'agents["my.agent"].health.timeout');
  assert.equal(problem.line, 5);
});

// --- what the YAML layer refuses ---------------------------------------------

Deno.test("parseEpisode() refuses a duplicate key with its path and line", () => {
  const err = refusal(`${HEAD}limits:\n  concurrency: 2\n  concurrency: 3\n`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(
    err.message,
    "episode.yaml: limits.concurrency: is a duplicate key, each key may appear only once (line 5)",
  );
  assert.equal(err.line, 5);
});

Deno.test("parseEpisode() refuses a billion-laughs alias bomb at once", () => {
  let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let level = 1; level < 9; level++) {
    const prev = String.fromCharCode(96 + level);
    const next = String.fromCharCode(97 + level);
    text += `${next}: &${next} [${Array(9).fill(`*${prev}`).join(",")}]\n`;
  }
  const started = performance.now();
  const err = refusal(text);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 500, `took ${elapsed}ms`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(err.line, 2);
  assert.match(err.message, /aliases are not allowed in an episode file/);
});

Deno.test("parseEpisode() refuses even a single alias", () => {
  const err = refusal(`${HEAD}tasks:
  - { id: a, sh: x, env: &shared { A: "1" } }
  - { id: b, sh: y, env: *shared }
`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(err.yamlPath, "tasks[1].env");
  assert.equal(err.line, 5);
});

Deno.test("parseEpisode() reports a YAML syntax error with line and column", () => {
  const err = refusal(`${HEAD}tasks: [a, b\nlimits: {}\n`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(err.yamlPath, "");
  assert.equal(err.line, 4);
  assert.match(
    err.message,
    /^episode\.yaml: the file is not valid YAML: .+ at column \d+ \(line 4\)$/,
  );
  assert.ok(err.cause instanceof Error);
});

Deno.test("parseEpisode() refuses tags it does not know and nesting deeper than 32", () => {
  assert.equal(refusal(`${HEAD}root: !!binary aGk=\n`).code, "yaml_syntax");
  const deep = refusal(`${HEAD}root: ${"[".repeat(40)}${"]".repeat(40)}\n`);
  assert.equal(deep.code, "yaml_syntax");
  assert.match(deep.message, /nested more than 32 levels deep/);
});

Deno.test("parseEpisode() refuses a mapping key that is not a string", () => {
  const err = refusal(`${HEAD}agents:\n  ? [a, b]\n  : {}\n`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(
    err.message,
    "episode.yaml: agents: has a key that is a list or a mapping, keys must be plain strings (line 4)",
  );
});

Deno.test("parseEpisode() refuses several YAML documents", () => {
  const err = refusal(`${HEAD}---\nversion: 1\n`);
  assert.equal(err.code, "yaml_syntax");
  assert.equal(err.line, 4);
  assert.match(
    err.message,
    /holds 2 YAML documents, an episode file holds one/,
  );
});

// --- values ------------------------------------------------------------------

Deno.test("parseEpisode() names a bad duration with the accepted forms and its line", () => {
  const err = refusal(`${HEAD}limits:
  recoveryCooldown:
    initial: 1s
    max: 60x
`);
  assert.equal(
    err.message,
    'episode.yaml: limits.recoveryCooldown.max: "60x" is not a duration, use e.g. 250ms, 1.5s, 2m, 1h, 7d (line 6)',
  );
});

Deno.test("parseEpisode() refuses durations without a unit, negative or fractional numbers, and zero timeouts", () => {
  const err = refusal(`${HEAD}limits:
  taskRetryDelay: "10"
  agentHealthCheckInterval: 0s
shutdown:
  gracePeriod: -5
tasks:
  - { id: a, sh: x, timeout: 1.5 }
  - { id: b, sh: x, timeout: [1s] }
`);
  assert.match(
    problemAt(err, "limits.taskRetryDelay").message,
    /^"10" is not a duration/,
  );
  assert.equal(
    problemAt(err, "limits.agentHealthCheckInterval").message,
    'must be longer than 0, got "0s"',
  );
  assert.match(
    problemAt(err, "shutdown.gracePeriod").message,
    /^-5 is not a duration, use a whole number of milliseconds/,
  );
  assert.match(
    problemAt(err, "tasks[0].timeout").message,
    /^1\.5 is not a duration/,
  );
  assert.match(
    problemAt(err, "tasks[1].timeout").message,
    /^must be a duration such as 30s or a number of milliseconds, got a list$/,
  );
  assert.equal(err.problems.length, 5);
});

Deno.test("parseEpisode() refuses negative, fractional and out-of-range counts", () => {
  const err = refusal(`${HEAD}limits:
  maxRecoveryAttempts: -1
  errorThreshold: { count: 2.5 }
  concurrency: 65
agents:
  a: { health: { failureThreshold: 0 } }
tasks:
  - { id: a, sh: x, retry: 0 }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.message]),
    [
      [
        "limits.maxRecoveryAttempts",
        "must be a whole number of 0 or more, got -1",
      ],
      [
        "limits.errorThreshold.count",
        "must be a whole number of 1 or more, got 2.5",
      ],
      ["limits.concurrency", "must be a whole number from 1 to 64, got 65"],
      [
        "agents.a.health.failureThreshold",
        "must be a whole number of 1 or more, got 0",
      ],
      ["tasks[0].retry", "must be a whole number of 1 or more, got 0"],
    ],
  );
});

Deno.test("parseEpisode() suggests the closest choice for a misspelt enum", () => {
  const problem = onlyProblem(`${HEAD}limits: { onThreshold: abourt }\n`);
  assert.equal(
    problem.message,
    'must be one of abort, escalate, got "abourt"; did you mean "abort"?',
  );
});

// --- cross-field checks ------------------------------------------------------

Deno.test("parseEpisode() refuses a health timeout that is not shorter than the interval", () => {
  const err = refusal(`${HEAD}agents:
  a:
    health: { interval: 5s, timeout: 5s }
  b:
    health:
      interval: 2s
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message]),
    [
      [
        "agents.a.health.timeout",
        5,
        "must be shorter than interval (5s), got 5s; checks never overlap",
      ],
      [
        "agents.b.health.timeout", // the default 5s, pointed at health's mapping
        8,
        "must be shorter than interval (2s), got 5s; checks never overlap",
      ],
    ],
  );
});

Deno.test("parseEpisode() refuses a cooldown max below its initial, and growth from 0 or in 0 steps", () => {
  assert.deepEqual(
    onlyProblem(
      `${HEAD}limits:\n  recoveryCooldown: { initial: 10s, max: 5s }\n`,
    ),
    {
      yamlPath: "limits.recoveryCooldown.max",
      line: 4,
      message: "must be at least initial (10s), got 5s",
    },
  );
  assert.equal(
    onlyProblem(
      `${HEAD}limits: { recoveryCooldown: { initial: 0s, max: 5s } }\n`,
    )
      .yamlPath,
    "limits.recoveryCooldown.initial",
  );
  assert.equal(
    onlyProblem(
      `${HEAD}limits: { recoveryCooldown: { initial: 1s, max: 5s, steps: 0 } }\n`,
    ).message,
    "must be 1 or more when max is longer than initial",
  );
});

Deno.test("parseEpisode() refuses a retry maxDelay below its delay", () => {
  assert.deepEqual(
    onlyProblem(
      `${HEAD}tasks:\n  - id: a\n    sh: x\n    retry: { delay: 10s, maxDelay: 1s }\n`,
    ),
    {
      yamlPath: "tasks[0].retry.maxDelay",
      line: 6,
      message: "must be at least delay (10s), got 1s",
    },
  );
});

Deno.test("parseEpisode() checks which health keys fit which check", () => {
  const err = refusal(`${HEAD}agents:
  a: { health: { check: command } }
  b: { health: { check: heartbeat, command: [x] } }
  c: { health: { check: command, command: [x], heartbeatTimeout: 1m } }
  d: { health: { check: command, command: [] } }
  e: { health: { check: pulse } }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message]),
    [
      [
        "agents.a.health.command",
        4,
        'is required for check: command, e.g. ["deno", "run", "probe.ts"]',
      ],
      ["agents.b.health.command", 5, "applies only to check: command"],
      [
        "agents.c.health.heartbeatTimeout",
        6,
        "applies only to check: heartbeat",
      ],
      [
        "agents.d.health.command",
        7,
        'must be a non-empty list of strings such as ["deno", "run", "main.ts"], got an empty list',
      ],
      [
        "agents.e.health.check",
        8,
        'must be one of heartbeat, command, got "pulse"',
      ],
    ],
  );
});

// --- names, tasks and their graph --------------------------------------------

Deno.test("parseEpisode() refuses ids that could escape a directory", () => {
  const err = refusal(`version: 1
episode: ../demo
agents:
  ..: {}
tasks:
  - { id: ../x, sh: x, lock: a/b }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line]),
    [["episode", 2], ['agents[".."]', 4], ["tasks[0].id", 6], [
      "tasks[0].lock",
      6,
    ]],
  );
  assert.equal(
    problemAt(err, "tasks[0].id").message,
    '"../x" is not a valid task id, use 1-128 characters from A-Z a-z 0-9 . _ - (not "." or "..")',
  );
});

Deno.test("parseEpisode() refuses a duplicate task id and names the first use", () => {
  const problem = onlyProblem(`${HEAD}tasks:
  - { id: build, sh: a }
  - { id: test, sh: b }
  - { id: build, sh: c }
`);
  assert.deepEqual(problem, {
    yamlPath: "tasks[2].id",
    line: 6,
    message: 'duplicate task id "build", already used by tasks[0]',
  });
});

Deno.test("parseEpisode() refuses needs naming unknown tasks, with a suggestion", () => {
  const err = refusal(`${HEAD}tasks:
  - id: build
    sh: a
  - id: test
    sh: b
    needs:
      - biuld
      - nothing-like-it
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message]),
    [
      ["tasks[1].needs[0]", 9, 'unknown task "biuld", did you mean "build"?'],
      ["tasks[1].needs[1]", 10, 'unknown task "nothing-like-it"'],
    ],
  );
});

Deno.test("parseEpisode() names the cycle a -> b -> a with its line", () => {
  const err = refusal(`${HEAD}tasks:
  - id: a
    sh: x
    needs: [b]
  - id: b
    sh: y
    needs: [a]
`);
  assert.equal(
    err.message,
    "episode.yaml: tasks[0].needs[0]: tasks form a cycle a -> b -> a, remove one of these needs (line 6)",
  );
});

Deno.test("parseEpisode() reports every separate cycle, self-needs too, but not tasks waiting on one", () => {
  const err = refusal(`${HEAD}tasks:
  - { id: a, sh: x, needs: [b] }
  - { id: b, sh: x, needs: [c] }
  - { id: c, sh: x, needs: [a] }
  - { id: d, sh: x, needs: [a] }
  - { id: e, sh: x, needs: [e] }
  - { id: f, sh: x, needs: [g] }
  - { id: g, sh: x, needs: [f] }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message.split(",")[0]]),
    [
      ["tasks[0].needs[0]", 4, "tasks form a cycle a -> b -> c -> a"],
      ["tasks[4].needs[0]", 8, "tasks form a cycle e -> e"],
      ["tasks[5].needs[0]", 9, "tasks form a cycle f -> g -> f"],
    ],
  );
});

Deno.test("parseEpisode() refuses an unknown agent, with a suggestion or the declared list", () => {
  const err = refusal(`${HEAD}agents: { writer: {}, reader: {} }
tasks:
  - { id: a, sh: x, agent: writr }
  - { id: b, sh: x, agent: zzz }
`);
  assert.equal(
    problemAt(err, "tasks[0].agent").message,
    'unknown agent "writr", did you mean "writer"?',
  );
  assert.equal(
    problemAt(err, "tasks[1].agent").message,
    'unknown agent "zzz", declared agents: writer, reader',
  );
  assert.equal(
    onlyProblem(`${HEAD}tasks: [{ id: a, sh: x, agent: w }]\n`).message,
    'unknown agent "w", no agents are declared under agents:',
  );
});

Deno.test("parseEpisode() wants exactly one of run and sh, and a non-empty command", () => {
  const err = refusal(`${HEAD}tasks:
  - id: both
    run: [a]
    sh: a
  - id: neither
  - id: empty
    run: []
  - id: blank
    run: ["deno", ""]
  - id: blank-sh
    sh: ""
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line, p.message]),
    [
      [
        "tasks[0]",
        4,
        "has both run and sh, keep one: run takes an argv list, sh a shell line",
      ],
      [
        "tasks[1]",
        7,
        'needs run (an argv list such as ["deno", "run", "x.ts"]) or sh (a shell line)',
      ],
      [
        "tasks[2].run",
        9,
        'must be a non-empty list of strings such as ["deno", "run", "main.ts"], got an empty list',
      ],
      ["tasks[3].run[1]", 11, 'must be a non-empty string, got ""'],
      ["tasks[4].sh", 13, 'must be a non-empty string, got ""'],
    ],
  );
});

Deno.test("parseEpisode() checks strategies, chains and files", () => {
  const err = refusal(`${HEAD}tasks:
  - { id: a, sh: x, strategy: rolback }
  - { id: b, sh: x, strategy: [] }
  - { id: c, sh: x, strategy: [retry, auto] }
  - { id: d, sh: x, files: ["ok", "bad\\0name", 3] }
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.message]),
    [
      [
        "tasks[0].strategy",
        'must be one of retry, rollback, skip, manual, escalate, fail, auto, got "rolback"; did you mean "rollback"?',
      ],
      [
        "tasks[1].strategy",
        "must name at least one strategy, e.g. [retry, rollback, escalate]",
      ],
      [
        "tasks[2].strategy[1]",
        'cannot be part of a chain, write "strategy: auto" alone',
      ],
      ["tasks[3].files[1]", "must not contain a NUL character"],
      ["tasks[3].files[2]", "must be a non-empty string, got 3"],
    ],
  );
});

Deno.test("parseEpisode() refuses environment variable names with = and non-string values", () => {
  const err = refusal(`${HEAD}tasks:
  - id: a
    sh: x
    env:
      "A=B": x
      PORT: 8080
`);
  assert.deepEqual(
    err.problems.map((p) => [p.yamlPath, p.line]),
    [['tasks[0].env["A=B"]', 7], ["tasks[0].env.PORT", 8]],
  );
});

// --- all problems at once ----------------------------------------------------

const MANY_PROBLEMS = `version: 2
episode: ../x
limits:
  maxRecoveryAttempt: 3
  recoveryCooldown: { initial: 5s, max: 60x }
  concurrency: 0
agents:
  writer:
    health: { check: heartbeat, interval: 2s, command: [a] }
tasks:
  - id: a
    needs: [b, zz]
    run: []
  - id: b
    needs: [a]
    sh: x
    run: [y]
    agent: writr
  - id: a
    sh: y
    env: { N: 3 }
    timeout: -1
`;

Deno.test("parseEpisode() collects every problem, sorted by line, into one error", () => {
  const err = refusal(MANY_PROBLEMS);
  assert.equal(err.code, "invalid_config");
  assert.equal(err.problems.length, 15);
  const lines = err.problems.map((p) => p.line!);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
  assert.equal(err.yamlPath, "version");
  assert.equal(err.line, 1);
  const [head, ...rest] = err.message.split("\n");
  assert.equal(head, "episode.yaml: 15 problems");
  assert.equal(rest.length, 15);
  assert.ok(err instanceof SturdyError);
  assert.equal(err.file, "episode.yaml");
  assert.equal(err.path, "episode.yaml");
});

Deno.test("parseEpisode() gives every problem a YAML path and a line", () => {
  const err = refusal(MANY_PROBLEMS);
  for (const [i, problem] of err.problems.entries()) {
    assert.notEqual(problem.yamlPath, "", problem.message);
    assert.equal(typeof problem.line, "number", problem.message);
    assert.equal(
      err.message.split("\n")[i + 1],
      `  ${problem.yamlPath}: ${problem.message} (line ${problem.line})`,
    );
  }
});

Deno.test('parseEpisode() calls unnamed text "episode text" in messages', () => {
  assert.throws(
    () => parseEpisode("version: 1\n", { baseDir: BASE }),
    { message: /^episode text: episode: is required/ },
  );
});

// --- taskOrder ---------------------------------------------------------------

Deno.test("taskOrder() puts needs first and keeps file order otherwise", () => {
  const config = parse(`${HEAD}tasks:
  - { id: deploy, sh: x, needs: [test, build] }
  - { id: lint, sh: x }
  - { id: test, sh: x, needs: [build] }
  - { id: build, sh: x }
  - { id: docs, sh: x }
`);
  assert.deepEqual(taskOrder(config), [
    "lint",
    "build",
    "test",
    "deploy",
    "docs",
  ]);
});

Deno.test("taskOrder() orders a diamond and ignores a need listed twice", () => {
  const config = parse(`${HEAD}tasks:
  - { id: d, sh: x, needs: [b, c, b] }
  - { id: c, sh: x, needs: [a] }
  - { id: b, sh: x, needs: [a] }
  - { id: a, sh: x }
`);
  assert.deepEqual(config.tasks[0]!.needs, ["b", "c"]);
  assert.deepEqual(taskOrder(config), ["a", "c", "b", "d"]);
});

Deno.test("taskOrder() refuses a hand-built config with a cycle or an unknown need", () => {
  assert.throws(
    () =>
      taskOrder({
        tasks: [{ id: "a", needs: ["b"] }, { id: "b", needs: ["a"] }],
      }),
    (err: unknown) => {
      assert.ok(err instanceof EpisodeConfigError);
      assert.match(
        err.message,
        /tasks\[0\]\.needs: tasks form a cycle a -> b -> a/,
      );
      return true;
    },
  );
  assert.throws(() => taskOrder({ tasks: [{ id: "a", needs: ["x"] }] }), {
    message: /tasks\[0\]\.needs\[0\]: unknown task "x"/,
  });
  assert.deepEqual(taskOrder({ tasks: [] }), []);
});

// --- loadEpisode -------------------------------------------------------------

Deno.test("loadEpisode() reads a file, resolves paths against its directory and hashes it", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    const text = `${HEAD}tasks:\n  - { id: a, sh: x, cwd: work }\n`;
    await Deno.writeTextFile(file, text);
    const config = await loadEpisode(file);
    assert.equal(config.file, file);
    assert.equal(config.baseDir, dir);
    assert.equal(config.root, join(dir, ".sturdy"));
    assert.equal(config.tasks[0]!.cwd, join(dir, "work"));
    assert.equal(config.hash, await sha256(text));
  });
});

Deno.test("loadEpisode() drops a byte order mark before parsing", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    await Deno.writeTextFile(file, `\ufeff${HEAD}`);
    assert.equal((await loadEpisode(file)).hash, await sha256(HEAD));
  });
});

Deno.test("loadEpisode() refuses a missing file with code not_found", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "nope.yaml");
    const err = await loadEpisode(file).catch((e) => e);
    assert.ok(err instanceof EpisodeConfigError);
    assert.equal(err.code, "not_found");
    assert.equal(err.file, file);
    assert.deepEqual(err.problems, []);
    assert.equal(
      err.message,
      `Cannot load episode "${file}": no such file; check the path`,
    );
  });
});

Deno.test("loadEpisode() refuses a 10 MB file before parsing it, naming the limit", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    // Valid YAML, so only the size check can refuse it.
    await Deno.writeTextFile(file, `${HEAD}#${"x".repeat(10 * 1024 * 1024)}\n`);
    const started = performance.now();
    const err = await loadEpisode(file).catch((e) => e);
    assert.ok(performance.now() - started < 1_000);
    assert.ok(err instanceof EpisodeConfigError);
    assert.equal(err.code, "too_large");
    assert.match(
      err.message,
      /larger than the limit of 1048576 bytes \(maxBytes\)/,
    );
  });
});

Deno.test("loadEpisode() honours a smaller maxBytes", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    await Deno.writeTextFile(file, HEAD);
    await assert.rejects(loadEpisode(file, { maxBytes: 10 }), {
      code: "too_large",
      message: /limit of 10 bytes/,
    });
    assert.equal((await loadEpisode(file, { maxBytes: 100 })).id, "demo");
  });
});

Deno.test("loadEpisode() names the file in validation and YAML errors", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    await Deno.writeTextFile(file, "version: 1\nepisode: demo\nversion: 1\n");
    const err = await loadEpisode(file).catch((e) => e);
    assert.ok(err instanceof EpisodeConfigError);
    assert.equal(err.code, "yaml_syntax");
    assert.ok(err.message.startsWith(`${file}: version: is a duplicate key`));
    assert.equal(err.line, 3);
  });
});

Deno.test("loadEpisode() refuses a file that is not UTF-8", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "episode.yaml");
    await Deno.writeFile(file, new Uint8Array([0x76, 0xff, 0x0a]));
    const err = await loadEpisode(file).catch((e) => e);
    assert.ok(err instanceof EpisodeConfigError);
    assert.equal(err.code, "invalid_data");
  });
});

// --- errors ------------------------------------------------------------------

Deno.test("EpisodeError carries the caller's code and cause", () => {
  const cause = new Error("boom");
  const err = new EpisodeError('Episode "demo" failed', {
    code: "episode_failed",
    cause,
  });
  assert.ok(err instanceof SturdyError);
  assert.equal(err.name, "EpisodeError");
  assert.equal(err.code, "episode_failed");
  assert.equal(err.cause, cause);
});

Deno.test("EpisodeConfigError defaults to invalid_config and takes the first problem's path and line", () => {
  const err = new EpisodeConfigError("x", {
    problems: [{ yamlPath: "a.b", line: 3, message: "m" }],
  });
  assert.equal(err.code, "invalid_config");
  assert.equal(err.yamlPath, "a.b");
  assert.equal(err.line, 3);
  assert.equal(err.file, undefined);
  assert.ok(Object.isFrozen(err.problems));
});
