import { stdout, stderr } from '../common/output.js';
import { PocError } from '../poc/errors.js';
import { helpOrCheckArgs, intFlag, listFlag, parseFlags, splitAtFirstArg, stringFlag, type CommandShape, type FlagSpec, type Parsed } from './args.js';
import { reportError } from './report.js';
import { VERSION } from '../spec/generated/version.js';
import type { RunFlags } from '../poc/containers/options.js';
import { DOCKER_RUN_FLAGS } from '../poc/containers/docker-flags.js';
import { pocPaths, pocRoot, type RootOptions } from '../poc/poc-root.js';
import { COMPOSE_FLAGS, COMPOSE_USAGE } from './compose.js';
import { resolve } from 'node:path';

interface Command extends CommandShape {
  flags: FlagSpec;
  /** Flags stop at the first argument (run, create, exec: the rest is the container's command). */
  stopEarly?: boolean;
  hidden?: boolean;
  /** Writes files owned by the image's ids: rootless, it runs again as root of poc's user namespace (userns.ts). */
  userns?: boolean;
  run: (p: Parsed, root: RootOptions) => Promise<number> | number;
}

export const RUN_FLAGS: FlagSpec = {
  string: [
    'name', 'hostname', 'env', 'env-file', 'volume', 'workdir', 'user', 'publish', 'network', 'memory', 'cpus',
    'pids-limit', 'cap-add', 'cap-drop', 'security-opt', 'entrypoint', 'cgroup-manager', 'cgroup-parent',
    'mount', 'restart', 'health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period',
    'device', 'group-add', 'ulimit', 'sysctl', 'tmpfs', 'shm-size', 'stop-signal', 'stop-timeout', 'label',
    'network-alias', 'ip', 'dns', 'add-host',
  ],
  boolean: ['detach', 'interactive', 'tty', 'rm', 'read-only', 'no-healthcheck', 'privileged', 'init'],
  alias: { d: 'detach', i: 'interactive', t: 'tty', e: 'env', v: 'volume', w: 'workdir', u: 'user', p: 'publish', m: 'memory', h: 'hostname', l: 'label' },
  repeat: [
    'env', 'env-file', 'volume', 'publish', 'cap-add', 'cap-drop', 'security-opt', 'mount', 'device', 'group-add', 'ulimit', 'sysctl', 'tmpfs', 'label',
    'network', 'network-alias', 'dns', 'add-host',
  ],
  unsupported: DOCKER_RUN_FLAGS,
};

const RUN_USAGE =
  '[-d] [-i] [-t] [--rm] [--name N] [--hostname H] [-e K=V] [--env-file F] [-v HOST|VOLUME:CTR[:ro]] [-v CTR] ' +
  '[--mount type=bind|volume|tmpfs,source=S,target=T[,readonly]...] [--restart no|on-failure[:N]|always|unless-stopped] ' +
  '[--health-cmd CMD] [--health-interval D] [--health-timeout D] [--health-retries N] [--health-start-period D] [--no-healthcheck] ' +
  '[-w DIR] [-u UID[:GID]] ' +
  '[-p [[IP:][HOST]:]CTR[/tcp|/udp]] [--network bridge|none|host|NAME]... [--network-alias A] [--ip IP] [--dns IP] ' +
  '(rootless: [--network slirp4netns[:allow_host_loopback=true]|pasta[:OPT,...]|none]) ' +
  '[--add-host NAME:IP] [-m 512m] [--cpus 1.5] [--pids-limit N] [--read-only] ' +
  '[--cap-add C] [--cap-drop C] [--security-opt no-new-privileges|seccomp=unconfined|seccomp=FILE] [--entrypoint E] ' +
  '[--cgroup-manager systemd|cgroupfs] [--cgroup-parent SLICE|PATH] [--privileged] [--device HOST[:CTR][:rwm]] ' +
  '[--group-add G] [--ulimit NAME=SOFT[:HARD]] [--sysctl K=V] [--tmpfs PATH[:OPTS]] [--shm-size 64m] [--init] ' +
  '[--stop-signal SIG] [--stop-timeout SECS] [-l K=V] ' +
  'IMAGE [CMD...]';

/** The parsed flags of run and create as a typed object (the checking is in src/poc/containers/options.ts). */
export function runFlags(p: Parsed): RunFlags {
  const [image, ...command] = p.args;
  const opt = (name: string) => stringFlag(p.flags, name);
  const flags: RunFlags = {
    detach: Boolean(p.flags.detach),
    interactive: Boolean(p.flags.interactive),
    tty: Boolean(p.flags.tty),
    rm: Boolean(p.flags.rm),
    env: listFlag(p.flags, 'env'),
    envFiles: listFlag(p.flags, 'env-file'),
    volumes: listFlag(p.flags, 'volume'),
    mounts: listFlag(p.flags, 'mount'),
    noHealthcheck: Boolean(p.flags['no-healthcheck']),
    publish: listFlag(p.flags, 'publish'),
    readOnly: Boolean(p.flags['read-only']),
    capAdd: listFlag(p.flags, 'cap-add'),
    capDrop: listFlag(p.flags, 'cap-drop'),
    securityOpts: listFlag(p.flags, 'security-opt'),
    privileged: Boolean(p.flags.privileged),
    devices: listFlag(p.flags, 'device'),
    groupAdd: listFlag(p.flags, 'group-add'),
    ulimits: listFlag(p.flags, 'ulimit'),
    sysctls: listFlag(p.flags, 'sysctl'),
    tmpfs: listFlag(p.flags, 'tmpfs'),
    init: Boolean(p.flags.init),
    labels: listFlag(p.flags, 'label'),
    network: listFlag(p.flags, 'network'),
    networkAliases: listFlag(p.flags, 'network-alias'),
    dns: listFlag(p.flags, 'dns'),
    addHosts: listFlag(p.flags, 'add-host'),
    image: image!,
    command,
  };
  for (const [key, name] of [
    ['name', 'name'], ['hostname', 'hostname'], ['workdir', 'workdir'], ['user', 'user'], ['ip', 'ip'],
    ['memory', 'memory'], ['cpus', 'cpus'], ['pidsLimit', 'pids-limit'], ['cgroupManager', 'cgroup-manager'], ['cgroupParent', 'cgroup-parent'],
    ['restart', 'restart'], ['healthCmd', 'health-cmd'], ['healthInterval', 'health-interval'], ['healthTimeout', 'health-timeout'],
    ['healthRetries', 'health-retries'], ['healthStartPeriod', 'health-start-period'],
    ['shmSize', 'shm-size'], ['stopSignal', 'stop-signal'], ['stopTimeout', 'stop-timeout'],
  ] as const) {
    const v = opt(name);
    if (v !== undefined) flags[key] = v;
  }
  // --entrypoint "" is meaningful (no entrypoint): stringFlag would drop it.
  if (p.flags.entrypoint !== undefined) flags.entrypoint = String(p.flags.entrypoint);
  return flags;
}

function format(p: Parsed, where: string): 'table' | 'json' {
  const f = stringFlag(p.flags, 'format') ?? 'table';
  if (f !== 'table' && f !== 'json') throw new PocError(`${where}: invalid --format ${JSON.stringify(f)}: use table or json`);
  return f;
}

const REGISTRY_FLAGS = ['authfile', 'cert-dir', 'tls-verify'];

/** --authfile, --cert-dir and --tls-verify[=false] (podman's and skopeo's spelling) of pull, push and login. */
function registryFlags(p: Parsed): { authfile?: string; certDir?: string; tlsVerify?: boolean } {
  const out: { authfile?: string; certDir?: string; tlsVerify?: boolean } = {};
  const authfile = stringFlag(p.flags, 'authfile');
  const certDir = stringFlag(p.flags, 'cert-dir');
  if (authfile !== undefined) out.authfile = authfile;
  if (certDir !== undefined) out.certDir = certDir;
  const tls = p.flags['tls-verify'];
  if (tls !== undefined) {
    const v = String(tls);
    if (v !== 'true' && v !== 'false' && v !== '') throw new PocError(`invalid --tls-verify ${JSON.stringify(v)}: use true or false`);
    out.tlsVerify = v !== 'false';
  }
  return out;
}

/** Each command loads its module when it runs. */
const COMMANDS: Record<string, Command> = {
  init: {
    usage: 'init [--busybox] [--force]',
    summary: 'build the default Debian image (or, with --busybox, the busybox one)',
    flags: { boolean: ['busybox', 'force'], alias: { f: 'force' } },
    args: [0, 0],
    userns: true,
    run: async (p, root) => (await import('../poc/commands/init.js')).initCommand({ ...root, busybox: Boolean(p.flags.busybox), force: Boolean(p.flags.force) }),
  },
  import: {
    usage: 'import [--force] FILE|DIR [NAME]',
    summary: 'import a rootfs tarball, a docker save archive or an OCI image layout',
    flags: { boolean: ['force'], alias: { f: 'force' } },
    args: [1, 2],
    userns: true,
    run: async (p, root) =>
      (await import('../poc/commands/import.js')).importCommand({ ...root, path: p.args[0]!, ...(p.args[1] ? { name: p.args[1] } : {}), force: Boolean(p.flags.force) }),
  },
  pull: {
    usage: 'pull [-q] [--all-platforms] [--authfile F] [--cert-dir D] [--tls-verify=false] NAME[:TAG|@DIGEST]',
    summary: 'pull an image from a registry',
    flags: { string: REGISTRY_FLAGS, boolean: ['quiet', 'all-platforms'], alias: { q: 'quiet' } },
    args: [1, 1],
    run: async (p, root) =>
      (await import('../poc/commands/pull.js')).pullCommand({
        ...root,
        ...registryFlags(p),
        reference: p.args[0]!,
        quiet: Boolean(p.flags.quiet),
        allPlatforms: Boolean(p.flags['all-platforms']),
      }),
  },
  push: {
    usage: 'push [-q] [--authfile F] [--cert-dir D] [--tls-verify=false] [--chunk-size BYTES] IMAGE [DESTINATION]',
    summary: 'push an image to a registry',
    flags: { string: [...REGISTRY_FLAGS, 'chunk-size'], boolean: ['quiet'], alias: { q: 'quiet' } },
    args: [1, 2],
    run: async (p, root) =>
      (await import('../poc/commands/push.js')).pushCommand({
        ...root,
        ...registryFlags(p),
        image: p.args[0]!,
        destination: p.args[1] ?? p.args[0]!,
        quiet: Boolean(p.flags.quiet),
        ...(p.flags['chunk-size'] !== undefined ? { chunkSize: intFlag(p.flags, 'chunk-size', 0) } : {}),
      }),
  },
  login: {
    usage: 'login -u USER [-p PASSWORD | --password-stdin] [--authfile F] [--cert-dir D] [--tls-verify=false] REGISTRY',
    summary: 'log in to a registry',
    flags: { string: [...REGISTRY_FLAGS, 'username', 'password'], boolean: ['password-stdin'], alias: { u: 'username', p: 'password' } },
    args: [1, 1],
    run: async (p) =>
      (await import('../poc/commands/login.js')).loginCommand({
        ...registryFlags(p),
        registry: p.args[0]!,
        username: stringFlag(p.flags, 'username'),
        password: stringFlag(p.flags, 'password'),
        passwordStdin: Boolean(p.flags['password-stdin']),
      }),
  },
  logout: {
    usage: 'logout [--authfile F] REGISTRY',
    summary: 'log out from a registry',
    flags: { string: ['authfile'] },
    args: [1, 1],
    run: async (p) => (await import('../poc/commands/login.js')).logoutCommand({ registry: p.args[0]!, authfile: stringFlag(p.flags, 'authfile') }),
  },
  build: {
    usage: 'build [-t NAME[:TAG]]... [-f FILE] [--build-arg K=V]... [--secret id=ID,src=FILE|env=VAR]... [--target STAGE] [--no-cache] [--network none|bridge|host] [--platform OS/ARCH] [--ssh default|ID=SOCKET|ID=KEYFILE]... [-q] CONTEXT',
    summary: 'build an image from a Dockerfile',
    flags: {
      string: ['tag', 'file', 'build-arg', 'secret', 'ssh', 'target', 'network', 'platform'],
      boolean: ['no-cache', 'quiet'],
      alias: { t: 'tag', f: 'file', q: 'quiet' },
      repeat: ['tag', 'build-arg', 'secret', 'ssh'],
    },
    args: [1, 1],
    run: async (p, root) =>
      (await import('../poc/commands/build.js')).buildCommand({
        ...root,
        context: p.args[0]!,
        file: stringFlag(p.flags, 'file'),
        tags: listFlag(p.flags, 'tag'),
        buildArgs: listFlag(p.flags, 'build-arg'),
        secrets: listFlag(p.flags, 'secret'),
        ssh: listFlag(p.flags, 'ssh'),
        target: stringFlag(p.flags, 'target'),
        noCache: Boolean(p.flags['no-cache']),
        network: stringFlag(p.flags, 'network'),
        platform: stringFlag(p.flags, 'platform'),
        quiet: Boolean(p.flags.quiet),
      }),
  },
  tag: {
    usage: 'tag IMAGE NAME[:TAG]',
    summary: 'give an image another name',
    flags: {},
    args: [2, 2],
    run: async (p, root) => (await import('../poc/commands/image-workflow.js')).tagCommand({ ...root, source: p.args[0]!, target: p.args[1]! }),
  },
  save: {
    usage: 'save [-o FILE] [--format docker-archive|oci-archive] IMAGE...',
    summary: 'write images to a tar archive (docker save format, or an OCI image layout)',
    flags: { string: ['output', 'format'], alias: { o: 'output' } },
    args: [1, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/image-workflow.js')).saveCommand({ ...root, refs: p.args, output: stringFlag(p.flags, 'output'), format: stringFlag(p.flags, 'format') ?? 'docker-archive' }),
  },
  load: {
    usage: 'load [-i FILE] [-q]',
    summary: 'load the images of a docker save archive or an OCI archive (from standard input without -i)',
    flags: { string: ['input'], boolean: ['quiet'], alias: { i: 'input', q: 'quiet' } },
    args: [0, 0],
    run: async (p, root) => {
      const input = stringFlag(p.flags, 'input');
      return (await import('../poc/commands/image-workflow.js')).loadCommand({ ...root, ...(input !== undefined ? { input } : {}), quiet: Boolean(p.flags.quiet) });
    },
  },
  history: {
    usage: 'history [--no-trunc] [--format table|json] IMAGE',
    summary: 'show the steps that made an image',
    flags: { string: ['format'], boolean: ['no-trunc'] },
    args: [1, 1],
    run: async (p, root) =>
      (await import('../poc/commands/image-workflow.js')).historyCommand({ ...root, ref: p.args[0]!, noTrunc: Boolean(p.flags['no-trunc']), format: format(p, 'history') }),
  },
  image: {
    usage: 'image inspect IMAGE... | image prune [-a] | image ls | image rm [-f] IMAGE...',
    summary: 'manage images (inspect: the config, layers and history as JSON; prune: unused images and layers)',
    flags: { boolean: ['force', 'all'], alias: { f: 'force', a: 'all' } },
    args: [1, Infinity],
    run: async (p, root) => {
      const [sub, ...refs] = p.args;
      const m = await import('../poc/commands/image-workflow.js');
      if (sub === 'inspect') {
        if (refs.length === 0) throw new PocError('image inspect: missing argument; usage: poc image inspect IMAGE...');
        return m.imageInspectCommand({ ...root, refs });
      }
      if (sub === 'prune') return (await import('../poc/commands/container-files.js')).imagePruneCommand({ ...root, all: Boolean(p.flags.all) });
      if (sub === 'ls' || sub === 'list') return (await import('../poc/commands/images.js')).imagesCommand({ ...root, format: 'table' });
      if (sub === 'rm') return (await import('../poc/commands/images.js')).rmiCommand({ ...root, refs, force: Boolean(p.flags.force) });
      throw new PocError(`image: unknown subcommand ${JSON.stringify(sub)}: inspect, prune, ls or rm`);
    },
  },
  commit: {
    usage: 'commit [-c INSTRUCTION]... [-m MESSAGE] [-a AUTHOR] CONTAINER [NAME[:TAG]]',
    summary: "make an image of a container's changes",
    flags: { string: ['change', 'message', 'author'], alias: { c: 'change', m: 'message', a: 'author' }, repeat: ['change'] },
    args: [1, 2],
    run: async (p, root) =>
      (await import('../poc/commands/container-files.js')).commitCommand({
        ...root,
        ref: p.args[0]!,
        ...(p.args[1] ? { name: p.args[1] } : {}),
        changes: listFlag(p.flags, 'change'),
        ...(stringFlag(p.flags, 'message') ? { message: stringFlag(p.flags, 'message')! } : {}),
        ...(stringFlag(p.flags, 'author') ? { author: stringFlag(p.flags, 'author')! } : {}),
      }),
  },
  diff: {
    usage: 'diff CONTAINER',
    summary: "list a container's added (A), changed (C) and deleted (D) files",
    flags: {},
    args: [1, 1],
    run: async (p, root) => (await import('../poc/commands/container-files.js')).diffCommand({ ...root, ref: p.args[0]! }),
  },
  export: {
    usage: 'export [-o FILE] CONTAINER',
    summary: "write a container's file system as a tar archive",
    flags: { string: ['output'], alias: { o: 'output' } },
    args: [1, 1],
    run: async (p, root) => (await import('../poc/commands/container-files.js')).exportCommand({ ...root, ref: p.args[0]!, output: stringFlag(p.flags, 'output') }),
  },
  cp: {
    usage: 'cp CONTAINER:SRC DEST | cp SRC CONTAINER:DEST',
    summary: 'copy files out of or into a container',
    flags: {},
    args: [2, 2],
    run: async (p, root) => (await import('../poc/commands/container-files.js')).cpCommand({ ...root, src: p.args[0]!, dest: p.args[1]! }),
  },
  builder: {
    usage: 'builder prune',
    summary: 'forget the build cache (and the layers only it kept)',
    flags: { boolean: ['all', 'force'], alias: { a: 'all', f: 'force' } },
    args: [1, 1],
    run: async (p, root) => {
      if (p.args[0] !== 'prune') throw new PocError(`builder: unknown subcommand ${JSON.stringify(p.args[0])}: prune`);
      return (await import('../poc/commands/container-files.js')).builderPruneCommand(root);
    },
  },
  system: {
    usage: 'system df',
    summary: 'show the space images, containers and the build cache take',
    flags: {},
    args: [1, 1],
    run: async (p, root) => {
      if (p.args[0] !== 'df') throw new PocError(`system: unknown subcommand ${JSON.stringify(p.args[0])}: df`);
      return (await import('../poc/commands/container-files.js')).systemDfCommand(root);
    },
  },
  images: {
    usage: 'images [--format table|json]',
    summary: 'list images',
    flags: { string: ['format'] },
    args: [0, 0],
    run: async (p, root) => (await import('../poc/commands/images.js')).imagesCommand({ ...root, format: format(p, 'images') }),
  },
  rmi: {
    usage: 'rmi [-f] IMAGE...',
    summary: 'remove images (refused while a container uses one, unless -f)',
    flags: { boolean: ['force'], alias: { f: 'force' } },
    args: [1, Infinity],
    userns: true,
    run: async (p, root) => (await import('../poc/commands/images.js')).rmiCommand({ ...root, refs: p.args, force: Boolean(p.flags.force) }),
  },
  create: {
    usage: `create ${RUN_USAGE}`,
    summary: 'create a container without starting it',
    flags: RUN_FLAGS,
    args: [1, Infinity],
    stopEarly: true,
    run: async (p, root) => (await import('../poc/commands/create.js')).createCommand({ ...root, flags: runFlags(p) }),
  },
  run: {
    usage: `run ${RUN_USAGE}`,
    summary: 'create and start a container; without -d wait for it and exit with its status',
    flags: RUN_FLAGS,
    args: [1, Infinity],
    stopEarly: true,
    run: async (p, root) => (await import('../poc/commands/run.js')).runCommand({ ...root, flags: runFlags(p) }),
  },
  start: {
    usage: 'start [--checkpoint NAME] CONTAINER...',
    summary: 'start created or stopped containers; --checkpoint: restore one from its checkpoint NAME',
    flags: { string: ['checkpoint'] },
    args: [1, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/lifecycle.js')).startCommand({ ...root, refs: p.args, ...(p.flags.checkpoint !== undefined ? { checkpoint: String(p.flags.checkpoint) } : {}) }),
  },
  checkpoint: {
    usage: 'checkpoint create [--leave-running] CONTAINER NAME | checkpoint ls CONTAINER | checkpoint rm CONTAINER NAME',
    summary: 'checkpoint a running container with criu (it stops unless --leave-running), list or remove its checkpoints',
    flags: { boolean: ['leave-running'] },
    args: [2, 3],
    run: async (p, root) =>
      (await import('../poc/commands/checkpoint.js')).checkpointCommand({ ...root, args: p.args, leaveRunning: Boolean(p.flags['leave-running']) }),
  },
  stop: {
    usage: 'stop [-t SECS] CONTAINER...',
    summary: 'stop containers: the stop signal (SIGTERM unless --stop-signal), then SIGKILL after SECS (default: --stop-timeout, or 10)',
    flags: { string: ['time'], alias: { t: 'time' } },
    args: [1, Infinity],
    run: async (p, root) => (await import('../poc/commands/lifecycle.js')).stopCommand({
        ...root, refs: p.args, ...(stringFlag(p.flags, 'time') !== undefined ? { timeout: intFlag(p.flags, 'time', 10) } : {}),
      }),
  },
  kill: {
    usage: 'kill [-s SIGNAL] CONTAINER...',
    summary: 'send a signal (default SIGKILL) to containers',
    flags: { string: ['signal'], alias: { s: 'signal' } },
    args: [1, Infinity],
    run: async (p, root) => (await import('../poc/commands/lifecycle.js')).killCommand({ ...root, refs: p.args, signal: stringFlag(p.flags, 'signal') ?? 'SIGKILL' }),
  },
  rm: {
    usage: 'rm [-f] [-v] CONTAINER...',
    summary: 'remove containers (-f: running ones too; -v: their anonymous volumes too)',
    flags: { boolean: ['force', 'volumes'], alias: { f: 'force', v: 'volumes' } },
    args: [1, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/lifecycle.js')).rmCommand({ ...root, refs: p.args, force: Boolean(p.flags.force), volumes: Boolean(p.flags.volumes) }),
  },
  ps: {
    usage: 'ps [-a] [-q] [--format table|json]',
    summary: 'list running containers (all with -a; only their ids with -q)',
    flags: { string: ['format'], boolean: ['all', 'quiet'], alias: { a: 'all', q: 'quiet' } },
    args: [0, 0],
    run: async (p, root) =>
      (await import('../poc/commands/ps.js')).psCommand({ ...root, all: Boolean(p.flags.all), quiet: Boolean(p.flags.quiet), format: format(p, 'ps') }),
  },
  logs: {
    usage: 'logs [-f] [--tail N] [-t] CONTAINER',
    summary: "show a container's output (-f: follow it)",
    flags: { string: ['tail'], boolean: ['follow', 'timestamps'], alias: { f: 'follow', t: 'timestamps', n: 'tail' } },
    args: [1, 1],
    run: async (p, root) => {
      const tail = stringFlag(p.flags, 'tail');
      if (tail !== undefined && tail !== 'all' && !/^\d+$/.test(tail)) throw new PocError(`logs: invalid --tail ${JSON.stringify(tail)}: a number or "all"`);
      return (await import('../poc/commands/logs.js')).logsCommand({
        ...root,
        ref: p.args[0]!,
        follow: Boolean(p.flags.follow),
        timestamps: Boolean(p.flags.timestamps),
        ...(tail !== undefined && tail !== 'all' ? { tail: Number(tail) } : {}),
      });
    },
  },
  exec: {
    usage: 'exec [-d] [-i] [-t] [-e K=V] [-u UID[:GID]] [-w DIR] CONTAINER CMD...',
    summary: 'run a command in a running container',
    flags: { string: ['env', 'user', 'workdir'], boolean: ['detach', 'interactive', 'tty'], alias: { d: 'detach', i: 'interactive', t: 'tty', e: 'env', u: 'user', w: 'workdir' }, repeat: ['env'] },
    args: [2, Infinity],
    stopEarly: true,
    run: async (p, root) => {
      const [ref, ...command] = p.args;
      return (await import('../poc/commands/exec.js')).execCommand({
        ...root,
        ref: ref!,
        command,
        detach: Boolean(p.flags.detach),
        interactive: Boolean(p.flags.interactive),
        tty: Boolean(p.flags.tty),
        env: listFlag(p.flags, 'env'),
        ...(stringFlag(p.flags, 'user') !== undefined ? { user: stringFlag(p.flags, 'user')! } : {}),
        ...(stringFlag(p.flags, 'workdir') !== undefined ? { workdir: stringFlag(p.flags, 'workdir')! } : {}),
      });
    },
  },
  inspect: {
    usage: 'inspect CONTAINER...',
    summary: 'show containers as JSON: config, state, pid, address, ports, exit code, times',
    flags: {},
    args: [1, Infinity],
    run: async (p, root) => (await import('../poc/commands/inspect.js')).inspectCommand({ ...root, refs: p.args }),
  },
  stats: {
    usage: 'stats [--no-stream] [--format table|json] [CONTAINER...]',
    summary: 'show CPU, memory, network, block I/O and pids of running containers',
    flags: { string: ['format'], boolean: ['no-stream'] },
    args: [0, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/stats.js')).statsCommand({ ...root, refs: p.args, stream: !p.flags['no-stream'], format: format(p, 'stats') }),
  },
  port: {
    usage: 'port CONTAINER [PRIVATE_PORT[/PROTO]]',
    summary: 'list the published ports of a container (the host ports poc picked for -p PORT too)',
    flags: {},
    args: [1, 2],
    run: async (p, root) =>
      (await import('../poc/commands/port.js')).portCommand({ ...root, ref: p.args[0]!, ...(p.args[1] !== undefined ? { privatePort: p.args[1] } : {}) }),
  },
  top: {
    usage: 'top CONTAINER',
    summary: 'list the processes of a container',
    flags: {},
    args: [1, 1],
    run: async (p, root) => (await import('../poc/commands/top.js')).topCommand({ ...root, ref: p.args[0]! }),
  },
  wait: {
    usage: 'wait [--condition not-running|next-exit|removed|running|healthy|unhealthy] CONTAINER...',
    summary: 'wait for containers to stop (or the condition); print their exit codes',
    flags: { string: ['condition'] },
    args: [1, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/lifecycle.js')).waitCommand({ ...root, refs: p.args, ...(stringFlag(p.flags, 'condition') ? { condition: stringFlag(p.flags, 'condition')! } : {}) }),
  },
  volume: {
    usage: 'volume create [--label K=V] [NAME] | ls [-q] [--format table|json] | inspect NAME... | rm NAME... | prune [-a]',
    summary: 'manage volumes: data that outlives containers (in use: not removable)',
    flags: { string: ['format', 'label'], boolean: ['quiet', 'all'], alias: { q: 'quiet', a: 'all' }, repeat: ['label'] },
    args: [0, Infinity],
    run: async (p, root) =>
      (await import('../poc/commands/volume.js')).volumeCommand({
        ...root, args: p.args, labels: listFlag(p.flags, 'label'), quiet: Boolean(p.flags.quiet), all: Boolean(p.flags.all), format: format(p, 'volume ls'),
      }),
  },
  prune: {
    usage: 'prune',
    summary: "remove stopped containers, unused untagged images and, when no container is left, poc's network",
    flags: {},
    args: [0, 0],
    userns: true,
    run: async (_p, root) => (await import('../poc/commands/prune.js')).pruneCommand(root),
  },
  bench: {
    usage: 'bench [--image NAME] [--reps N] [--tests cpu,threads,memory,memstress,fileio] [--full] [--seconds S] [--out DIR]',
    summary: 'measure a container against its host with sysbench (interleaved, repeated: medians, ratios, spread)',
    flags: { string: ['image', 'reps', 'tests', 'seconds', 'out'], boolean: ['full'] },
    args: [0, 0],
    run: async (p, root) =>
      (await import('../poc/commands/bench.js')).benchCommand({
        ...root,
        image: stringFlag(p.flags, 'image'),
        reps: intFlag(p.flags, 'reps', 3),
        tests: stringFlag(p.flags, 'tests')?.split(',').filter(Boolean),
        full: Boolean(p.flags.full),
        seconds: stringFlag(p.flags, 'seconds') === undefined ? undefined : intFlag(p.flags, 'seconds', 0),
        out: stringFlag(p.flags, 'out'),
      }),
  },
  network: {
    usage:
      'network create [--subnet CIDR]... [--gateway IP] [--internal] [--ipv6] NAME | ls [-q] [--format table|json] | ' +
      'inspect NETWORK... | rm [-f] NETWORK... | prune | connect [--alias A]... [--ip IP] NETWORK CONTAINER | disconnect NETWORK CONTAINER',
    summary: 'manage user networks: a bridge and address range each, isolated, with DNS for container names',
    flags: {},
    args: [1, Infinity],
    stopEarly: true,
    run: async (p, root) => networkCommand(p.args[0]!, p.args.slice(1), root),
  },
  compose: {
    usage: COMPOSE_USAGE,
    summary: 'run multi-container applications from compose files (the Compose Specification)',
    flags: COMPOSE_FLAGS,
    args: [1, Infinity],
    stopEarly: true,
    run: async (p, root) => (await import('./compose.js')).composeCommand(p, root),
  },
  hook: {
    usage: 'hook network setup|teardown',
    summary: 'OCI hook (the container state on stdin)',
    flags: {},
    args: [2, 2],
    hidden: true,
    run: async (p, root) => (await import('../poc/commands/hook.js')).hookCommand({ ...root, kind: p.args[0]!, action: p.args[1]! }),
  },
  cleanup: {
    usage: 'cleanup ID',
    summary: "the monitor's exit command",
    flags: {},
    args: [1, 1],
    hidden: true,
    run: async (p, root) => (await import('../poc/commands/hook.js')).cleanupCommand({ ...root, id: p.args[0]! }),
  },
};

const NETWORK_SUBCOMMANDS: Record<string, { flags: FlagSpec; args: [number, number]; usage: string }> = {
  create: { flags: { string: ['subnet', 'gateway'], boolean: ['internal', 'ipv6'], repeat: ['subnet', 'gateway'] }, args: [1, 1], usage: 'network create [--subnet CIDR]... [--gateway IP] [--internal] [--ipv6] NAME' },
  ls: { flags: { string: ['format'], boolean: ['quiet'], alias: { q: 'quiet' } }, args: [0, 0], usage: 'network ls [-q] [--format table|json]' },
  inspect: { flags: {}, args: [1, Infinity], usage: 'network inspect NETWORK...' },
  rm: { flags: { boolean: ['force'], alias: { f: 'force' } }, args: [1, Infinity], usage: 'network rm [-f] NETWORK...' },
  prune: { flags: {}, args: [0, 0], usage: 'network prune' },
  connect: { flags: { string: ['alias', 'ip'], repeat: ['alias'] }, args: [2, 2], usage: 'network connect [--alias A]... [--ip IP] NETWORK CONTAINER' },
  disconnect: { flags: {}, args: [2, 2], usage: 'network disconnect NETWORK CONTAINER' },
};

/** `poc network SUBCOMMAND ...`: each subcommand with its own flags, checked as a command's are. */
async function networkCommand(sub: string, argv: string[], root: RootOptions): Promise<number> {
  const def = NETWORK_SUBCOMMANDS[sub];
  if (!def) throw new PocError(`network: unknown subcommand ${JSON.stringify(sub)}: use ${Object.keys(NETWORK_SUBCOMMANDS).join(', ')}`);
  const p = parseFlags(argv, def.flags, `network ${sub}`);
  const [min, max] = def.args;
  if (p.args.length < min || p.args.length > max) throw new PocError(`network ${sub}: expected ${min === max ? min : `${min} or more`} argument${max === 1 ? '' : 's'}; usage: poc ${def.usage}`);
  const m = await import('../poc/commands/network.js');
  switch (sub) {
    case 'create':
      return m.networkCreateCommand({ ...root, name: p.args[0]!, subnets: listFlag(p.flags, 'subnet'), gateways: listFlag(p.flags, 'gateway'), internal: Boolean(p.flags.internal), ipv6: Boolean(p.flags.ipv6) });
    case 'ls':
      return m.networkLsCommand({ ...root, format: format(p, 'network ls'), quiet: Boolean(p.flags.quiet) });
    case 'inspect':
      return m.networkInspectCommand({ ...root, refs: p.args });
    case 'rm':
      return m.networkRmCommand({ ...root, refs: p.args, force: Boolean(p.flags.force) });
    case 'prune':
      return m.networkPruneCommand(root);
    case 'connect': {
      const ip = stringFlag(p.flags, 'ip');
      return m.networkConnectCommand({ ...root, network: p.args[0]!, ref: p.args[1]!, aliases: listFlag(p.flags, 'alias'), ...(ip ? { ip } : {}) });
    }
    default:
      return m.networkDisconnectCommand({ ...root, network: p.args[0]!, ref: p.args[1]! });
  }
}

/**
 * `--cpus -1` as `--cpus=-1`: minimist would take "-1" for a flag, and the user would hear about an unknown flag
 * instead of a bad value.
 */
export function joinNegativeValues(argv: string[], spec: FlagSpec): string[] {
  const valued = new Set(spec.string ?? []);
  for (const [from, to] of Object.entries(spec.alias ?? {})) if (valued.has(to)) valued.add(from);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg === '--' || !arg.startsWith('-')) return [...out, ...argv.slice(i)];
    const name = arg.replace(/^--?/, '');
    if (valued.has(name) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
      if (valued.has(name) && next !== undefined && !arg.includes('=')) out.push(argv[++i]!);
    }
  }
  return out;
}

function usage(): string {
  const commands = Object.entries(COMMANDS)
    .filter(([, c]) => !c.hidden)
    .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
    .join('\n');
  return `poc: run containers like docker, on the pocrun runtime

Usage: poc [global flags] COMMAND [flags] [arguments]

Commands:
${commands}

Global flags:
  --root DIR      where images and containers live (default $POC_ROOT, else /var/lib/poc, or for a user
                  $XDG_DATA_HOME/poc, ~/.local/share/poc; its runtime files in $XDG_RUNTIME_DIR/poc)
  --debug         stack traces with errors
  --version, -v   print the version
  --help, -h      print this help; "poc COMMAND --help" for a command

Containers are named by name, full id or a unique id prefix.
`;
}

export async function runPoc(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const global = parseFlags(argv, { string: ['root'], boolean: ['debug', 'help', 'version'], alias: { h: 'help', v: 'version' } }, '', true);
    if (global.flags.version) {
      stdout(`poc version ${VERSION}\n`);
      return 0;
    }
    const [name, ...rest] = global.args;
    if (!name || global.flags.help) {
      (name || global.flags.help ? stdout : stderr)(usage());
      return name || global.flags.help ? 0 : 1;
    }
    const command = COMMANDS[name];
    if (!command) throw new PocError(`unknown command ${JSON.stringify(name)}; "poc --help" lists them`);
    // '_' as a string: an id prefix such as 0123 must not become the number 123.
    const spec: FlagSpec = {
      ...command.flags,
      string: [...(command.flags.string ?? []), '_'],
      boolean: [...(command.flags.boolean ?? []), 'help'],
      repeat: [...(command.flags.repeat ?? []), '_'],
    };
    const args = joinNegativeValues(rest, spec);
    let parsed: Parsed;
    if (command.stopEarly) {
      // Everything from the first argument on is the image or container and the command line, kept as it is.
      const [flagArgs, positional] = splitAtFirstArg(args, spec);
      parsed = parseFlags(flagArgs, spec, name);
      parsed.args = [...parsed.args, ...positional];
    } else {
      parsed = parseFlags(args, spec, name);
    }
    const help = helpOrCheckArgs('poc', name, command, parsed, PocError);
    if (help !== undefined) {
      stdout(help);
      return 0;
    }
    // Absolute: it goes into hooks and the monitor's exit command, which run elsewhere.
    const root = resolve(stringFlag(global.flags, 'root') ?? pocRoot());
    const run = pocPaths({ root }).run;
    if (run !== root) {
      const userns = await import('../poc/userns.js'); // rootless only
      userns.ensureRunDir(run);
      if (command.userns && !userns.inPocUserns()) {
        const { binaries } = await import('../poc/containers/runtime.js');
        return await userns.rerunInUserns(binaries().poc, argv, { root, runDir: run });
      }
    }
    return await command.run(parsed, { root });
  } catch (err) {
    return reportError('poc', err, { debug });
  }
}
