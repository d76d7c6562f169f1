// Safe YAML parsing for episode files, with a map from YAML paths to lines.
//
// The text is parsed once into js-yaml's flat event stream; the same events
// build the value (duplicate keys refused, aliases refused) and, only when
// a problem needs a line number, an index from each path to its offsets.

import {
  constructFromEvents,
  type Event,
  EVENT_ID,
  getScalarValue,
  parseEvents,
  YAMLException,
} from "js-yaml";
import { configError, problem } from "./_problems.ts";

/** One step of a YAML path: a mapping key or a sequence index. */
export type PathSegment = string | number;

/** The deepest nesting accepted; an episode file needs about five levels. */
const MAX_DEPTH = 32;

/** A parsed episode file: its value and where each path sits in the text. */
export interface YamlSource {
  /** The document's value; `undefined` for an empty file. */
  readonly value: unknown;
  /**
   * The 1-based line of the node at `path`, or of its nearest ancestor in
   * the text when the node is absent (a missing key), or 1 for an empty
   * document. `at: "key"` asks for the line of the mapping key rather than
   * of its value.
   */
  line(path: readonly PathSegment[], at?: "key" | "value"): number;
}

/**
 * Renders a path the way people write it: `tasks[2].needs[0]`,
 * `agents["my.agent"].health`. Keys that are not plain words are quoted.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) {
      out += out === "" ? segment : `.${segment}`;
    } else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * Parses one YAML document. Every error the YAML layer raises (bad syntax,
 * a duplicate key, an alias, nesting deeper than 32, several documents)
 * becomes an `EpisodeConfigError` with code `yaml_syntax` and a line.
 */
export function parseYaml(text: string, file: string | undefined): YamlSource {
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth: MAX_DEPTH });
  } catch (err) {
    throw yamlError(err, file, undefined);
  }
  let index: LocationIndex | undefined;
  const located = () => index ??= new LocationIndex(text, events);
  let documents: unknown[];
  try {
    // Aliases are refused outright: even a small cap lets a "billion laughs"
    // document expand exponentially in whatever walks the value later.
    documents = constructFromEvents(events, {
      source: text,
      maxAliases: 0,
      json: false, // duplicate keys are errors
    });
  } catch (err) {
    throw yamlError(err, file, located());
  }
  if (documents.length > 1) {
    throw configError(file, [problem(
      "",
      `holds ${documents.length} YAML documents, an episode file holds one; remove the "---" separator`,
      located().secondDocumentLine(),
    )], "yaml_syntax");
  }
  const value = documents[0];
  return {
    value,
    line: (path, at = "value") => located().line(path, at),
  };
}

function yamlError(
  err: unknown,
  file: string | undefined,
  index: LocationIndex | undefined,
): Error {
  if (!(err instanceof YAMLException)) {
    const reason = err instanceof Error ? err.message : String(err);
    return configError(
      file,
      [problem("", `is not valid YAML: ${reason}`, undefined)],
      "yaml_syntax",
      err,
    );
  }
  const mark = err.mark;
  let path = mark && index ? index.pathAt(mark.position) : "";
  let line = mark ? mark.line + 1 : undefined;
  const reason = err.reason;
  let message: string;
  if (reason.includes("complex keys") && index?.complexKey) {
    // js-yaml marks the start of the file here; point at the key instead.
    ({ path, line } = index.complexKey);
    message =
      "has a key that is a list or a mapping, keys must be plain strings";
  } else if (reason.startsWith("duplicated mapping key")) {
    message = "is a duplicate key, each key may appear only once";
  } else if (reason.startsWith("aliases exceeded")) {
    message =
      "is an alias (*name), aliases are not allowed in an episode file; write the value out instead";
  } else if (reason.startsWith("nesting exceeded")) {
    message = `is nested more than ${MAX_DEPTH} levels deep`;
  } else if (mark) {
    message = `is not valid YAML: ${reason} at column ${mark.column + 1}`;
  } else {
    message = `is not valid YAML: ${reason}`;
  }
  return configError(
    file,
    [problem(path, message, line)],
    "yaml_syntax",
    err,
  );
}

interface Location {
  key: number | undefined;
  value: number;
}

/** Offsets of every path in the first document, built from the events. */
class LocationIndex {
  readonly #text: string;
  readonly #events: Event[];
  readonly #lineStarts: number[] = [0];
  readonly #byPath = new Map<string, Location>();
  #next = 0;
  #complexKey: { path: string; line: number } | undefined;

  constructor(text: string, events: Event[]) {
    this.#text = text;
    this.#events = events;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
      this.#lineStarts.push(i + 1);
    }
    if (events[0]?.type === EVENT_ID.DOCUMENT) {
      this.#next = 1;
      if (this.#events[1] && this.#events[1].type !== EVENT_ID.POP) {
        this.#walk([], undefined);
      }
    }
  }

  line(path: readonly PathSegment[], at: "key" | "value"): number {
    for (let n = path.length; n >= 0; n--) {
      const found = this.#byPath.get(formatPath(path.slice(0, n)));
      if (found === undefined) continue;
      const offset =
        at === "key" && n === path.length && found.key !== undefined
          ? found.key
          : found.value;
      return this.#lineOf(offset);
    }
    return 1; // an empty document: the problem is the whole file
  }

  /** The first mapping key that is a list or a mapping, if any. */
  get complexKey(): { path: string; line: number } | undefined {
    return this.#complexKey;
  }

  /** The path whose key or value starts last at or before `position`. */
  pathAt(position: number): string {
    let best = -1;
    let bestPath = "";
    for (const [path, { key, value }] of this.#byPath) {
      for (const offset of [key, value]) {
        if (offset !== undefined && offset <= position && offset > best) {
          best = offset;
          bestPath = path;
        }
      }
    }
    return bestPath;
  }

  secondDocumentLine(): number | undefined {
    let documents = 0;
    for (const event of this.#events) {
      if (event.type === EVENT_ID.DOCUMENT) documents++;
      else if (documents === 2) {
        const offset = startOf(event);
        if (offset >= 0) return this.#lineOf(offset);
      }
    }
    return undefined;
  }

  #lineOf(offset: number): number {
    let low = 0;
    let high = this.#lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }

  /** Records the node at `#next` and its children, then moves past it. */
  #walk(path: PathSegment[], keyOffset: number | undefined): void {
    const event = this.#events[this.#next++];
    if (event === undefined) return;
    const own = startOf(event);
    // An empty scalar (`key:` with nothing after it) has no offset of its own.
    this.#byPath.set(formatPath(path), {
      key: keyOffset,
      value: own >= 0 ? own : keyOffset ?? 0,
    });
    if (event.type === EVENT_ID.MAPPING) {
      while (this.#peekIsNode()) {
        const keyEvent = this.#events[this.#next]!;
        const key = keyEvent.type === EVENT_ID.SCALAR
          ? getScalarValue(this.#text, keyEvent)
          : "?";
        const offset = startOf(keyEvent);
        if (keyEvent.type !== EVENT_ID.SCALAR && offset >= 0) {
          this.#complexKey ??= {
            path: formatPath(path),
            line: this.#lineOf(offset),
          };
        }
        this.#skip();
        if (!this.#peekIsNode()) break;
        this.#walk([...path, key], offset >= 0 ? offset : undefined);
      }
      this.#next++; // the mapping's POP
    } else if (event.type === EVENT_ID.SEQUENCE) {
      for (let i = 0; this.#peekIsNode(); i++) {
        this.#walk([...path, i], undefined);
      }
      this.#next++; // the sequence's POP
    }
  }

  #peekIsNode(): boolean {
    const event = this.#events[this.#next];
    return event !== undefined && event.type !== EVENT_ID.POP &&
      event.type !== EVENT_ID.DOCUMENT;
  }

  /** Moves past one node without recording it (a mapping key). */
  #skip(): void {
    let depth = 0;
    do {
      const event = this.#events[this.#next++];
      if (event === undefined) return;
      if (
        event.type === EVENT_ID.MAPPING || event.type === EVENT_ID.SEQUENCE
      ) depth++;
      else if (event.type === EVENT_ID.POP) depth--;
    } while (depth > 0);
  }
}

/** Where a node begins in the text (its anchor or tag, if any), or -1. */
function startOf(event: Event): number {
  switch (event.type) {
    case EVENT_ID.SCALAR:
      return earliest(
        event.valueStart,
        event.tagStart,
        event.anchorStart < 0 ? -1 : event.anchorStart - 1,
      );
    case EVENT_ID.MAPPING:
    case EVENT_ID.SEQUENCE:
      return earliest(
        event.start,
        event.tagStart,
        event.anchorStart < 0 ? -1 : event.anchorStart - 1,
      );
    case EVENT_ID.ALIAS:
      return event.anchorStart - 1;
    default:
      return -1;
  }
}

function earliest(...offsets: number[]): number {
  const present = offsets.filter((offset) => offset >= 0);
  return present.length === 0 ? -1 : Math.min(...present);
}
