/**
 * Starting programs: Bun.spawn, not node:child_process, which costs ~5 ms a spawn in the Bun binary and ~20 ms
 * for the first (the module loads), against ~1 ms. `poc run` starts the monitor and, to clean up, pocrun.
 */
import { UserError, PocError } from './errors.js';

type Stdio = 'inherit' | 'ignore' | 'pipe';

export interface Subprocess {
  readonly pid: number;
  /** For each 'pipe' past stderr, the parent's end: a socket fd, readable and writable. */
  readonly stdio: (number | null | undefined)[];
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** The exit status; 128+n when signal n ended it. */
  readonly exited: Promise<number>;
  kill(signal?: number | string): void;
  /** Lets poc exit while the program runs on. */
  unref(): void;
}

interface BunRuntime {
  spawn(argv: string[], opts: { stdio: Stdio[]; env?: Record<string, string | undefined>; detached?: boolean }): Subprocess;
  file(fd: number): { stream(): ReadableStream<Uint8Array> };
}

function bun(): BunRuntime {
  const runtime = (globalThis as { Bun?: BunRuntime }).Bun;
  if (!runtime) throw new PocError('poc runs as the compiled binary (dist/poc): under Node it cannot start programs');
  return runtime;
}

export interface SpawnOptions {
  stdio: Stdio[];
  env?: NodeJS.ProcessEnv;
  /** In a session of its own: the terminal's signals do not reach it, only those poc passes on. */
  detached?: boolean;
}

/** Starts a program; one that cannot be started (missing, not executable) is a PocError naming it. */
export function spawnProgram(argv: string[], opts: SpawnOptions): Subprocess {
  try {
    return bun().spawn(argv, { stdio: opts.stdio, ...(opts.env ? { env: opts.env } : {}), detached: opts.detached ?? false });
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new PocError(`cannot run ${argv[0]}: ${(err as Error).message}`);
  }
}

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, stdin empty, and collects its output. */
export async function runProgram(argv: string[], env?: NodeJS.ProcessEnv): Promise<ProgramResult> {
  const p = spawnProgram(argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/**
 * The lines a program writes on a socket fd (see `stdio`), as they come; ends when every writer closed it. Read
 * as a stream: Bun hands out the socket non-blocking, and the event loop waits without spending CPU.
 */
export async function* socketLines(fd: number): AsyncGenerator<string> {
  const reader = bun().file(fd).stream().getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        return; // reset by a writer that died
      }
      if (chunk.done) return;
      text += decoder.decode(chunk.value, { stream: true });
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        yield text.slice(0, nl);
        text = text.slice(nl + 1);
      }
    }
  } finally {
    void reader.cancel().catch(() => {});
  }
}
