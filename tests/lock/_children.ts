// Starts _holder_child.ts processes and collects their events.

const CHILD = new URL("./_holder_child.ts", import.meta.url).pathname;

/** One JSON event from a child. */
export interface ChildEvent {
  ev: string;
  pid: number;
  t: number;
  fence?: number;
  value?: number;
  reason?: string;
  aborted?: boolean | null;
  compromised?: boolean | null;
  code?: string;
  message?: string;
  token?: string;
}

/** What a child is configured with. */
export interface ChildConfig {
  root: string;
  name: string;
  ttl?: number;
  heartbeat?: number;
  host?: string;
  kind?: "dir" | "flock";
}

interface Waiter {
  test: (e: ChildEvent) => boolean;
  resolve: (e: ChildEvent) => void;
  reject: (err: Error) => void;
  from: number;
}

/** A running holder process. */
export class Holder {
  readonly events: ChildEvent[] = [];
  readonly pid: number;
  stderr = "";
  readonly #proc: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  readonly #readingErr: Promise<void>;
  #waiters: Waiter[] = [];
  #status: Promise<Deno.CommandStatus>;
  onEvent?: (e: ChildEvent) => void;

  constructor(config: ChildConfig) {
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        "--allow-sys",
        CHILD,
        JSON.stringify(config),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.pid = this.#proc.pid;
    this.#writer = this.#proc.stdin.getWriter();
    this.#status = this.#proc.status;
    this.#reading = this.#read().finally(() => {
      // Nothing more will come: fail whoever still waits.
      for (const w of this.#waiters) {
        w.reject(new Error(`child ${this.pid} ended; stderr ${this.stderr}`));
      }
      this.#waiters = [];
    });
    const stderr = this.#proc.stderr;
    this.#readingErr = (async () => {
      for await (const chunk of stderr.pipeThrough(new TextDecoderStream())) {
        this.stderr += chunk;
      }
    })();
  }

  async #read(): Promise<void> {
    let buffer = "";
    for await (
      const chunk of this.#proc.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        const event = JSON.parse(line) as ChildEvent;
        this.events.push(event);
        this.onEvent?.(event);
        const index = this.events.length - 1;
        this.#waiters = this.#waiters.filter((w) => {
          if (index >= w.from && w.test(event)) {
            w.resolve(event);
            return false;
          }
          return true;
        });
      }
    }
  }

  /** Sends one command line. */
  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /**
   * The first event named `ev` at or after event index `from` (default:
   * any seen so far counts).
   */
  next(
    ev: string | string[],
    timeoutMs = 20_000,
    from = 0,
  ): Promise<ChildEvent> {
    const names = typeof ev === "string" ? [ev] : ev;
    const test = (e: ChildEvent) => names.includes(e.ev);
    const seen = this.events.slice(from).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `child ${this.pid}: no "${ev}" within ${timeoutMs}ms; events ${
              JSON.stringify(this.events.slice(-5))
            }; stderr ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      const done = (e: ChildEvent) => {
        clearTimeout(timer);
        resolve(e);
      };
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      this.#waiters.push({ test, resolve: done, reject: fail, from });
    });
  }

  /** Sends a signal. */
  kill(signal: Deno.Signal): void {
    this.#proc.kill(signal);
  }

  /** Waits for the process to end (reaped, so its pid is gone). */
  status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /** Ends the child (exit command, then SIGKILL) and frees everything. */
  async close(): Promise<void> {
    await this.send("exit").catch(() => {});
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5_000);
    await this.#status;
    clearTimeout(timer);
    await this.#reading;
    await this.#readingErr;
  }
}

/** Closes every holder, whatever happens. */
export async function closeAll(holders: Holder[]): Promise<void> {
  await Promise.all(holders.map((h) => h.close()));
}
