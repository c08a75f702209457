import type { Spec } from '../spec/generated/config.js';
import { ConfigFieldError } from '../errors.js';
import type { Step } from './wire.js';

type Seccomp = NonNullable<NonNullable<Spec['linux']>['seccomp']>;

/** SCMP_ACT_* → the helper's action word. SCMP_ACT_KILL is libseccomp's KILL_THREAD. */
export const SECCOMP_ACTIONS: Record<string, string> = {
  SCMP_ACT_KILL: 'kill-thread',
  SCMP_ACT_KILL_THREAD: 'kill-thread',
  SCMP_ACT_KILL_PROCESS: 'kill-process',
  SCMP_ACT_TRAP: 'trap',
  SCMP_ACT_ERRNO: 'errno',
  SCMP_ACT_TRACE: 'trace',
  SCMP_ACT_ALLOW: 'allow',
  SCMP_ACT_LOG: 'log',
  SCMP_ACT_NOTIFY: 'notify',
};

/** SCMP_CMP_* → the helper's operator word. */
export const SECCOMP_OPERATORS: Record<string, string> = {
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_MASKED_EQ: 'masked-eq',
};

/** SECCOMP_FILTER_FLAG_* → the helper's flag word. */
export const SECCOMP_FLAGS: Record<string, string> = {
  SECCOMP_FILTER_FLAG_TSYNC: 'tsync',
  SECCOMP_FILTER_FLAG_LOG: 'log',
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 'spec-allow',
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 'wait-killable-recv',
};

/** SCMP_ARCH_* of the runtime-spec (libseccomp 2.6) → libseccomp's arch name (seccomp_arch_resolve_name). */
export const SECCOMP_ARCHES: Record<string, string> = Object.fromEntries(
  [
    'X86', 'X86_64', 'X32', 'ARM', 'AARCH64', 'MIPS', 'MIPS64', 'MIPS64N32', 'MIPSEL', 'MIPSEL64', 'MIPSEL64N32',
    'PPC', 'PPC64', 'PPC64LE', 'S390', 'S390X', 'PARISC', 'PARISC64', 'RISCV64', 'LOONGARCH64', 'M68K', 'SH', 'SHEB',
  ].map((a) => [`SCMP_ARCH_${a}`, a.toLowerCase()]),
);

/**
 * Syscalls the helper itself makes between loading the filter and execve (sending the listener fd, closing
 * the socket): a NOTIFY on them would wait for an agent that has not got the fd yet.
 */
const NOTIFY_FORBIDDEN = new Set(['sendmsg', 'close']);

const EPERM = 1;
const ENOSYS = 38;
/** Default actions that let a syscall through (trace: a tracer handles what it does not know), as runc counts them. */
const PERMISSIVE = new Set(['allow', 'log', 'trace']);
const U64_MAX = (1n << 64n) - 1n;
/** runc ignores names that libseccomp does not know on this architecture; anything not shaped like one is a typo. */
const SYSCALL_NAME = /^[a-z_][a-z0-9_]{0,63}$/;

export interface SeccompSteps {
  /** Parent stage, before any setns: connect to the agent's socket (only with SCMP_ACT_NOTIFY). */
  listener: Step[];
  /** Child stage, before `created`: build and compile the filter (errors are create errors). */
  build: Step[];
  /** The last step before execve. */
  load: Step;
  /** Whether a notify fd goes to listenerPath (the helper then needs the container state from a sync). */
  notify: boolean;
}

/** An action as the helper's two fields: word and errno (`-` for an action without one). */
function action(name: string, errnoRet: number | undefined, where: string, errnoWhere: string): [string, string] {
  const word = SECCOMP_ACTIONS[name];
  if (!word) throw new ConfigFieldError(where, `unknown seccomp action ${JSON.stringify(name)}`);
  if (word === 'errno' || word === 'trace') {
    const value = errnoRet ?? EPERM;
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
      throw new ConfigFieldError(errnoWhere, `must be an integer from 0 to 65535, got ${value}`);
    }
    return [word, String(value)];
  }
  if (errnoRet !== undefined) {
    throw new ConfigFieldError(errnoWhere, `only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not ${name}`);
  }
  return [word, '-'];
}

/** A JSON number as a uint64 in decimal. Above 2^53 JSON has already rounded it; 2^64 is taken as 2^64-1. */
function u64(value: number, where: string): string {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || !Number.isInteger(value)) {
    throw new ConfigFieldError(where, `must be an unsigned 64-bit integer, got ${JSON.stringify(value)}`);
  }
  let big = BigInt(value);
  if (big > U64_MAX) {
    if (big > U64_MAX + 1n) throw new ConfigFieldError(where, `${value} is larger than 2^64-1`);
    big = U64_MAX;
  }
  return big.toString();
}

/**
 * linux.seccomp → the helper's seccomp steps (PROTOCOL.md, "seccomp"). Every name is checked here; the helper
 * only resolves syscall names (unknown ones on this architecture are skipped, as runc does) and drives libseccomp.
 *
 * `finalCaps`: loading a filter without no_new_privs needs CAP_SYS_ADMIN, which the container may not keep;
 * the caller then keeps it through the `caps` step, and the load step sets these sets right after loading.
 */
export function seccompSteps(
  seccomp: Seccomp,
  ociVersion: string,
  finalCaps?: { effective: bigint; permitted: bigint; inheritable: bigint },
): SeccompSteps {
  const base = '/linux/seccomp';
  const [defWord, defErrno] = action(seccomp.defaultAction, seccomp.defaultErrnoRet, `${base}/defaultAction`, `${base}/defaultErrnoRet`);
  if (defWord === 'notify') {
    throw new ConfigFieldError(`${base}/defaultAction`, `SCMP_ACT_NOTIFY cannot be the default action (the helper's own syscalls would wait for the agent)`);
  }
  const flags = (seccomp.flags ?? []).map((f, i) => {
    const word = SECCOMP_FLAGS[f];
    if (!word) throw new ConfigFieldError(`${base}/flags/${i}`, `unknown seccomp flag ${JSON.stringify(f)}`);
    return word;
  });
  const build: Step[] = [['seccomp-init', defWord, defErrno, [...new Set(flags)].join(','), `${base}/defaultAction`]];
  (seccomp.architectures ?? []).forEach((a, i) => {
    const arch = SECCOMP_ARCHES[a];
    if (!arch) throw new ConfigFieldError(`${base}/architectures/${i}`, `unknown architecture ${JSON.stringify(a)}`);
    build.push(['seccomp-arch', arch, `${base}/architectures/${i}`]);
  });

  let notify = false;
  const named = new Set<string>();
  (seccomp.syscalls ?? []).forEach((rule, i) => {
    const ref = `${base}/syscalls/${i}`;
    const [word, errno] = action(rule.action, rule.errnoRet, `${ref}/action`, `${ref}/errnoRet`);
    if (!rule.names?.length) throw new ConfigFieldError(`${ref}/names`, 'must name at least one syscall');
    rule.names.forEach((name, j) => {
      if (typeof name !== 'string' || !SYSCALL_NAME.test(name)) {
        throw new ConfigFieldError(`${ref}/names/${j}`, `${JSON.stringify(name)} is not a syscall name`);
      }
      if (word === 'notify' && NOTIFY_FORBIDDEN.has(name)) {
        throw new ConfigFieldError(`${ref}/names/${j}`, `SCMP_ACT_NOTIFY cannot be used for ${name}: the runtime needs it to hand the notify fd to the agent`);
      }
    });
    for (const name of rule.names) named.add(name);
    // libseccomp refuses a rule whose action is the default one; it would change nothing anyway.
    if (word === defWord && errno === defErrno) return;
    if (word === 'notify') notify = true;
    const conds = (rule.args ?? []).map((arg, k) => {
      const where = `${ref}/args/${k}`;
      const op = SECCOMP_OPERATORS[arg.op];
      if (!op) throw new ConfigFieldError(`${where}/op`, `unknown seccomp operator ${JSON.stringify(arg.op)}`);
      if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
        throw new ConfigFieldError(`${where}/index`, `a syscall has arguments 0 to 5, got ${arg.index}`);
      }
      return { index: arg.index, text: `${arg.index}:${op}:${u64(arg.value, `${where}/value`)}:${u64(arg.valueTwo ?? 0, `${where}/valueTwo`)}` };
    });
    // As runc: conditions on distinct arguments must all hold (one rule); several conditions on one argument
    // cannot be ANDed by libseccomp, so each becomes a rule of its own (any of them matches).
    const counts = new Map<number, number>();
    for (const c of conds) counts.set(c.index, (counts.get(c.index) ?? 0) + 1);
    const sets = [...counts.values()].some((n) => n > 1) ? conds.map((c) => [c.text]) : [conds.map((c) => c.text)];
    for (const name of rule.names) for (const set of sets) build.push(['seccomp-rule', word, errno, name, ...set, ref]);
  });

  const listener: Step[] = [];
  if (seccomp.listenerMetadata !== undefined && !seccomp.listenerPath) {
    throw new ConfigFieldError(`${base}/listenerMetadata`, 'needs listenerPath');
  }
  if (notify) {
    if (!seccomp.listenerPath) throw new ConfigFieldError(`${base}/listenerPath`, 'required when a rule uses SCMP_ACT_NOTIFY');
    if (!seccomp.listenerPath.startsWith('/')) {
      throw new ConfigFieldError(`${base}/listenerPath`, `must be an absolute path, got ${JSON.stringify(seccomp.listenerPath)}`);
    }
    // The container process state (config-linux.md) without pid and state, which the helper adds.
    const head = JSON.stringify({
      ociVersion,
      fds: ['seccompFd'],
      ...(seccomp.listenerMetadata !== undefined ? { metadata: seccomp.listenerMetadata } : {}),
    }).slice(0, -1);
    listener.push(['seccomp-listener', seccomp.listenerPath, head, `${base}/listenerPath`]);
  }
  // A syscall newer than every one the profile names gets ENOSYS, not the default action, so that a C library
  // falls back to the older call (as runc). Pointless when the default lets it through or is ENOSYS already.
  if (!PERMISSIVE.has(defWord) && !(defWord === 'errno' && defErrno === String(ENOSYS))) {
    build.push(['seccomp-enosys', ...named, base]);
  }
  build.push(['seccomp-compile', base]);
  const load: Step = finalCaps
    ? ['seccomp-load', finalCaps.effective.toString(16), finalCaps.permitted.toString(16), finalCaps.inheritable.toString(16), base]
    : ['seccomp-load', base];
  return { listener, build, load, notify };
}

/**
 * For a plan that runs the process steps (which build and load the filter) and must connect the agent's socket
 * itself in its parent stage, before any setns (exec): [] unless a rule uses SCMP_ACT_NOTIFY.
 */
export function seccompListenerSteps(spec: Spec): Step[] {
  const seccomp = spec.linux?.seccomp;
  return seccomp ? seccompSteps(seccomp, spec.ociVersion).listener : [];
}
