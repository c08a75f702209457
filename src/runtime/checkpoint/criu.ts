/**
 * Finding criu (its RPC for a dump, criu-rpc.ts; its command line for a restore, restore.ts; see README:
 * Architecture) and turning its failures into one message that names the cause: criu missing, `criu check`
 * failing on this kernel, or the error lines of its log.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PocrunError } from '../../errors.js';
import { criuLogErrors } from './plan.js';

/** criu dumps and restores as root only: one clear error before anything else. */
export function needRoot(what: string): void {
  if (process.geteuid?.() !== 0) throw new PocrunError(`${what} needs root: criu cannot checkpoint or restore as an unprivileged user`);
}

/** The criu binary: --criu PATH (runc's global flag), else `criu` on $PATH. (The native front finds the criu it
 * starts for a checkpoint by the same rule: src/native/front/criu.c.) */
export function findCriu(flag: string | undefined): string {
  const candidates = flag ? [flag] : (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).map((d) => join(d, 'criu'));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* next */
    }
  }
  throw new PocrunError(
    flag
      ? `checkpoint/restore needs criu: --criu ${flag} is not an executable`
      : 'checkpoint/restore needs criu (https://criu.org), which is not installed: no criu on $PATH (apt-get install criu, or --criu PATH)',
  );
}

/**
 * What `features` says of checkpoint/restore, as runc's annotation org.opencontainers.runc.checkpoint.enabled:
 * the commands are there; the criu they would run, and its version, or that it is missing. (`criu check` is
 * not run here: it takes seconds; a checkpoint that fails runs it to name the cause.)
 */
export function checkpointFacts(flag: string | undefined): Record<string, string> {
  let criu: string | undefined;
  try {
    criu = findCriu(flag);
  } catch {
    return { 'io.github.pocrun.checkpoint.enabled': 'true', 'io.github.pocrun.checkpoint.criu': 'missing' };
  }
  return {
    'io.github.pocrun.checkpoint.enabled': 'true',
    'io.github.pocrun.checkpoint.criu': `${criu} ${criuVersion(criu) ?? 'does not run'}`,
  };
}

/** `criu --version`'s "Version: 3.17.1", or undefined where criu is missing or does not run. */
export function criuVersion(criu: string): string | undefined {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(criu, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? /Version:\s*(\S+)/.exec(r.stdout)?.[1] : undefined;
}

/**
 * Runs `criu check`, which probes what this kernel offers criu. Called after a failed dump or restore, to tell
 * "criu cannot work here at all" (a kernel criu does not support) from a failure of this container's dump.
 * Returns its complaint, or undefined when it passes.
 */
export function criuCheckProblem(criu: string): string | undefined {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(criu, ['check'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return undefined;
  const text = `${r.stderr ?? ''}\n${r.stdout ?? ''}`;
  const errors = criuLogErrors(text);
  const lines = errors.length ? errors : text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3);
  return lines.join('; ') || `exit status ${r.status ?? r.signal}`;
}

/**
 * The error for a failed criu run: when `criu check` fails too, that is the cause (this host cannot run criu);
 * else the error lines of the run's log, and where the whole log is (when it is kept); else `otherwise`, what is
 * known of the failure without a log (criu's exit status, its RPC answer).
 */
export function criuFailure(criu: string, what: string, otherwise: string, logFile: string, logKept: boolean): PocrunError {
  const check = criuCheckProblem(criu);
  if (check !== undefined) return new PocrunError(`${what}: criu cannot work on this host: "criu check" fails: ${check}`);
  let log = '';
  try {
    log = readFileSync(logFile, 'utf8');
  } catch {
    /* no log: criu failed before it opened one */
  }
  const errors = criuLogErrors(log);
  const detail = errors.length ? errors.join('; ') : otherwise;
  return new PocrunError(`${what}: criu failed: ${detail}${logKept ? ` (log: ${logFile})` : ''}`);
}
