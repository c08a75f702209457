import { trace } from '../runtime/trace.js';
import { stdout, stderr } from '../common/output.js';
import { PocrunError } from '../errors.js';
import { RuntimeContext, type LogFormat } from '../runtime/context.js';
import { defaultRoot, euid, parseRootlessFlag, rootlessMode, runningInUserNs } from '../runtime/rootless.js';
import { OCI_VERSION } from '../spec/default.js';
import { helpOrCheckArgs, intFlag, listFlag, parseFlags, splitAtFirstArg, stringFlag, type CommandShape, type FlagSpec, type Parsed } from './args.js';
import { reportError } from './report.js';
import { startCgroupMoveGracePeriod } from '../runtime/init-helper.js';
import { VERSION, COMMIT } from '../spec/generated/version.js';

interface Command extends CommandShape {
  flags: FlagSpec;
  /** Flags end at the first argument: what follows it is a command line of its own (exec, ps). */
  passThrough?: boolean;
  run: (ctx: RuntimeContext, p: Parsed) => Promise<number | void> | number | void;
  /** The exit status of the command's own failures, when not 1 (exec: 255). */
  failureStatus?: number;
  /** Not listed by --help: run by pocrun itself. */
  hidden?: boolean;
}

const CREATE_FLAGS: FlagSpec = {
  string: ['bundle', 'pid-file', 'console-socket', 'preserve-fds'],
  boolean: ['no-pivot', 'no-new-keyring'],
  alias: { b: 'bundle' },
};

function createOptions(p: Parsed) {
  return {
    id: p.args[0]!,
    bundle: stringFlag(p.flags, 'bundle') ?? '.',
    pidFile: stringFlag(p.flags, 'pid-file'),
    consoleSocket: stringFlag(p.flags, 'console-socket'),
    noPivot: Boolean(p.flags['no-pivot']),
    noNewKeyring: Boolean(p.flags['no-new-keyring']),
    preserveFds: intFlag(p.flags, 'preserve-fds', 0),
  };
}

/** Each command loads its module when it runs: `state` and `kill` never pay for the validators. */
const COMMANDS: Record<string, Command> = {
  create: {
    usage: 'create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID',
    summary: 'create a container from a bundle, leaving its process waiting for start',
    flags: CREATE_FLAGS,
    args: [1, 1],
    run: async (ctx, p) => {
      startCgroupMoveGracePeriod(ctx.cgroups(), { create: true });
      const { createContainer } = await import('../runtime/create-container.js');
      await createContainer(ctx, { ...createOptions(p), mode: 'detach' });
    },
  },
  run: {
    usage: 'run [create flags] [--detach] [--keep] [--no-subreaper] ID',
    summary: 'create and start a container; without --detach wait for it, delete it (unless --keep) and exit with ' +
      'its status. --no-subreaper is accepted as runc takes it: pocrun run uses no subreaper, the helper is the ' +
      "init's parent",
    flags: { ...CREATE_FLAGS, boolean: [...CREATE_FLAGS.boolean!, 'detach', 'keep', 'no-subreaper'], alias: { ...CREATE_FLAGS.alias, d: 'detach' } },
    args: [1, 1],
    run: async (ctx, p) => {
      startCgroupMoveGracePeriod(ctx.cgroups(), { create: true });
      const { runContainer } = await import('../runtime/run.js');
      return runContainer(ctx, { ...createOptions(p), detach: Boolean(p.flags.detach), keep: Boolean(p.flags.keep) });
    },
  },
  start: {
    usage: 'start ID',
    summary: 'start the process of a created container',
    flags: {},
    args: [1, 1],
    run: async (ctx, p) => (await import('../runtime/start.js')).startContainer(ctx, p.args[0]!),
  },
  state: {
    usage: 'state ID',
    summary: 'print the state of a container as JSON',
    flags: {},
    args: [1, 1],
    run: async (ctx, p) => {
      const { containerState } = await import('../runtime/state.js');
      stdout(`${JSON.stringify(containerState(ctx, p.args[0]!), null, '  ')}\n`);
    },
  },
  kill: {
    usage: 'kill [--all] ID [SIGNAL]',
    summary: 'send a signal (default SIGTERM) to the container init, or with --all to all its processes',
    flags: { boolean: ['all'], alias: { a: 'all' } },
    args: [1, 2],
    run: async (ctx, p) =>
      (await import('../runtime/kill.js')).killContainer(ctx, { id: p.args[0]!, signal: p.args[1] ?? 'SIGTERM', all: Boolean(p.flags.all) }),
  },
  delete: {
    usage: 'delete [--force] ID',
    summary: 'delete a stopped container; --force kills a running one first',
    flags: { boolean: ['force'], alias: { f: 'force' } },
    args: [1, 1],
    run: async (ctx, p) => (await import('../runtime/delete.js')).deleteContainer(ctx, { id: p.args[0]!, force: Boolean(p.flags.force) }),
  },
  list: {
    usage: 'list [--format table|json] [--quiet]',
    summary: 'list the containers under --root',
    flags: { string: ['format'], boolean: ['quiet'], alias: { f: 'format', q: 'quiet' } },
    args: [0, 0],
    run: async (ctx, p) => {
      const format = stringFlag(p.flags, 'format') ?? 'table';
      if (format !== 'table' && format !== 'json') throw new PocrunError(`list: invalid --format ${JSON.stringify(format)}: use table or json`);
      const { listContainers } = await import('../runtime/list.js');
      stdout(listContainers(ctx, { format, quiet: Boolean(p.flags.quiet) }));
    },
  },
  exec: {
    usage:
      'exec [--process FILE] [--tty] [--console-socket SOCK] [--detach] [--pid-file FILE] [--cwd DIR] [--env K=V]... ' +
      '[--user UID[:GID]] [--additional-gids GID]... [--cap CAP]... [--no-new-privs] [--preserve-fds N] ' +
      '[--cgroup [CONTROLLER:]PATH]... [--ignore-paused] ID [COMMAND [ARG...]]',
    summary: 'run a new process in a running container; without --detach wait for it and exit with its status',
    flags: {
      string: ['process', 'console-socket', 'pid-file', 'cwd', 'env', 'user', 'additional-gids', 'cap', 'preserve-fds', 'apparmor', 'process-label', 'cgroup'],
      boolean: ['tty', 'detach', 'no-new-privs', 'ignore-paused'],
      alias: { p: 'process', t: 'tty', d: 'detach', e: 'env', u: 'user', c: 'cap', g: 'additional-gids' },
      repeat: ['env', 'cap', 'additional-gids', 'cgroup'],
    },
    args: [1, Infinity],
    passThrough: true,
    // As runc: exec's own failures exit 255, which a process's status is not taken for (CRI-O returns a
    // foreground exec's exit status as the process's).
    failureStatus: 255,
    run: async (ctx, p) => {
      startCgroupMoveGracePeriod(ctx.cgroups());
      const { execInContainer } = await import('../runtime/exec.js');
      const args = p.args.slice(1);
      if (args[0] === '--') args.shift();
      return execInContainer(ctx, {
        id: p.args[0]!,
        args,
        processFile: stringFlag(p.flags, 'process'),
        tty: Boolean(p.flags.tty),
        consoleSocket: stringFlag(p.flags, 'console-socket'),
        detach: Boolean(p.flags.detach),
        pidFile: stringFlag(p.flags, 'pid-file'),
        cwd: stringFlag(p.flags, 'cwd'),
        env: listFlag(p.flags, 'env'),
        user: stringFlag(p.flags, 'user'),
        additionalGids: listFlag(p.flags, 'additional-gids').flatMap((g) => g.split(',')),
        caps: listFlag(p.flags, 'cap'),
        noNewPrivs: Boolean(p.flags['no-new-privs']),
        preserveFds: intFlag(p.flags, 'preserve-fds', 0),
        apparmor: stringFlag(p.flags, 'apparmor'),
        processLabel: stringFlag(p.flags, 'process-label'),
        cgroups: listFlag(p.flags, 'cgroup'),
        ignorePaused: Boolean(p.flags['ignore-paused']),
      });
    },
  },
  pause: {
    usage: 'pause ID',
    summary: 'freeze every process of a container',
    flags: {},
    args: [1, 1],
    run: async (ctx, p) => (await import('../runtime/pause.js')).pauseContainer(ctx, p.args[0]!),
  },
  resume: {
    usage: 'resume ID',
    summary: 'thaw a paused container',
    flags: {},
    args: [1, 1],
    run: async (ctx, p) => (await import('../runtime/pause.js')).resumeContainer(ctx, p.args[0]!),
  },
  update: {
    usage:
      'update [--resources FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--cpu-shares N] [--cpu-quota N] ' +
      '[--cpu-period N] [--cpuset-cpus S] [--cpuset-mems S] [--pids-limit N] [--blkio-weight N] ID',
    summary: "change a container's cgroup resource limits",
    flags: {
      string: [
        'resources', 'memory', 'memory-swap', 'memory-reservation', 'kernel-memory', 'kernel-memory-tcp', 'cpu-shares', 'cpu-share',
        'cpu-quota', 'cpu-period', 'cpu-burst', 'cpu-rt-period', 'cpu-rt-runtime', 'cpu-idle', 'cpuset-cpus', 'cpuset-mems',
        'pids-limit', 'blkio-weight',
      ],
      alias: { r: 'resources' },
    },
    args: [1, 1],
    run: async (ctx, p) => {
      const { updateContainer } = await import('../runtime/update.js');
      const flags = Object.fromEntries(Object.entries(p.flags).filter(([k, v]) => k !== '_' && k.length > 1 && typeof v === 'string'));
      if (flags['cpu-share'] !== undefined) flags['cpu-shares'] ??= flags['cpu-share'];
      updateContainer(ctx, p.args[0]!, flags);
    },
  },
  events: {
    usage: 'events [--stats] [--interval DURATION] ID',
    summary: "print the container's resource usage as JSON: once with --stats, else every interval (default 5s)",
    flags: { string: ['interval'], boolean: ['stats'] },
    args: [1, 1],
    run: async (ctx, p) => {
      const { containerEvents, parseDuration } = await import('../runtime/events.js');
      const intervalMs = parseDuration(stringFlag(p.flags, 'interval') ?? '5s');
      if (!(intervalMs > 0)) throw new PocrunError('events: --interval must be greater than 0');
      await containerEvents(ctx, { id: p.args[0]!, stats: Boolean(p.flags.stats), intervalMs });
    },
  },
  ps: {
    usage: 'ps [--format table|json] ID [-- PS-ARGS...]',
    summary: "list the container's processes: host pids as JSON, or ps(1) output (default ps -ef) for them",
    flags: { string: ['format'], alias: { f: 'format' } },
    args: [1, Infinity],
    passThrough: true,
    run: async (ctx, p) => {
      const format = stringFlag(p.flags, 'format') ?? 'table';
      if (format !== 'table' && format !== 'json') throw new PocrunError(`ps: invalid --format ${JSON.stringify(format)}: use table or json`);
      const psArgs = p.args.slice(1);
      if (psArgs[0] === '--') psArgs.shift();
      const { psContainer } = await import('../runtime/ps.js');
      stdout(psContainer(ctx, { id: p.args[0]!, format, psArgs }));
    },
  },
  checkpoint: {
    usage:
      'checkpoint [--image-path DIR] [--work-path DIR] [--parent-path DIR] [--leave-running] [--pre-dump] [--tcp-established] ' +
      '[--ext-unix-sk] [--shell-job] [--file-locks] [--manage-cgroups-mode soft|full|strict|ignore] [--empty-ns network] [--auto-dedup] ID',
    summary: 'checkpoint a running container with criu into --image-path (default ./checkpoint); it is deleted unless --leave-running or --pre-dump',
    flags: {
      string: ['image-path', 'work-path', 'parent-path', 'manage-cgroups-mode', 'empty-ns', 'page-server', 'status-fd'],
      boolean: ['leave-running', 'pre-dump', 'tcp-established', 'ext-unix-sk', 'shell-job', 'file-locks', 'auto-dedup', 'lazy-pages', 'tcp-skip-in-flight', 'link-remap'],
      repeat: ['empty-ns'],
    },
    args: [1, 1],
    run: async (ctx, p) => {
      unsupportedCriuFlags(p, ['page-server', 'status-fd', 'lazy-pages', 'tcp-skip-in-flight', 'link-remap']);
      trace('command line');
      const { checkpointContainer } = await import('../runtime/checkpoint/checkpoint.js');
      checkpointContainer(ctx, {
        ...criuFlags(p),
        id: p.args[0]!,
        imagePath: stringFlag(p.flags, 'image-path'),
        workPath: stringFlag(p.flags, 'work-path'),
        parentPath: stringFlag(p.flags, 'parent-path'),
        leaveRunning: Boolean(p.flags['leave-running']),
        preDump: Boolean(p.flags['pre-dump']),
      });
    },
  },
  restore: {
    usage:
      'restore [--bundle DIR] [--image-path DIR] [--work-path DIR] [--detach] [--pid-file FILE] [--tcp-established] [--ext-unix-sk] ' +
      '[--shell-job] [--file-locks] [--manage-cgroups-mode MODE] [--empty-ns network] [--auto-dedup] [--no-pivot] [--no-subreaper] ID',
    summary: 'restore a container from a checkpoint as ID; without --detach wait for it, delete it and exit',
    flags: {
      string: ['bundle', 'image-path', 'work-path', 'pid-file', 'console-socket', 'manage-cgroups-mode', 'empty-ns', 'lsm-profile', 'lsm-mount-context'],
      boolean: ['detach', 'tcp-established', 'ext-unix-sk', 'shell-job', 'file-locks', 'auto-dedup', 'no-pivot', 'no-subreaper', 'lazy-pages'],
      alias: { b: 'bundle', d: 'detach' },
      repeat: ['empty-ns'],
    },
    args: [1, 1],
    run: async (ctx, p) => {
      unsupportedCriuFlags(p, ['lazy-pages', 'lsm-profile', 'lsm-mount-context']);
      const { restoreContainer } = await import('../runtime/checkpoint/restore.js');
      // --no-pivot and --no-subreaper change nothing here: criu restores the mount namespace itself, and the
      // restored init is adopted by the caller's subreaper (detached) or criu (in the foreground).
      return restoreContainer(ctx, {
        ...criuFlags(p),
        id: p.args[0]!,
        bundle: stringFlag(p.flags, 'bundle') ?? '.',
        imagePath: stringFlag(p.flags, 'image-path'),
        workPath: stringFlag(p.flags, 'work-path'),
        detach: Boolean(p.flags.detach),
        pidFile: stringFlag(p.flags, 'pid-file'),
        consoleSocket: stringFlag(p.flags, 'console-socket'),
      });
    },
  },
  'restore-hooks': {
    usage: 'restore-hooks ID PID',
    summary: "internal: criu's action script runs it to run the prestart and createRuntime hooks during restore",
    flags: {},
    args: [2, 2],
    hidden: true,
    run: async (ctx, p) => (await import('../runtime/checkpoint/restore.js')).runRestoreHooks(ctx, p.args[0]!, Number(p.args[1])),
  },
  features: {
    usage: 'features',
    summary: 'print what this runtime supports, as JSON (features-schema.json)',
    flags: {},
    args: [0, 0],
    run: async (ctx) => {
      const { features, knownSeccompArchs, seccompFeatures } = await import('../runtime/features.js');
      const { hostCgroupFacts } = await import('../cgroups/host-facts.js');
      let cgroups: Record<string, string> = {};
      try {
        cgroups = hostCgroupFacts(ctx.cgroups());
      } catch {
        // no cgroups mounted: nothing to say about them
      }
      const { checkpointFacts } = await import('../runtime/checkpoint/criu.js');
      const report = features(seccompFeatures(undefined, knownSeccompArchs()), cgroups);
      Object.assign(report.annotations as Record<string, string>, checkpointFacts(ctx.criuPath));
      stdout(`${JSON.stringify(report, null, '    ')}\n`);
    },
  },
  spec: {
    usage: 'spec [--bundle DIR] [--rootless]',
    summary: "write a default config.json into the bundle; --rootless: for an unprivileged user (a user namespace mapping the caller's uid and gid to root, no network namespace, /sys bound, no resources), as runc spec --rootless",
    flags: { string: ['bundle'], boolean: ['rootless'], alias: { b: 'bundle' } },
    args: [0, 0],
    run: async (_ctx, p) => (await import('../runtime/spec.js')).writeDefaultSpec(stringFlag(p.flags, 'bundle') ?? '.', Boolean(p.flags.rootless)),
  },
};

/** runc's flags that go to criu as they are, common to checkpoint and restore. */
function criuFlags(p: Parsed) {
  return {
    tcpEstablished: Boolean(p.flags['tcp-established']),
    extUnixSk: Boolean(p.flags['ext-unix-sk']),
    shellJob: Boolean(p.flags['shell-job']),
    fileLocks: Boolean(p.flags['file-locks']),
    autoDedup: Boolean(p.flags['auto-dedup']),
    manageCgroupsMode: stringFlag(p.flags, 'manage-cgroups-mode'),
    emptyNs: listFlag(p.flags, 'empty-ns').flatMap((v) => v.split(',')).filter(Boolean),
  };
}

/** runc flags pocrun knows but does not implement: an error naming the flag, never silently ignored. */
function unsupportedCriuFlags(p: Parsed, names: string[]): void {
  for (const name of names) {
    if (p.flags[name] !== undefined && p.flags[name] !== false && p.flags[name] !== '') throw new PocrunError(`--${name} is not supported by pocrun's checkpoint/restore`);
  }
}

const GLOBAL_FLAGS: FlagSpec = {
  string: ['root', 'log', 'log-format', 'criu', 'rootless'],
  boolean: ['debug', 'help', 'version', 'systemd-cgroup'],
  alias: { h: 'help', v: 'version' },
};

function usage(): string {
  const commands = Object.entries(COMMANDS).filter(([, c]) => !c.hidden).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join('\n');
  return `pocrun: an OCI container runtime

Usage: pocrun [global flags] COMMAND [flags] [arguments]

Commands:
${commands}

Global flags:
  --root DIR            state directory (default /run/pocrun; $XDG_RUNTIME_DIR/pocrun for a user other than root)
  --log FILE            also write errors and debug output to FILE
  --log-format FORMAT   text or json (default text)
  --debug               debug output and stack traces
  --systemd-cgroup      create the container's cgroup as a systemd scope (linux.cgroupsPath: slice:prefix:name)
  --rootless MODE       true, false or auto (default): cgroups as for an unprivileged user, who may have none;
                        auto is true for a user other than root and for root in a user namespace
  --criu PATH           the criu binary for checkpoint and restore (default: criu on $PATH)
  --version, -v         print the version
  --help, -h            print this help; "pocrun COMMAND --help" for a command
`;
}

export function versionText(): string {
  return `pocrun version ${VERSION}\ncommit: ${COMMIT}\nspec: ${OCI_VERSION}\n`;
}

export async function runPocrun(argv: string[]): Promise<number> {
  let ctx: RuntimeContext | undefined;
  let debug = argv.includes('--debug');
  let command: Command | undefined;
  try {
    // Split by hand, not by minimist's stopEarly, which would drop a `--` of the command's own command line.
    const [globalArgs, commandLine] = splitAtFirstArg(argv, GLOBAL_FLAGS);
    const global = parseFlags(globalArgs, GLOBAL_FLAGS, '');
    debug = Boolean(global.flags.debug);
    if (global.flags.version) {
      stdout(versionText());
      return 0;
    }
    const [name, ...rest] = commandLine;
    if (!name || global.flags.help) {
      (name || global.flags.help ? stdout : stderr)(usage());
      return name || global.flags.help ? 0 : 1;
    }
    const logFormat = stringFlag(global.flags, 'log-format') ?? 'text';
    if (logFormat !== 'text' && logFormat !== 'json') throw new PocrunError(`invalid --log-format ${JSON.stringify(logFormat)}: use text or json`);
    const uid = euid();
    ctx = new RuntimeContext({
      root: stringFlag(global.flags, 'root') ?? defaultRoot(process.env, uid, runningInUserNs),
      logFile: stringFlag(global.flags, 'log'),
      logFormat: logFormat as LogFormat,
      debug,
      systemdCgroup: Boolean(global.flags['systemd-cgroup']),
      rootless: rootlessMode(parseRootlessFlag(stringFlag(global.flags, 'rootless')), uid, runningInUserNs),
      criuPath: stringFlag(global.flags, 'criu'),
      output: { stdout, stderr },
    });
    command = COMMANDS[name];
    if (!command) throw new PocrunError(`unknown command ${JSON.stringify(name)}; "pocrun --help" lists them`);
    const flagSpec = { ...command.flags, boolean: [...(command.flags.boolean ?? []), 'help'] };
    const [flagArgs, positional] = command.passThrough ? splitAtFirstArg(rest, flagSpec) : [rest, undefined];
    const parsed = parseFlags(flagArgs, flagSpec, name);
    if (positional) parsed.args = positional;
    const help = helpOrCheckArgs('pocrun', name, command, parsed, PocrunError);
    if (help !== undefined) {
      stdout(help);
      return 0;
    }
    ctx.log('debug', `${name} ${rest.join(' ')}`);
    return (await command.run(ctx, parsed)) ?? 0;
  } catch (err) {
    const status = reportError('pocrun', err, { debug, log: ctx ? (msg) => ctx!.log('error', msg) : undefined });
    return status === 1 && command?.failureStatus !== undefined ? command.failureStatus : status;
  }
}
