import t from 'tap';
import { checkSysctl, type SysctlContext } from '../../src/vocabulary/sysctls.js';
import {
  ioPriorityStep, memoryPolicyStep, personalityStep, schedulerStep, securityLabelSteps, timeOffsetSteps,
} from '../../src/plan/process-attrs.js';
import { compileCreatePlan, type CreatePlanOptions } from '../../src/plan/compile.js';
import { defaultSpec } from '../../src/spec/default.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

type Sched = NonNullable<NonNullable<Spec['process']>['scheduler']>;

t.test('scheduler: policies, flags, checks', async (t) => {
  t.same(schedulerStep({ policy: 'SCHED_BATCH', nice: 5 }), ['scheduler', '3', '5', '0', '0', '0', '0', '0', '/process/scheduler']);
  t.same(schedulerStep({ policy: 'SCHED_FIFO', priority: 10, flags: ['SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_UTIL_CLAMP_MAX'] }),
    ['scheduler', '1', '0', '10', '65', '0', '0', '0', '/process/scheduler']);
  t.same(schedulerStep({ policy: 'SCHED_DEADLINE', runtime: 10_000_000, deadline: 30_000_000, period: 30_000_000 }).slice(1, 8),
    ['6', '0', '0', '0', '10000000', '30000000', '30000000']);
  const bad: [Sched, RegExp][] = [
    [{ policy: 'SCHED_ISO' }, /\/process\/scheduler\/policy: SCHED_ISO is not implemented by Linux/],
    [{ policy: 'SCHED_OTHER', nice: 20 }, /\/process\/scheduler\/nice: must be from -20 to 19/],
    [{ policy: 'SCHED_OTHER', priority: 3 }, /\/process\/scheduler\/priority: only SCHED_FIFO and SCHED_RR/],
    [{ policy: 'SCHED_RR' }, /\/process\/scheduler\/priority: SCHED_RR needs a priority from 1 to 99/],
    [{ policy: 'SCHED_OTHER', runtime: 5 }, /runtime, deadline and period are for SCHED_DEADLINE only/],
    [{ policy: 'SCHED_DEADLINE', runtime: 5 }, /SCHED_DEADLINE needs runtime and deadline/],
    [{ policy: 'SCHED_DEADLINE', runtime: 5, deadline: 3 }, /runtime <= deadline <= period/],
    [{ policy: 'SCHED_OTHER', flags: ['SCHED_FLAG_X' as 'SCHED_FLAG_RECLAIM'] }, /\/process\/scheduler\/flags\/0: unknown scheduler flag/],
    [{ policy: 'SCHED_X' as 'SCHED_OTHER' }, /\/process\/scheduler\/policy: unknown scheduling policy/],
  ];
  for (const [s, re] of bad) t.throws(() => schedulerStep(s), re, JSON.stringify(s));
});

t.test('ioPriority and personality', async (t) => {
  t.same(ioPriorityStep({ class: 'IOPRIO_CLASS_IDLE', priority: 4 }), ['ioprio', '3', '4', '/process/ioPriority']);
  t.same(ioPriorityStep({ class: 'IOPRIO_CLASS_RT', priority: 0 }), ['ioprio', '1', '0', '/process/ioPriority']);
  t.throws(() => ioPriorityStep({ class: 'IOPRIO_CLASS_BE', priority: 8 }), /\/process\/ioPriority\/priority: must be from 0 to 7/);
  t.throws(() => ioPriorityStep({ class: 'X' as 'IOPRIO_CLASS_BE', priority: 1 }), /\/process\/ioPriority\/class: unknown/);
  t.same(personalityStep({ domain: 'LINUX32' }), ['personality', '8', '/linux/personality']);
  t.same(personalityStep({ domain: 'LINUX', flags: ['ADDR_NO_RANDOMIZE'] }), ['personality', String(0x40000), '/linux/personality']);
  t.throws(() => personalityStep({ domain: 'LINUX', flags: ['NOPE'] }), /\/linux\/personality\/flags\/0: unknown personality flag "NOPE"/);
  t.throws(() => personalityStep({ domain: 'SVR4' as 'LINUX' }), /\/linux\/personality\/domain: unknown execution domain/);
});

t.test('sysctl: namespaced keys only, with a namespace of the container own', async (t) => {
  const ctx = (has: string[], joins: Record<string, string> = {}, host = false, hostnameSet = false): SysctlContext => ({
    has: (ns) => has.includes(ns), joinPath: (ns) => joins[ns], isHostNamespace: () => host, hostnameSet,
  });
  const all = ctx(['ipc', 'net', 'uts']);
  for (const key of ['kernel.shmmax', 'kernel.shm_rmid_forced', 'kernel.msgmnb', 'kernel.sem', 'fs.mqueue.msg_max', 'net.ipv4.ip_forward',
    'net/ipv4/conf/eth0.100/forwarding', 'kernel.domainname', 'kernel.hostname']) {
    t.doesNotThrow(() => checkSysctl(key, all), key);
  }
  t.throws(() => checkSysctl('kernel.pid_max', all), /config.json \/linux\/sysctl\/kernel.pid_max: sysctl kernel.pid_max is not namespaced/);
  t.throws(() => checkSysctl('vm.overcommit_memory', all), /vm.overcommit_memory is not namespaced/);
  t.throws(() => checkSysctl('kernel.shmmax', ctx(['net'])), /kernel.shmmax belongs to the IPC namespace, and the container has none/);
  t.throws(() => checkSysctl('net.core.somaxconn', ctx(['ipc'])), /belongs to the network namespace/);
  t.doesNotThrow(() => checkSysctl('net.core.somaxconn', ctx(['net'], { net: '/var/run/netns/x' })));
  t.throws(() => checkSysctl('net.core.somaxconn', ctx(['net'], { net: '/proc/1/ns/net' }, true)), /would change the host: the container joins the host's network namespace/);
  t.throws(() => checkSysctl('kernel.hostname', ctx(['uts'], {}, false, true)), /conflicts with \/hostname/);
  t.throws(() => checkSysctl('kernel.domainname', ctx(['ipc'])), /UTS namespace/);
  for (const bad of ['net..x', '../etc/passwd', 'net/../../x', 'a b', '']) t.throws(() => checkSysctl(bad, all), /is not a sysctl name/, bad);
});

t.test('time offsets: only for a new time namespace', async (t) => {
  t.same(timeOffsetSteps({ timeOffsets: { boottime: { secs: 86400, nanosecs: 5 }, monotonic: { secs: -10 } } }, 'new'), [
    ['time-offset', 'boottime', '86400', '5', '/linux/timeOffsets/boottime'],
    ['time-offset', 'monotonic', '-10', '0', '/linux/timeOffsets/monotonic'],
  ]);
  t.same(timeOffsetSteps({}, 'none'), []);
  t.throws(() => timeOffsetSteps({ timeOffsets: { boottime: { secs: 1 } } }, 'none'), /\/linux\/timeOffsets: time offsets need a time namespace/);
  t.throws(() => timeOffsetSteps({ timeOffsets: { boottime: { secs: 1 } } }, 'joined'), /joined time namespace cannot be changed/);
  t.throws(() => timeOffsetSteps({ timeOffsets: { realtime: { secs: 1 } } as never }, 'new'), /\/linux\/timeOffsets\/realtime: unknown clock/);
  t.throws(() => timeOffsetSteps({ timeOffsets: { boottime: { nanosecs: 1e9 } } }, 'new'), /nanosecs: must be from 0 to 999999999/);
});

t.test('AppArmor and SELinux: a clear error on a host without them, a step with them', async (t) => {
  const spec = (p: Partial<NonNullable<Spec['process']>>) => ({ ...defaultSpec(), process: { ...defaultSpec().process!, ...p } });
  const none = () => ({ apparmor: false, selinux: false });
  const both = () => ({ apparmor: true, selinux: true });
  t.same(securityLabelSteps(spec({}), none), []);
  t.throws(() => securityLabelSteps(spec({ apparmorProfile: 'docker-default' }), none),
    /config.json \/process\/apparmorProfile: AppArmor is not enabled on this host .* "docker-default" cannot be applied/);
  t.throws(() => securityLabelSteps(spec({ selinuxLabel: 'system_u:system_r:container_t:s0' }), none),
    /config.json \/process\/selinuxLabel: SELinux is not enabled on this host/);
  t.same(securityLabelSteps(spec({ apparmorProfile: 'p', selinuxLabel: 'l' }), both),
    [['apparmor', 'p', '/process/apparmorProfile'], ['selinux', 'l', '/process/selinuxLabel']]);
});

const opts: CreatePlanOptions = {
  bundle: '/b', stateDir: '/run/pocrun/c1', noPivot: false, preserveFds: 0, cgroupProcsFiles: [], cgroupMounts: [],
  cgroupVersion: 2, mode: 'detach', host: PLAIN_HOST,
};
function plan(change: (s: Spec) => void) {
  const s = defaultSpec();
  s.process!.terminal = false;
  change(s);
  return compileCreatePlan(s, opts).steps;
}

t.test('in the plan: oom_score_adj and time offsets in the parent stage, host paths before setns', async (t) => {
  const steps = plan((s) => {
    s.process!.oomScoreAdj = -500;
    s.linux!.namespaces!.push({ type: 'time' }, { type: 'user', path: '/proc/42/ns/user' });
    s.linux!.timeOffsets = { boottime: { secs: 1000 } };
  });
  const names = steps.map((s) => s[0]);
  t.same(names.slice(0, names.indexOf('clone') + 1), ['oom-score-adj', 'exec-fifo', 'setns', 'time-offset', 'clone']);
  t.same(steps.find((s) => s[0] === 'clone'), ['clone', 'detach', 'pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup', 'time']);
});

t.test('in the plan: scheduler and ioprio before the user switch, personality before created', async (t) => {
  const names = plan((s) => {
    s.process!.scheduler = { policy: 'SCHED_BATCH', nice: 3 };
    s.process!.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 2 };
    s.linux!.personality = { domain: 'LINUX32' };
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
  }).map((s) => s[0]);
  t.ok(names.indexOf('scheduler') < names.indexOf('user'));
  t.ok(names.indexOf('ioprio') < names.indexOf('user'));
  t.ok(names.indexOf('caps') < names.indexOf('personality') && names.indexOf('personality') < names.indexOf('created'));
  t.throws(() => plan((s) => { s.linux!.sysctl = { 'kernel.panic': '1' }; }), /\/linux\/sysctl\/kernel.panic: sysctl kernel.panic is not namespaced/);
  t.throws(() => plan((s) => { s.linux!.mountLabel = 'system_u:object_r:container_file_t:s0'; }), /\/linux\/mountLabel: SELinux is not enabled/);
});

type MemoryPolicy = NonNullable<NonNullable<Spec['linux']>['memoryPolicy']>;

t.test('memoryPolicy: modes with their flags, node lists, and what each mode takes', async (t) => {
  t.same(memoryPolicyStep({ mode: 'MPOL_BIND', nodes: '0-3,7,2' }), ['mempolicy', '2', '0,1,2,3,7', '/linux/memoryPolicy']);
  t.same(memoryPolicyStep({ mode: 'MPOL_INTERLEAVE', nodes: '1', flags: ['MPOL_F_STATIC_NODES', 'MPOL_F_NUMA_BALANCING'] }),
    ['mempolicy', String(3 | (1 << 15) | (1 << 13)), '1', '/linux/memoryPolicy']);
  t.same(memoryPolicyStep({ mode: 'MPOL_LOCAL' }), ['mempolicy', '4', '', '/linux/memoryPolicy']);
  t.same(memoryPolicyStep({ mode: 'MPOL_PREFERRED' }), ['mempolicy', '1', '', '/linux/memoryPolicy'], 'preferred without nodes: local');
  const bad: [MemoryPolicy, RegExp][] = [
    [{ mode: 'MPOL_FAST' as 'MPOL_BIND', nodes: '0' }, /\/linux\/memoryPolicy\/mode: unknown memory policy mode "MPOL_FAST"/],
    [{}, /\/linux\/memoryPolicy\/mode: required/],
    [{ mode: 'MPOL_BIND', flags: ['MPOL_F_NOPE' as 'MPOL_F_STATIC_NODES'] , nodes: '0' }, /\/flags\/0: unknown memory policy flag "MPOL_F_NOPE"/],
    [{ mode: 'MPOL_DEFAULT', nodes: '0' }, /\/nodes: MPOL_DEFAULT takes no nodes/],
    [{ mode: 'MPOL_BIND' }, /\/nodes: MPOL_BIND needs at least one node/],
    [{ mode: 'MPOL_BIND', nodes: '3-1' }, /\/nodes: "3-1" is not a node or a range/],
    [{ mode: 'MPOL_BIND', nodes: '0,,1' }, /\/nodes: "" is not a node/],
    [{ mode: 'MPOL_BIND', nodes: '1024' }, /\/nodes: "1024" is not a node or a range of nodes from 0 to 1023/],
    [{ mode: 'MPOL_BIND', nodes: ' 0' }, /\/nodes: " 0" is not a node/],
  ];
  for (const [p, re] of bad) t.throws(() => memoryPolicyStep(p), re, JSON.stringify(p));
  const names = plan((s) => { s.linux!.memoryPolicy = { mode: 'MPOL_BIND', nodes: '0' }; }).map((s) => s[0]);
  t.ok(names.indexOf('caps') < names.indexOf('mempolicy') && names.indexOf('mempolicy') < names.indexOf('created'), 'set with the other process attributes');
});
