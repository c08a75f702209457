/**
 * `poc compose`'s command line: the project flags before the subcommand (-f, -p, --project-directory,
 * --env-file, --profile, as docker compose takes them), then each subcommand's own flags, checked as a command's
 * are. The work is in src/poc/compose/commands.ts.
 */
import { PocError } from '../poc/errors.js';
import { intFlag, listFlag, parseFlags, splitAtFirstArg, stringFlag, type FlagSpec, type Parsed } from './args.js';
import type { RootOptions } from '../poc/poc-root.js';
import type { ProjectOptions } from '../poc/compose/commands.js';

export const COMPOSE_FLAGS: FlagSpec = {
  string: ['file', 'project-name', 'project-directory', 'env-file', 'profile'],
  alias: { f: 'file', p: 'project-name' },
  repeat: ['file', 'profile'],
};

export const COMPOSE_USAGE =
  'compose [-f FILE]... [-p PROJECT] [--project-directory DIR] [--env-file FILE] [--profile P]... ' +
  'up|down|ps|logs|exec|run|start|stop|restart|scale|pull|build|config [flags] [SERVICE...]';

interface Sub {
  usage: string;
  flags: FlagSpec;
  args: [number, number];
  /** Flags stop at the first argument: the rest is a command line (exec, run). */
  stopEarly?: boolean;
  run: (p: Parsed, project: ProjectOptions) => Promise<number> | number;
}

const m = () => import('../poc/compose/commands.js');
const timeout = (p: Parsed) => (stringFlag(p.flags, 'timeout') !== undefined ? { timeout: intFlag(p.flags, 'timeout', 10) } : {});
const optional = (p: Parsed, flag: string, key: string) => (stringFlag(p.flags, flag) !== undefined ? { [key]: stringFlag(p.flags, flag)! } : {});

function positiveIndex(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new PocError(`compose exec: invalid --index ${JSON.stringify(text)}: a container number, from 1`);
  return Number(text);
}

const SUBCOMMANDS: Record<string, Sub> = {
  up: {
    usage:
      'up [-d] [--build] [--force-recreate] [--no-recreate] [--remove-orphans] [--scale SERVICE=N]... [--wait [--wait-timeout SECS]] ' +
      '[--abort-on-container-exit | --abort-on-container-failure] [--exit-code-from SERVICE] [SERVICE...]',
    flags: {
      string: ['wait-timeout', 'scale', 'exit-code-from'],
      boolean: ['detach', 'build', 'force-recreate', 'no-recreate', 'remove-orphans', 'wait', 'abort-on-container-exit', 'abort-on-container-failure'],
      alias: { d: 'detach' },
      repeat: ['scale'],
    },
    args: [0, Infinity],
    run: async (p, o) => {
      if (p.flags['force-recreate'] && p.flags['no-recreate']) throw new PocError('compose up: --force-recreate and --no-recreate cannot be combined');
      const waitTimeout = stringFlag(p.flags, 'wait-timeout');
      if (waitTimeout !== undefined && !p.flags.wait) throw new PocError('compose up: --wait-timeout needs --wait');
      if (waitTimeout !== undefined && !/^\d+$/.test(waitTimeout)) throw new PocError(`compose up: invalid --wait-timeout ${JSON.stringify(waitTimeout)}: whole seconds (0: no limit)`);
      // As docker compose's validateFlags: --exit-code-from implies --abort-on-container-exit (unless -failure is given).
      const exitCodeFrom = stringFlag(p.flags, 'exit-code-from');
      const onFailure = Boolean(p.flags['abort-on-container-failure']);
      const onExit = Boolean(p.flags['abort-on-container-exit']) || (exitCodeFrom !== undefined && !onFailure);
      if (onExit && onFailure) throw new PocError('compose up: --abort-on-container-failure cannot be combined with --abort-on-container-exit');
      const wait = Boolean(p.flags.wait);
      if (wait && (onExit || onFailure)) throw new PocError('compose up: --wait cannot be combined with --abort-on-container-exit, --abort-on-container-failure or --exit-code-from');
      if (p.flags.detach && (onExit || onFailure)) throw new PocError('compose up: --detach cannot be combined with --abort-on-container-exit, --abort-on-container-failure or --exit-code-from');
      return (await m()).composeUp({
        // --wait implies -d, as docker compose's.
        ...o, services: p.args, detach: wait || Boolean(p.flags.detach), build: Boolean(p.flags.build), forceRecreate: Boolean(p.flags['force-recreate']),
        noRecreate: Boolean(p.flags['no-recreate']), removeOrphans: Boolean(p.flags['remove-orphans']), wait, scale: listFlag(p.flags, 'scale'),
        ...(waitTimeout !== undefined ? { waitTimeout: Number(waitTimeout) } : {}),
        ...(onExit ? { cascade: 'exit' as const } : onFailure ? { cascade: 'failure' as const } : {}),
        ...(exitCodeFrom !== undefined ? { exitCodeFrom } : {}),
      });
    },
  },
  scale: {
    usage: 'scale SERVICE=N...',
    flags: {},
    args: [1, Infinity],
    run: async (p, o) => (await m()).composeScale({ ...o, scale: p.args }),
  },
  down: {
    usage: 'down [-v] [--remove-orphans] [-t SECS]',
    flags: { string: ['timeout'], boolean: ['volumes', 'remove-orphans'], alias: { v: 'volumes', t: 'timeout' } },
    args: [0, 0],
    run: async (p, o) => (await m()).composeDown({ ...o, volumes: Boolean(p.flags.volumes), removeOrphans: Boolean(p.flags['remove-orphans']), ...timeout(p) }),
  },
  ps: {
    usage: 'ps [-a] [-q] [--services] [--format table|json] [SERVICE...]',
    flags: { string: ['format'], boolean: ['all', 'quiet', 'services'], alias: { a: 'all', q: 'quiet' } },
    args: [0, Infinity],
    run: async (p, o) => {
      const format = stringFlag(p.flags, 'format') ?? 'table';
      if (format !== 'table' && format !== 'json') throw new PocError(`compose ps: invalid --format ${JSON.stringify(format)}: use table or json`);
      return (await m()).composePs({ ...o, services: p.args, all: Boolean(p.flags.all), quiet: Boolean(p.flags.quiet), servicesOnly: Boolean(p.flags.services), format });
    },
  },
  logs: {
    usage: 'logs [-f] [-t] [--tail N] [--no-log-prefix] [SERVICE...]',
    flags: { string: ['tail'], boolean: ['follow', 'timestamps', 'no-log-prefix'], alias: { f: 'follow', t: 'timestamps', n: 'tail' } },
    args: [0, Infinity],
    run: async (p, o) => {
      const tail = stringFlag(p.flags, 'tail');
      if (tail !== undefined && tail !== 'all' && !/^\d+$/.test(tail)) throw new PocError(`compose logs: invalid --tail ${JSON.stringify(tail)}: a number or "all"`);
      return (await m()).composeLogs({
        ...o, services: p.args, follow: Boolean(p.flags.follow), timestamps: Boolean(p.flags.timestamps), noLogPrefix: Boolean(p.flags['no-log-prefix']),
        ...(tail !== undefined && tail !== 'all' ? { tail: Number(tail) } : {}),
      });
    },
  },
  exec: {
    usage: 'exec [-d] [-T] [--index N] [-e K=V]... [-u USER] [-w DIR] SERVICE CMD...',
    flags: { string: ['env', 'user', 'workdir', 'index'], boolean: ['detach', 'no-TTY', 'interactive', 'tty'], alias: { d: 'detach', T: 'no-TTY', e: 'env', u: 'user', w: 'workdir', i: 'interactive', t: 'tty' }, repeat: ['env'] },
    args: [2, Infinity],
    stopEarly: true,
    run: async (p, o) => (await m()).composeExec({
      ...o, service: p.args[0]!, command: p.args.slice(1), detach: Boolean(p.flags.detach), noTty: Boolean(p.flags['no-TTY']), env: listFlag(p.flags, 'env'),
      ...optional(p, 'user', 'user'), ...optional(p, 'workdir', 'workdir'),
      ...(stringFlag(p.flags, 'index') !== undefined ? { index: positiveIndex(stringFlag(p.flags, 'index')!) } : {}),
    }),
  },
  run: {
    usage: 'run [--rm] [-d] [-T] [--no-deps] [--service-ports] [--name N] [-e K=V]... [-u USER] [-w DIR] [--entrypoint E] SERVICE [CMD...]',
    flags: {
      string: ['env', 'user', 'workdir', 'name', 'entrypoint'],
      boolean: ['rm', 'detach', 'no-TTY', 'no-deps', 'service-ports', 'interactive', 'tty'],
      alias: { d: 'detach', T: 'no-TTY', e: 'env', u: 'user', w: 'workdir', i: 'interactive', t: 'tty' },
      repeat: ['env'],
    },
    args: [1, Infinity],
    stopEarly: true,
    run: async (p, o) => (await m()).composeRun({
      ...o, service: p.args[0]!, command: p.args.slice(1), rm: Boolean(p.flags.rm), detach: Boolean(p.flags.detach), noDeps: Boolean(p.flags['no-deps']),
      noTty: Boolean(p.flags['no-TTY']), servicePorts: Boolean(p.flags['service-ports']), env: listFlag(p.flags, 'env'),
      ...optional(p, 'name', 'name'), ...optional(p, 'user', 'user'), ...optional(p, 'workdir', 'workdir'),
      ...(p.flags.entrypoint !== undefined ? { entrypoint: String(p.flags.entrypoint) } : {}),
    }),
  },
  start: { usage: 'start [SERVICE...]', flags: {}, args: [0, Infinity], run: async (p, o) => (await m()).composeStart({ ...o, services: p.args }) },
  stop: {
    usage: 'stop [-t SECS] [SERVICE...]',
    flags: { string: ['timeout'], alias: { t: 'timeout' } },
    args: [0, Infinity],
    run: async (p, o) => (await m()).composeStop({ ...o, services: p.args, ...timeout(p) }),
  },
  restart: {
    usage: 'restart [-t SECS] [SERVICE...]',
    flags: { string: ['timeout'], alias: { t: 'timeout' } },
    args: [0, Infinity],
    run: async (p, o) => (await m()).composeRestart({ ...o, services: p.args, ...timeout(p) }),
  },
  pull: {
    usage: 'pull [--ignore-buildable] [SERVICE...]',
    flags: { boolean: ['ignore-buildable', 'quiet'], alias: { q: 'quiet' } },
    args: [0, Infinity],
    run: async (p, o) => (await m()).composePull({ ...o, services: p.args, ignoreBuildable: Boolean(p.flags['ignore-buildable']) }),
  },
  build: { usage: 'build [SERVICE...]', flags: {}, args: [0, Infinity], run: async (p, o) => (await m()).composeBuild({ ...o, services: p.args }) },
  config: {
    usage: 'config [-q] [--services] [--volumes]',
    flags: { boolean: ['quiet', 'services', 'volumes'], alias: { q: 'quiet' } },
    args: [0, 0],
    run: async (p, o) => (await m()).composeConfig({ ...o, quiet: Boolean(p.flags.quiet), servicesOnly: Boolean(p.flags.services), volumesOnly: Boolean(p.flags.volumes) }),
  },
};

/** `poc compose ...`: `global` holds the project flags parsed before the subcommand. */
export async function composeCommand(global: Parsed, root: RootOptions): Promise<number> {
  const [sub, ...argv] = global.args;
  const def = SUBCOMMANDS[sub!];
  if (!def) throw new PocError(`compose: unknown command ${JSON.stringify(sub)}: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  const where = `compose ${sub}`;
  let p: Parsed;
  const spec = { ...def.flags, boolean: [...(def.flags.boolean ?? []), 'help'] };
  if (def.stopEarly) {
    const [flagArgs, positional] = splitAtFirstArg(argv, spec);
    p = parseFlags(flagArgs, spec, where);
    p.args = [...p.args, ...positional];
  } else p = parseFlags(argv, spec, where);
  if (p.flags.help) {
    const { stdout } = await import('../common/output.js');
    stdout(`Usage: poc compose ${def.usage}\n`);
    return 0;
  }
  const [min, max] = def.args;
  if (p.args.length < min) throw new PocError(`${where}: missing argument; usage: poc compose ${def.usage}`);
  if (p.args.length > max) throw new PocError(`${where}: unexpected argument ${JSON.stringify(p.args[max])}; usage: poc compose ${def.usage}`);
  const project: ProjectOptions = {
    ...root,
    files: listFlag(global.flags, 'file'),
    profiles: listFlag(global.flags, 'profile'),
    ...optional(global, 'project-name', 'projectName'),
    ...optional(global, 'project-directory', 'projectDirectory'),
    ...optional(global, 'env-file', 'envFile'),
  };
  return def.run(p, project);
}
