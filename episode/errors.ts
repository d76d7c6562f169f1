import { SturdyError, type SturdyErrorOptions } from "../retry/mod.ts";

/** One thing wrong with an episode file. */
export interface EpisodeConfigProblem {
  /** Where, as a YAML path such as `tasks[2].needs[0]`; `""` for the whole file. */
  readonly yamlPath: string;
  /** The 1-based line in the file, when known. */
  readonly line?: number;
  /** What is wrong and how to fix it, without the path or line. */
  readonly message: string;
}

/** Fields an {@linkcode EpisodeConfigError} carries besides its message. */
export interface EpisodeConfigErrorOptions {
  /**
   * Stable code: `invalid_config` (the file breaks a rule), `yaml_syntax`
   * (the YAML layer refused it: bad syntax, a duplicate key, an alias),
   * `too_large`, `not_found`, or another code of the read that failed.
   *
   * @default {"invalid_config"}
   */
  code?: string;
  /**
   * The episode file, as it was named to the loader.
   *
   * @default {undefined}
   */
  file?: string;
  /**
   * Every problem found, in the order they appear in the file.
   *
   * @default {[]}
   */
  problems?: readonly EpisodeConfigProblem[];
  /**
   * The underlying error.
   *
   * @default {undefined}
   */
  cause?: unknown;
}

/**
 * An episode file could not be loaded: it is missing, too large, not valid
 * YAML, or breaks one or more rules. Validation reports every problem at
 * once: `problems` lists them and the message has one line per problem,
 * each naming the YAML path and the line.
 *
 * @example Read the problems of a refused file
 * ```ts
 * import { EpisodeConfigError, parseEpisode } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const err = (() => {
 *   try {
 *     parseEpisode("version: 1\nepisode: demo\nlimits:\n  concurrency: 0\n", {
 *       file: "episode.yaml",
 *       baseDir: "/srv/demo",
 *     });
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * assert.ok(err instanceof EpisodeConfigError);
 * assert.equal(err.code, "invalid_config");
 * assert.equal(err.yamlPath, "limits.concurrency");
 * assert.equal(err.line, 4);
 * assert.match(err.message, /^episode\.yaml: limits\.concurrency: /);
 * ```
 */
export class EpisodeConfigError extends SturdyError {
  /** The episode file, when the text came from one. */
  readonly file: string | undefined;
  /** The YAML path of the first problem, when there is one. */
  readonly yamlPath: string | undefined;
  /** The 1-based line of the first problem, when known. */
  readonly line: number | undefined;
  /** Every problem found; empty when the file could not be read at all. */
  readonly problems: readonly EpisodeConfigProblem[];

  /**
   * Creates the error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code, file, problems and cause.
   */
  constructor(message: string, options: EpisodeConfigErrorOptions = {}) {
    super(message, {
      code: options.code ?? "invalid_config",
      ...(options.file !== undefined ? { path: options.file } : {}),
      ...("cause" in options ? { cause: options.cause } : {}),
    });
    this.file = options.file;
    this.problems = Object.freeze([...(options.problems ?? [])]);
    this.yamlPath = this.problems[0]?.yamlPath;
    this.line = this.problems[0]?.line;
  }
}

/**
 * A failure of a running episode. The `code` names what went wrong; the
 * caller chooses it.
 *
 * @example Tell an episode failure by its code
 * ```ts
 * import { EpisodeError } from "@sturdy/sturdy/episode";
 * import assert from "node:assert/strict";
 *
 * const err = new EpisodeError('Episode "demo" is already running', {
 *   code: "episode_locked",
 * });
 * assert.equal(err.code, "episode_locked");
 * assert.equal(err.name, "EpisodeError");
 * ```
 */
export class EpisodeError extends SturdyError {
  /**
   * Creates the error.
   *
   * @param message What failed, where, why, and what to do.
   * @param options The code and optional context.
   */
  constructor(message: string, options: SturdyErrorOptions) {
    super(message, options);
  }
}
