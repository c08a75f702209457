/**
 * `pocrun exec`: the process to run (runc's rules for --process and for the flags) and the plan that runs it in
 * a running container. Pure, like compile.ts: tested without root.
 */
import { posix } from 'node:path';
import type { Spec } from '../spec/generated/config.js';
import { validate_config } from '../spec/generated/validators.js';
import { describeValidationError, parseUserJson } from '../spec/validate.js';
import { PocrunError } from '../errors.js';
import { capabilityNumber } from '../vocabulary/capabilities.js';
import { consoleStep, processSteps } from './compile.js';
import { execAffinitySteps, type HostFacts } from './process-attrs.js';
import { JOIN_ORDER } from './namespaces.js';
import { rlimitNumber, rlimitValue } from './rlimits.js';
import { seccompListenerSteps } from './seccomp.js';
import type { Step } from './wire.js';

export type Process = NonNullable<Spec['process']>;

/** The exec flags that shape the process (everything but --process, --detach, --pid-file, --console-socket). */
export interface ExecFlags {
  args: string[];
  tty: boolean;
  cwd?: string;
  env: string[];
  /** UID[:GID], numbers only (as runc). */
  user?: string;
  additionalGids: string[];
  caps: string[];
  noNewPrivs: boolean;
  apparmor?: string;
  processLabel?: string;
}

/**
 * A process.json given with --process: validated as the `process` of a config (process.json pointers in the
 * errors), then runc's own checks. A missing `user` is root, as runc's decoder leaves it.
 */
export function parseProcessFile(text: string, where: string): Process {
  const doc = parseUserJson(text, where);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new PocrunError(`${where}: must be a JSON object`);
  if (!validate_config({ ociVersion: '1.0.0', process: doc })) {
    const rest = describeValidationError(validate_config.errors ?? []).replace(/^\/process/, '');
    throw new PocrunError(`${where} ${rest.startsWith(': ') ? `/${rest}` : rest}`);
  }
  const p = doc as Process;
  const user = p.user ?? {};
  const out: Process = { ...p, user: { ...user, uid: user.uid ?? 0, gid: user.gid ?? 0 } };
  checkProcess(out, where);
  return out;
}

/** runc's getProcess without --process: the container's own process, changed by the flags. */
export function processFromFlags(base: Process, f: ExecFlags): Process {
  // JSON round trip, not structuredClone: that keeps arrays shared between sets shared (defaultSpec() does that).
  const p: Process = JSON.parse(JSON.stringify(base));
  p.args = f.args;
  if (f.cwd) p.cwd = f.cwd;
  if (f.apparmor) p.apparmorProfile = f.apparmor;
  if (f.processLabel) p.selinuxLabel = f.processLabel;
  if (f.caps.length) {
    const caps = (p.capabilities ??= {});
    for (const cap of f.caps) {
      if (capabilityNumber(cap) === undefined) throw new PocrunError(`exec --cap: unknown capability ${JSON.stringify(cap)}`);
      const name = canonicalCap(cap);
      // Not inheritable (CVE-2022-29162): a capability in the inheritable set would survive an execve of a
      // program with file capabilities; and not ambient, which needs inheritable.
      for (const set of ['bounding', 'effective', 'permitted'] as const) {
        const list = (caps[set] ??= []);
        if (!list.includes(name)) list.push(name);
      }
    }
  }
  p.env = [...(p.env ?? []), ...f.env];
  p.terminal = f.tty;
  if (f.noNewPrivs) p.noNewPrivileges = true;
  const user = (p.user ??= { uid: 0, gid: 0 });
  if (f.user !== undefined && f.user !== '') {
    const m = /^(\d+)(?::(\d+))?$/.exec(f.user);
    if (!m) throw new PocrunError(`exec --user: ${JSON.stringify(f.user)} is not UID or UID:GID (numbers)`);
    user.uid = Number(m[1]);
    if (m[2] !== undefined) user.gid = Number(m[2]);
  }
  for (const g of f.additionalGids) {
    if (!/^\d+$/.test(g)) throw new PocrunError(`exec --additional-gids: ${JSON.stringify(g)} is not a number`);
    (user.additionalGids ??= []).push(Number(g));
  }
  checkProcess(p, 'exec');
  return p;
}

function canonicalCap(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/** runc's validateProcessSpec (an AppArmor profile or SELinux label is checked against the host by processSteps). */
function checkProcess(p: Process, where: string): void {
  if (!p.cwd) throw new PocrunError(`${where}: the process's cwd must not be empty`);
  if (!posix.isAbsolute(p.cwd)) throw new PocrunError(`${where}: the process's cwd must be an absolute path, got ${JSON.stringify(p.cwd)}`);
  if (!p.args?.length) throw new PocrunError(`${where}: the process's args must not be empty`);
}

/** Keeps the last value of each variable, where its first one was (runc: the last one wins). */
export function dedupeEnv(env: readonly string[]): string[] {
  const last = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new PocrunError(`environment variable ${JSON.stringify(kv)}: not NAME=VALUE`);
    last.set(kv.slice(0, eq), kv);
  }
  return [...last.values()];
}

export interface ExecPlanOptions {
  /** Namespaces of the container's init to join: [name, /proc/<pid>/ns/<name>], any order. */
  namespaces: [name: string, path: string][];
  /**
   * The init's root (/proc/<pid>/root) when the container shares the runtime's mount namespace: joining it does
   * not enter the container's root, so the process is chrooted there, as the init was.
   */
  root?: string;
  consoleSocket?: string;
  preserveFds: number;
  /**
   * Rootless: the user namespace is joined first, as runc joins it. An unprivileged caller has the rights to
   * join the others only as root of the container's user namespace, which owns them. (Root joins it after the
   * others, with the host's rights, which a namespace owned by another user namespace may need.)
   */
  userNamespaceFirst?: boolean;
  /** `fork`: --detach (the process is reparented to the caller's subreaper); `wait`: the helper waits for it. */
  mode: 'fork' | 'wait';
  /** What the plan needs to know about the host (which LSMs it has): given, never probed here. */
  host: Pick<HostFacts, 'security'>;
}

/**
 * The exec plan (PROTOCOL.md): connect the console socket (a host path), join the namespaces (user first,
 * mount last), fork. The child first stops at `sync cgroup` (the runtime moves it into the container's cgroup:
 * the helper's parent, which stays in `wait` mode, never enters it), then runs the process steps of create without
 * the exec.fifo wait and without `created`; the runtime's reply to `sync cgroup` carries the container state (for
 * a seccomp agent, as `sync hooks` does for create). `container` is the container's config: its seccomp profile and, when the process has none,
 * its rlimits apply to the exec'd process too, as in runc.
 */
export function compileExecPlan(container: Spec, process: Process, opts: ExecPlanOptions): Step[] {
  if (process.terminal && !opts.consoleSocket) {
    throw new PocrunError('exec: a terminal (--tty or process.terminal) needs --console-socket');
  }
  const steps: Step[] = [];
  if (process.terminal) steps.push(['console-connect', opts.consoleSocket!, '/process/terminal']);
  // The container's seccomp agent (SCMP_ACT_NOTIFY) gets the exec'd process's listener fd too: its socket is a
  // host path, connected before setns. The filter itself is built and loaded by processSteps.
  steps.push(...seccompListenerSteps(container));
  // Before setns: in a container's user namespace the process could not lower its oom_score_adj.
  if (process.oomScoreAdj !== undefined) steps.push(['oom-score-adj', String(process.oomScoreAdj), '/process/oomScoreAdj']);
  const rank = (name: string) => (opts.userNamespaceFirst && name === 'user' ? -1 : JOIN_ORDER.indexOf(name));
  const join = [...opts.namespaces].sort((a, b) => rank(a[0]) - rank(b[0]));
  for (const [name, path] of join) {
    if (!JOIN_ORDER.includes(name)) throw new PocrunError(`exec: unknown namespace type ${JSON.stringify(name)}`);
    steps.push(['setns', path, name, '-']);
  }
  const affinity = execAffinitySteps(process.execCPUAffinity);
  // The helper, and with it the child, runs on the initial CPUs until the child is in the container's cgroup.
  if (affinity.initial) steps.push(affinity.initial);
  steps.push(['clone', opts.mode]);
  steps.push(['sync', 'cgroup']);
  if (affinity.final) steps.push(affinity.final);
  steps.push(['setsid']);
  if (opts.root) steps.push(['root-open', opts.root, '-'], ['chroot-only', '-']);
  if (process.terminal) steps.push(consoleStep(process));
  const rlimits = process.rlimits?.length ? process.rlimits : (container.process?.rlimits ?? []);
  rlimits.forEach((r, i) => {
    const ref = `/process/rlimits/${i}`;
    steps.push(['rlimit', String(rlimitNumber(r.type, `${ref}/type`)), rlimitValue(r.soft), rlimitValue(r.hard), ref]);
  });
  const env = dedupeEnv(process.env ?? []);
  const spec: Spec = { ...container, process: { ...process, env }, hooks: undefined };
  // No `created`: the runtime reads the sync socket to EOF, which comes with the execve (close-fds makes it
  // close-on-exec), so that a detached exec returns once the process runs and an execve failure is an error.
  steps.push(...processSteps(spec, opts.preserveFds, true, opts.host.security).filter((s) => s[0] !== 'created'));
  return steps;
}
