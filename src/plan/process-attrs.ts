/**
 * The process attributes of config.md and config-linux.md that are one syscall each in the helper (scheduler,
 * I/O priority, personality, LSM labels) and the check on time offsets. Pure: what they need to know about the
 * host is given (HostFacts). The sysctl rule is src/vocabulary/sysctls.ts, which poc's --sysctl shares.
 */
import type { Spec } from '../spec/generated/config.js';
import { ConfigFieldError } from '../errors.js';
import type { Step } from './wire.js';

type Process = NonNullable<Spec['process']>;
type Linux = NonNullable<Spec['linux']>;

/** SCHED_* numbers of <linux/sched.h>. SCHED_ISO is in the spec but not in Linux. */
export const SCHED_POLICIES: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};

export const SCHED_FLAGS: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01, SCHED_FLAG_RECLAIM: 0x02, SCHED_FLAG_DL_OVERRUN: 0x04,
  SCHED_FLAG_KEEP_POLICY: 0x08, SCHED_FLAG_KEEP_PARAMS: 0x10, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20,
  SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};

/** `scheduler policy nice priority flags runtime deadline period ref` (sched_setattr). */
export function schedulerStep(s: NonNullable<Process['scheduler']>): Step {
  const ref = '/process/scheduler';
  if (s.policy === 'SCHED_ISO') throw new ConfigFieldError(`${ref}/policy`, 'SCHED_ISO is not implemented by Linux');
  const policy = SCHED_POLICIES[s.policy];
  if (policy === undefined) throw new ConfigFieldError(`${ref}/policy`, `unknown scheduling policy ${JSON.stringify(s.policy)}`);
  const nice = s.nice ?? 0;
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new ConfigFieldError(`${ref}/nice`, `must be from -20 to 19, got ${nice}`);
  const priority = s.priority ?? 0;
  const realtime = s.policy === 'SCHED_FIFO' || s.policy === 'SCHED_RR';
  if (realtime && (!Number.isInteger(priority) || priority < 1 || priority > 99)) {
    throw new ConfigFieldError(`${ref}/priority`, `${s.policy} needs a priority from 1 to 99, got ${priority}`);
  }
  if (!realtime && priority !== 0) {
    throw new ConfigFieldError(`${ref}/priority`, `only SCHED_FIFO and SCHED_RR have a priority (${s.policy} must have 0)`);
  }
  let flags = 0;
  (s.flags ?? []).forEach((f, i) => {
    const bit = SCHED_FLAGS[f];
    if (bit === undefined) throw new ConfigFieldError(`${ref}/flags/${i}`, `unknown scheduler flag ${JSON.stringify(f)}`);
    flags |= bit;
  });
  const runtime = s.runtime ?? 0;
  const deadline = s.deadline ?? 0;
  const period = s.period ?? 0;
  for (const [name, v] of [['runtime', runtime], ['deadline', deadline], ['period', period]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new ConfigFieldError(`${ref}/${name}`, `must be a non-negative integer (nanoseconds), got ${v}`);
  }
  if (s.policy === 'SCHED_DEADLINE') {
    if (runtime === 0 || deadline === 0) throw new ConfigFieldError(ref, 'SCHED_DEADLINE needs runtime and deadline');
    if (runtime > deadline || (period !== 0 && deadline > period)) {
      throw new ConfigFieldError(ref, `SCHED_DEADLINE needs runtime <= deadline <= period, got ${runtime}, ${deadline}, ${period}`);
    }
  } else if (runtime || deadline || period) {
    throw new ConfigFieldError(ref, 'runtime, deadline and period are for SCHED_DEADLINE only');
  }
  return ['scheduler', String(policy), String(nice), String(priority), String(flags), String(runtime), String(deadline), String(period), ref];
}

const IOPRIO_CLASSES: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };

/** `ioprio class priority ref` (ioprio_set of the process itself; children inherit it). */
export function ioPriorityStep(io: NonNullable<Process['ioPriority']>): Step {
  const ref = '/process/ioPriority';
  const cls = IOPRIO_CLASSES[io.class];
  if (cls === undefined) throw new ConfigFieldError(`${ref}/class`, `unknown I/O priority class ${JSON.stringify(io.class)}`);
  const prio = io.priority ?? 0;
  if (!Number.isInteger(prio) || prio < 0 || prio > 7) throw new ConfigFieldError(`${ref}/priority`, `must be from 0 to 7, got ${prio}`);
  return ['ioprio', String(cls), String(prio), ref];
}

/** <linux/personality.h>: the execution domains the spec allows and the flags. */
const PERSONALITY_DOMAINS: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };
export const PERSONALITY_FLAGS: Record<string, number> = {
  UNAME26: 0x0020000, ADDR_NO_RANDOMIZE: 0x0040000, FDPIC_FUNCPTRS: 0x0080000, MMAP_PAGE_ZERO: 0x0100000,
  ADDR_COMPAT_LAYOUT: 0x0200000, READ_IMPLIES_EXEC: 0x0400000, ADDR_LIMIT_32BIT: 0x0800000, SHORT_INODE: 0x1000000,
  WHOLE_SECONDS: 0x2000000, STICKY_TIMEOUTS: 0x4000000, ADDR_LIMIT_3GB: 0x8000000,
};

/** `personality value ref` (personality(2)). */
export function personalityStep(p: NonNullable<Linux['personality']>): Step {
  const ref = '/linux/personality';
  const domain = PERSONALITY_DOMAINS[p.domain ?? 'LINUX'];
  if (domain === undefined) throw new ConfigFieldError(`${ref}/domain`, `unknown execution domain ${JSON.stringify(p.domain)} (LINUX or LINUX32)`);
  let value = domain;
  (p.flags ?? []).forEach((f, i) => {
    const bit = PERSONALITY_FLAGS[f];
    if (bit === undefined) throw new ConfigFieldError(`${ref}/flags/${i}`, `unknown personality flag ${JSON.stringify(f)}`);
    value |= bit;
  });
  return ['personality', String(value), ref];
}

/** MPOL_* modes of <linux/mempolicy.h>, and the flags that are or'ed into the mode. */
export const MEMPOLICY_MODES: Record<string, number> = {
  MPOL_DEFAULT: 0, MPOL_PREFERRED: 1, MPOL_BIND: 2, MPOL_INTERLEAVE: 3, MPOL_LOCAL: 4, MPOL_PREFERRED_MANY: 5,
  MPOL_WEIGHTED_INTERLEAVE: 6,
};
export const MEMPOLICY_FLAGS: Record<string, number> = {
  MPOL_F_NUMA_BALANCING: 1 << 13, MPOL_F_RELATIVE_NODES: 1 << 14, MPOL_F_STATIC_NODES: 1 << 15,
};
/** set_mempolicy(2): these modes take no nodes, these need at least one (MPOL_PREFERRED: none means local). */
const NODELESS_MODES = new Set(['MPOL_DEFAULT', 'MPOL_LOCAL']);
const NODE_MODES = new Set(['MPOL_BIND', 'MPOL_INTERLEAVE', 'MPOL_WEIGHTED_INTERLEAVE', 'MPOL_PREFERRED_MANY']);
/** The helper's node mask holds 1024 nodes, as the kernel's MAX_NUMNODES at most. */
const MAX_MEMORY_NODE = 1023;

/** `mempolicy mode nodes ref` (set_mempolicy): the mode with its flags, the nodes as a plain list. */
export function memoryPolicyStep(p: NonNullable<Linux['memoryPolicy']>): Step {
  const ref = '/linux/memoryPolicy';
  const name = p.mode;
  if (name === undefined) throw new ConfigFieldError(`${ref}/mode`, 'required');
  let mode = MEMPOLICY_MODES[name];
  if (mode === undefined) throw new ConfigFieldError(`${ref}/mode`, `unknown memory policy mode ${JSON.stringify(name)}`);
  (p.flags ?? []).forEach((f, i) => {
    const bit = MEMPOLICY_FLAGS[f];
    if (bit === undefined) throw new ConfigFieldError(`${ref}/flags/${i}`, `unknown memory policy flag ${JSON.stringify(f)}`);
    mode! |= bit;
  });
  const nodes = numberList(p.nodes ?? '', MAX_MEMORY_NODE, 'a node or a range of nodes', `${ref}/nodes`);
  if (NODELESS_MODES.has(name) && nodes.length) throw new ConfigFieldError(`${ref}/nodes`, `${name} takes no nodes`);
  if (NODE_MODES.has(name) && !nodes.length) throw new ConfigFieldError(`${ref}/nodes`, `${name} needs at least one node`);
  return ['mempolicy', String(mode), nodes.join(','), ref];
}

/** A list of memory nodes or CPUs, "0-3,7" → [0, 1, 2, 3, 7]; anything else is an error naming the field. */
function numberList(text: string, max: number, what: string, pointer: string): number[] {
  if (text === '') return [];
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const [from, to] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [NaN, NaN];
    if (!m || from > to || to > max) throw new ConfigFieldError(pointer, `${JSON.stringify(part)} is not ${what} from 0 to ${max} (as in "0-3,7")`);
    for (let n = from; n <= to; n++) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

/** The helper's CPU mask holds CPU_SETSIZE (1024) CPUs. */
const MAX_CPU = 1023;

/**
 * process.execCPUAffinity, for an exec'd process (config.md; not for the init): `affinity cpus ref` steps
 * (sched_setaffinity), `initial` for the helper before the process joins the container's cgroup, `final` after.
 */
export function execAffinitySteps(affinity: Process['execCPUAffinity']): { initial?: Step; final?: Step } {
  const step = (which: 'initial' | 'final'): Step | undefined => {
    const text = affinity?.[which];
    if (!text) return undefined;
    const ref = `/process/execCPUAffinity/${which}`;
    return ['affinity', numberList(text, MAX_CPU, 'a CPU or a range of CPUs', ref).join(','), ref];
  };
  const [initial, final] = [step('initial'), step('final')];
  return { ...(initial ? { initial } : {}), ...(final ? { final } : {}) };
}

/** Which Linux security modules the host has enabled. */
export interface HostSecurity {
  apparmor: boolean;
  selinux: boolean;
}

/**
 * What a plan needs to know about the host. A plan never looks: src/runtime/host-probes.ts gathers these for
 * pocrun, and the tests give their own.
 */
export interface HostFacts {
  /** Which LSMs the host has: asked only when the config sets a label (the probe reads /sys). */
  security: () => HostSecurity;
  /** Whether a namespace file is the runtime's own (the host's) namespace of that type. */
  isHostNamespace: (ns: string, path: string) => boolean;
  /** Whether /proc/kcore exists on the host (runc links /dev/core to it). */
  hasKcore: boolean;
  /**
   * Whether the runtime itself runs in a user namespace (rootless podman calls it from its own): there mknod is
   * refused too, so devices are bound from the host's nodes, as runc does when userns.RunningInUserNS().
   */
  runtimeInUserNamespace: boolean;
}

/** `apparmor profile ref` and `selinux label ref`: applied on execve, through /proc/self/attr. */
export function securityLabelSteps(spec: Spec, host: () => HostSecurity): Step[] {
  const process = spec.process!;
  const steps: Step[] = [];
  if (process.apparmorProfile) {
    if (!host().apparmor) {
      throw new ConfigFieldError('/process/apparmorProfile', `AppArmor is not enabled on this host (no /sys/kernel/security/apparmor), so profile ${JSON.stringify(process.apparmorProfile)} cannot be applied`);
    }
    steps.push(['apparmor', process.apparmorProfile, '/process/apparmorProfile']);
  }
  if (process.selinuxLabel) {
    if (!host().selinux) {
      throw new ConfigFieldError('/process/selinuxLabel', `SELinux is not enabled on this host (no /sys/fs/selinux), so label ${JSON.stringify(process.selinuxLabel)} cannot be applied`);
    }
    steps.push(['selinux', process.selinuxLabel, '/process/selinuxLabel']);
  }
  return steps;
}

/** linux.mountLabel: only with SELinux, and the mount context option is not implemented. */
export function checkMountLabel(spec: Spec, host: () => HostSecurity): void {
  const label = spec.linux?.mountLabel;
  if (!label) return;
  if (!host().selinux) {
    throw new ConfigFieldError('/linux/mountLabel', `SELinux is not enabled on this host (no /sys/fs/selinux), so mount label ${JSON.stringify(label)} cannot be applied`);
  }
  throw new ConfigFieldError('/linux/mountLabel', 'SELinux mount labels are not supported by pocrun yet');
}

/** `time-offset clock seconds nanoseconds ref` for each of linux.timeOffsets (parent stage, before clone). */
export function timeOffsetSteps(linux: Linux, timeNamespace: 'new' | 'joined' | 'none'): Step[] {
  const offsets = linux.timeOffsets;
  if (!offsets || Object.keys(offsets).length === 0) return [];
  if (timeNamespace === 'none') throw new ConfigFieldError('/linux/timeOffsets', 'time offsets need a time namespace (linux.namespaces type "time")');
  if (timeNamespace === 'joined') throw new ConfigFieldError('/linux/timeOffsets', 'the offsets of a joined time namespace cannot be changed');
  const steps: Step[] = [];
  for (const [clock, off] of Object.entries(offsets)) {
    const ref = `/linux/timeOffsets/${clock}`;
    if (clock !== 'monotonic' && clock !== 'boottime') throw new ConfigFieldError(ref, `unknown clock ${JSON.stringify(clock)} (monotonic or boottime)`);
    const secs = off?.secs ?? 0;
    const nanos = off?.nanosecs ?? 0;
    if (!Number.isSafeInteger(secs)) throw new ConfigFieldError(`${ref}/secs`, `must be an integer, got ${secs}`);
    if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
      throw new ConfigFieldError(`${ref}/nanosecs`, `must be from 0 to 999999999, got ${nanos}`);
    }
    steps.push(['time-offset', clock, String(secs), String(nanos), ref]);
  }
  return steps;
}
