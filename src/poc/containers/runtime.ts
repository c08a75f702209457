/**
 * How poc reaches its programs: pocrun (called as an engine calls runc, with --root under POC_ROOT), the monitor,
 * and poc itself (for the network hooks and the monitor's exit command). All sit beside the running binary.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PocError } from '../errors.js';
import { runProgram, spawnProgram, type ProgramResult, type Subprocess } from '../spawn.js';
import { pocPaths, pocRoot, type RootOptions } from '../poc-root.js';
import { RUN_DIR_ENV } from '../rootless.js';
import { runtimeRoot } from './container-store.js';

function beside(name: string, override: string | undefined): string {
  return override || join(dirname(process.execPath), name);
}

export interface Binaries {
  pocrun: string;
  monitor: string;
  /** The `poc` link: the name it is called by picks the program. */
  poc: string;
}

export function binaries(): Binaries {
  const b = {
    pocrun: beside('pocrun', process.env.POC_RUNTIME),
    monitor: beside('poc-monitor', process.env.POC_MONITOR),
    poc: beside('poc', process.env.POC_BINARY),
  };
  for (const [what, path] of Object.entries(b)) {
    if (!existsSync(path)) throw new PocError(`${what} is missing at ${path}: run "npm run build"`);
  }
  return b;
}

/** The environment for programs poc starts: POC_ROOT fixed, and no POC_PROGRAM (pocrun must stay pocrun). */
export function childEnv(opts: RootOptions = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, POC_ROOT: pocRoot(opts) };
  delete env.POC_PROGRAM;
  // Rootless, the runtime directory goes down by name: in the user namespace the uid is 0, and XDG_RUNTIME_DIR
  // may be unset (the fallback in /tmp is named after the uid).
  const paths = pocPaths(opts);
  if (paths.run !== paths.root) env[RUN_DIR_ENV] = paths.run;
  return env;
}

/** Runs `pocrun --root <POC_ROOT>/runtime ARGS...`. */
export function pocrun(args: string[], opts: RootOptions = {}): Promise<ProgramResult> {
  return runProgram([binaries().pocrun, '--root', runtimeRoot(opts), ...args], childEnv(opts));
}

/** Starts `pocrun --root <POC_ROOT>/runtime ARGS...` with its stdout a pipe, for a command that streams (events). */
export function spawnPocrun(args: string[], opts: RootOptions = {}): Subprocess {
  return spawnProgram([binaries().pocrun, '--root', runtimeRoot(opts), ...args], { stdio: ['ignore', 'pipe', 'ignore'], env: childEnv(opts) });
}

/** As `pocrun`, failing with pocrun's own message. */
export async function pocrunOk(args: string[], opts: RootOptions = {}): Promise<string> {
  const r = await pocrun(args, opts);
  if (r.code !== 0) throw new PocError(r.stderr.trim().replace(/^pocrun: /, '') || `pocrun ${args[0]} failed with status ${r.code}`);
  return r.stdout;
}
