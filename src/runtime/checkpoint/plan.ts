/**
 * What criu is told, as a pure function of the container's config and the command's flags: the options of a dump
 * or pre-dump and of a restore. They are the options runc sets through criu's RPC (libcontainer's Checkpoint and
 * Restore), so a checkpoint taken by one can be reasoned about like the other's. One list of criu options, in
 * criu's command-line names, serves both ways pocrun runs criu: a restore's command line (commandLine), and the
 * configuration file a dump's RPC request names (configFile; criu-rpc.ts). Unit-tested without root
 * (test/unit/checkpoint-plan.test.ts).
 */
import type { Spec } from '../../spec/generated/config.js';
import { PocrunError } from '../../errors.js';

/** runc's checkpoint flags that go to criu as they are. */
export interface CriuCommonOptions {
  tcpEstablished: boolean;
  extUnixSk: boolean;
  shellJob: boolean;
  fileLocks: boolean;
  /** --manage-cgroups-mode: soft (criu's default), full, strict or ignore. */
  manageCgroupsMode?: string;
  /** --empty-ns network: the namespace is made, its contents (interfaces, addresses) are not restored. */
  emptyNs: string[];
  autoDedup: boolean;
}

export interface DumpOptions extends CriuCommonOptions {
  pid: number;
  /** --parent-path: the pre-dump's images, relative to the image path (criu's --prev-images-dir). */
  parentPath?: string;
  leaveRunning: boolean;
  preDump: boolean;
  /** The freezer's directory (v1) or the cgroup's (v2): criu freezes the tree there instead of seizing it. */
  freezeCgroup?: string;
  /** Inode of each namespace the config joins by path, for the kinds criu takes as external (net, pid). */
  externalNsInodes: Partial<Record<ExternalNs, number>>;
  /** criu's key (tty[RDEV:DEV]) of the pty slave that is the init's stdio, when it has a terminal (terminal.ts). */
  externalTty?: string;
}

export interface RestoreOptions extends CriuCommonOptions {
  imagePath: string;
  workPath: string;
  /** Where the rootfs is bind-mounted for criu (it needs a mount point whose parent is not over-mounted). */
  root: string;
  /** The cgroup every controller's tasks are restored under (criu's --cgroup-root), e.g. /pocrun/c1. */
  cgroupRoot: string;
  detach: boolean;
  pidFile: string;
  /** descriptors.json: what the init's fds 0-2 were at checkpoint ("pipe:[123]", "/dev/null", ...). */
  descriptors: string[];
  /** The fd criu inherits for each external namespace (see restoreFds). */
  externalNsFds: Partial<Record<ExternalNs, number>>;
  /** An executable criu runs at each step (criu's --action-script), for the hooks (hooksScript). */
  actionScript?: string;
  /** The new terminal given in place of the checkpointed one (terminal.ts): criu's fd of its slave, the old
   * slave's key, and the slave's path (bound on /dev/console). */
  terminal?: { fd: number; key: string; path: string };
}

/** The namespaces runc hands to criu as external when the config joins them by path. */
export type ExternalNs = 'net' | 'pid';
const EXTERNAL_NS: Record<ExternalNs, { type: string; key: string }> = {
  net: { type: 'network', key: 'extRootNetNS' },
  pid: { type: 'pid', key: 'extRootPidNS' },
};

/** Where create binds the terminal's slave in the container. */
const CONSOLE = '/dev/console';

export const MANAGE_CGROUPS_MODES = ['soft', 'full', 'strict', 'ignore'] as const;
/** runc's --empty-ns takes the namespace's config name; criu's the kernel's. */
const EMPTY_NS: Record<string, string> = { network: 'net' };

/** The paths of the namespaces the config joins by path and criu must take as external. */
export function externalNamespacePaths(spec: Spec): Partial<Record<ExternalNs, string>> {
  const out: Partial<Record<ExternalNs, string>> = {};
  for (const [ns, { type }] of Object.entries(EXTERNAL_NS) as [ExternalNs, { type: string }][]) {
    const path = spec.linux?.namespaces?.find((n) => n.type === type)?.path;
    if (path) out[ns] = path;
  }
  return out;
}

/** The bind mounts of the config: criu cannot see where their sources are, so they are external mounts. */
function bindMounts(spec: Spec): { destination: string; source: string }[] {
  return (spec.mounts ?? [])
    .filter((m) => m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind'))
    .map((m) => ({ destination: m.destination, source: m.source ?? '' }));
}

/**
 * Checks runc's flags before anything is made: a bad mode or namespace name is an error naming the flag.
 */
export function checkCommonOptions(o: CriuCommonOptions): void {
  if (o.manageCgroupsMode !== undefined && !(MANAGE_CGROUPS_MODES as readonly string[]).includes(o.manageCgroupsMode)) {
    throw new PocrunError(`--manage-cgroups-mode ${JSON.stringify(o.manageCgroupsMode)}: use ${MANAGE_CGROUPS_MODES.join(', ')}`);
  }
  for (const ns of o.emptyNs) {
    if (!EMPTY_NS[ns]) throw new PocrunError(`--empty-ns ${JSON.stringify(ns)}: only "network" can be left empty`);
  }
}

/** One criu option: its long name, and its value if it takes one. */
export type CriuOption = readonly [name: string, value?: string];

/** criu's options whose argument is optional: given only attached (`--name=value`, getopt's rule). */
const ATTACHED_VALUE = new Set(['manage-cgroups', 'verbosity']);

/** The options as criu's command line spells them. */
export function commandLine(options: readonly CriuOption[]): string[] {
  return options.flatMap(([name, value]) => {
    if (value === undefined) return [`--${name}`];
    return ATTACHED_VALUE.has(name) ? [`--${name}=${value}`] : [`--${name}`, value];
  });
}

/**
 * The options as a criu configuration file: one per line, the name without its dashes, then the value (criu's
 * config.c prefixes `--` to each line's first word). A value with a space or a `#` is quoted. criu's parser has
 * no way to write a newline, and no reliable one for a double quote, so such a value (a mount's path) is refused.
 */
export function configFile(options: readonly CriuOption[]): string {
  return options.map(([name, value]) => {
    if (value === undefined) return `${name}\n`;
    if (/["\n]/.test(value)) throw new PocrunError(`criu cannot be given ${JSON.stringify(value)} (--${name}): a newline or a double quote has no spelling in its configuration file`);
    if (ATTACHED_VALUE.has(name)) return `${name}=${value}\n`;
    return `${name} ${/[\s#]/.test(value) || value === '' ? `"${value}"` : value}\n`;
  }).join('');
}

function commonOptions(o: CriuCommonOptions): CriuOption[] {
  return [
    ...(o.tcpEstablished ? [['tcp-established'] as const] : []),
    ...(o.extUnixSk ? [['ext-unix-sk'] as const] : []),
    ...(o.shellJob ? [['shell-job'] as const] : []),
    ...(o.fileLocks ? [['file-locks'] as const] : []),
    ...(o.autoDedup ? [['auto-dedup'] as const] : []),
    ...o.emptyNs.map((ns) => ['empty-ns', EMPTY_NS[ns]!] as const),
    // runc always asks criu to manage cgroups (ManageCgroups: true), in criu's default mode unless told.
    o.manageCgroupsMode ? ['manage-cgroups', o.manageCgroupsMode] : ['manage-cgroups'],
  ];
}

/** A dump or pre-dump: what the RPC request carries itself (criu-rpc.ts), and the options beside it. */
export interface DumpPlan {
  type: 'dump' | 'pre-dump';
  pid: number;
  /** In the work directory (criu takes a name, not a path). */
  logFile: string;
  options: CriuOption[];
}

/**
 * A dump (or pre-dump): the init's tree, frozen through its cgroup, with the config's bind mounts, the masked files
 * (bound over with /dev/null), the device nodes and the joined namespaces marked external, as runc marks them. A
 * pre-dump saves memory only: no mounts, no external resources.
 */
export function dumpPlan(spec: Spec, o: DumpOptions, maskedFiles: string[]): DumpPlan {
  const options = commonOptions(o);
  const plan: DumpPlan = { type: o.preDump ? 'pre-dump' : 'dump', pid: o.pid, logFile: o.preDump ? 'pre-dump.log' : 'dump.log', options };
  if (o.leaveRunning) options.push(['leave-running']);
  if (o.freezeCgroup) options.push(['freeze-cgroup', o.freezeCgroup]);
  // Dumps after a pre-dump take only the memory changed since (soft-dirty tracking).
  if (o.parentPath) options.push(['prev-images-dir', o.parentPath], ['track-mem']);
  else if (o.preDump) options.push(['track-mem']);
  if (o.preDump) return plan;
  for (const m of bindMounts(spec)) options.push(['ext-mount-map', `${m.destination}:${m.destination}`]);
  for (const path of maskedFiles) options.push(['ext-mount-map', `${path}:/dev/null`]);
  for (const d of spec.linux?.devices ?? []) options.push(['ext-mount-map', `${d.path}:${d.path}`]);
  for (const [ns, inode] of Object.entries(o.externalNsInodes) as [ExternalNs, number][]) {
    options.push(['external', `${ns}[${inode}]:${EXTERNAL_NS[ns].key}`]);
  }
  // The engine holds the pty's master: its slave is external, and so is /dev/console, which create bound from it.
  if (o.externalTty) options.push(['external', o.externalTty], ['ext-mount-map', `${CONSOLE}:${CONSOLE}`]);
  return plan;
}

/**
 * The fds criu is started with: 0-2 are pocrun's own stdio (the engine's pipes), handed on for the init's
 * external pipes as runc hands them (descriptors.json); 3 is pocrun's go-ahead and 4 the launcher's error line
 * (restore.ts); the opened namespaces follow, then the new terminal's slave (terminal.ts).
 */
export const FIRST_NS_FD = 5;

/**
 * `criu restore`: the tree under the rootfs, the bind mounts back onto their sources, /dev/null for the masked
 * files, the init's stdio pipes from pocrun's own fds, the joined namespaces from opened fds, all the cgroups
 * under the container's.
 */
export function restoreArgs(spec: Spec, o: RestoreOptions): string[] {
  const options: CriuOption[] = [
    ['images-dir', o.imagePath],
    ['work-dir', o.workPath],
    ['log-file', 'restore.log'],
    ['verbosity', '4'],
    ['root', o.root],
    ['pidfile', o.pidFile],
    // Device files of a container are those of the host; their numbers may change between hosts.
    ['evasive-devices'],
    ...commonOptions(o),
    ['cgroup-root', o.cgroupRoot],
  ];
  // Detached: the init is restored as criu's sibling, so it is not criu's child but pocrun's, and is adopted by
  // the engine's subreaper (conmon, the shim) when pocrun exits, as runc's RstSibling. Else criu stays its
  // parent and waits for it.
  if (o.detach) options.push(['restore-detached'], ['restore-sibling']);
  if (o.actionScript) options.push(['action-script', o.actionScript]);
  for (const m of bindMounts(spec)) options.push(['ext-mount-map', `${m.destination}:${m.source}`]);
  if (spec.linux?.maskedPaths?.length) options.push(['ext-mount-map', '/dev/null:/dev/null']);
  for (const d of spec.linux?.devices ?? []) options.push(['ext-mount-map', `${d.path}:${d.path}`]);
  o.descriptors.forEach((d, fd) => {
    if (fd < 3 && d.includes('pipe:')) options.push(['inherit-fd', `fd[${fd}]:${d}`]);
  });
  for (const [ns, fd] of Object.entries(o.externalNsFds) as [ExternalNs, number][]) {
    options.push(['inherit-fd', `fd[${fd}]:${EXTERNAL_NS[ns].key}`]);
  }
  if (o.terminal) options.push(['inherit-fd', `fd[${o.terminal.fd}]:${o.terminal.key}`], ['ext-mount-map', `${CONSOLE}:${o.terminal.path}`]);
  return ['restore', ...commandLine(options)];
}

/**
 * The prestart and createRuntime hooks run where runc runs them at a restore: at criu's setup-namespaces step,
 * when the namespaces exist and the tasks are not yet restored, with the init's pid. criu's command line has
 * no notification but its action script (an executable it runs at every step, with CRTOOLS_SCRIPT_ACTION and
 * CRTOOLS_INIT_PID in its environment): this shell script, written into the state directory, ignores the other
 * steps and runs `pocrun restore-hooks ID PID` at that one.
 */
export function hooksScript(pocrunTs: string, root: string, id: string): string {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = setup-namespaces ] || exit 0\nexec ${q(pocrunTs)} --root ${q(root)} restore-hooks ${q(id)} "$CRTOOLS_INIT_PID"\n`;
}

/**
 * criu's own words about why it failed: the log's error lines (criu writes `Error (file:line): text`), the last
 * few of them, which name the cause far better than its exit status.
 */
export function criuLogErrors(log: string, max = 4): string[] {
  const all = log.split('\n');
  // criu's own error lines first; other complaints (its notices are not prefixed) only when it printed none.
  let lines = all.filter((l) => /\bError \(/.test(l));
  if (lines.length === 0) lines = all.filter((l) => /\berror\b|Can't|Unexpected/i.test(l) && !/\bWarn/.test(l));
  return lines.slice(-max).map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, '').trim());
}
