import t from 'tap';
import { seccompSteps, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_OPERATORS } from '../../src/plan/seccomp.js';
import { compileCreatePlan, type CreatePlanOptions } from '../../src/plan/compile.js';
import { defaultSpec } from '../../src/spec/default.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

type Seccomp = NonNullable<NonNullable<Spec['linux']>['seccomp']>;
const steps = (s: Seccomp) => seccompSteps(s, '1.3.0');
const rules = (s: Seccomp) => steps(s).build.filter((x) => x[0] === 'seccomp-rule');

t.test('default action, errno, flags and architectures', async (t) => {
  const r = steps({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG'],
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  });
  t.same(r.build, [
    ['seccomp-init', 'errno', '38', 'log,spec-allow', '/linux/seccomp/defaultAction'],
    ['seccomp-arch', 'x86_64', '/linux/seccomp/architectures/0'],
    ['seccomp-arch', 'x86', '/linux/seccomp/architectures/1'],
    ['seccomp-arch', 'x32', '/linux/seccomp/architectures/2'],
    ['seccomp-compile', '/linux/seccomp'],
  ]);
  t.same(r.load, ['seccomp-load', '/linux/seccomp']);
  t.same(r.listener, []);
  t.equal(r.notify, false);
  t.same(steps({ defaultAction: 'SCMP_ACT_ERRNO' }).build[0], ['seccomp-init', 'errno', '1', '', '/linux/seccomp/defaultAction'], 'EPERM by default');
  t.same(steps({ defaultAction: 'SCMP_ACT_KILL' }).build[0]!.slice(1, 3), ['kill-thread', '-']);
  t.equal(SECCOMP_ARCHES.SCMP_ARCH_MIPSEL64N32, 'mipsel64n32');
  t.equal(SECCOMP_ARCHES.SCMP_ARCH_LOONGARCH64, 'loongarch64');
});

t.test('every action and its errno', async (t) => {
  const all = Object.keys(SECCOMP_ACTIONS).filter((a) => a !== 'SCMP_ACT_NOTIFY');
  for (const action of all) {
    const errnoRet = action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE' ? 5 : undefined;
    const [rule] = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: action as 'SCMP_ACT_LOG', errnoRet }] });
    if (action === 'SCMP_ACT_ALLOW') {
      t.equal(rule, undefined, 'a rule with the default action is left out');
      continue;
    }
    t.same(rule, ['seccomp-rule', SECCOMP_ACTIONS[action], errnoRet === undefined ? '-' : '5', 'getpid', '/linux/seccomp/syscalls/0'], action);
  }
  t.same(rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_TRACE' }] })[0]!.slice(1, 3), ['trace', '1']);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_KILL', errnoRet: 1 }] }),
    /\/linux\/seccomp\/syscalls\/0\/errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_LOG', defaultErrnoRet: 1 }), /\/linux\/seccomp\/defaultErrnoRet: only/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 70000 }), /defaultErrnoRet: must be an integer from 0 to 65535/);
});

t.test('a rule with the default action and errno is left out, one with another errno is kept', async (t) => {
  const r = rules({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['a1'], action: 'SCMP_ACT_ERRNO' },
      { names: ['a2'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['a3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['a4', 'a5'], action: 'SCMP_ACT_ALLOW' },
    ],
  });
  t.same(r.map((x) => x[3]), ['a3', 'a4', 'a5']);
});

t.test('the ENOSYS stub: every name the profile mentions, unless the default lets calls through or is ENOSYS', async (t) => {
  const enosys = (s: Seccomp) => steps(s).build.filter((x) => x[0] === 'seccomp-enosys');
  const syscalls: Seccomp['syscalls'] = [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
    { names: ['mkdir', 'write'], action: 'SCMP_ACT_ERRNO' }, // the default action: no rule, but still a name
  ];
  const r = steps({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }).build;
  t.same(r.at(-2), ['seccomp-enosys', 'read', 'write', 'mkdir', '/linux/seccomp'], 'each name once, after the rules');
  t.same(r.at(-1), ['seccomp-compile', '/linux/seccomp']);
  for (const defaultAction of ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP'] as const) {
    t.equal(enosys({ defaultAction, syscalls }).length, 1, `${defaultAction}: a stub`);
  }
  t.equal(enosys({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 13, syscalls }).length, 1, 'EACCES: a stub');
  t.same(enosys({ defaultAction: 'SCMP_ACT_ERRNO' })[0], ['seccomp-enosys', '/linux/seccomp'], 'no names: the helper sends every call to the filter');
  for (const defaultAction of ['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE'] as const) {
    t.same(enosys({ defaultAction, syscalls }), [], `${defaultAction}: no stub, a new syscall is let through`);
  }
  t.same(enosys({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls }), [], 'ENOSYS by default: no stub');
});

t.test('unknown names are refused with their JSON pointer', async (t) => {
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_FOO' as 'SCMP_ACT_LOG' }), /config.json \/linux\/seccomp\/defaultAction: unknown seccomp action "SCMP_ACT_FOO"/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW' }, { names: ['y'], action: 'NOPE' as 'SCMP_ACT_LOG' }] }),
    /\/linux\/seccomp\/syscalls\/1\/action: unknown seccomp action "NOPE"/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX' as 'SCMP_ARCH_X86'] }),
    /\/linux\/seccomp\/architectures\/1: unknown architecture "SCMP_ARCH_VAX"/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NOPE' as 'SECCOMP_FILTER_FLAG_LOG'] }),
    /\/linux\/seccomp\/flags\/0: unknown seccomp flag/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' as 'SCMP_CMP_EQ' }] }] }),
    /\/linux\/seccomp\/syscalls\/0\/args\/0\/op: unknown seccomp operator "SCMP_CMP_XX"/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_LOG', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }),
    /args\/0\/index: a syscall has arguments 0 to 5/);
});

t.test('syscall names: any syscall-shaped name passes (the helper skips unknown ones), others are refused', async (t) => {
  const ok = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['_llseek', 'no_such_syscall_yet', 'arm_fadvise64_64'], action: 'SCMP_ACT_LOG' }] });
  t.same(ok.map((r) => r[3]), ['_llseek', 'no_such_syscall_yet', 'arm_fadvise64_64']);
  for (const bad of ['', 'MKDIR', 'mkdir;rm', '../x', 'a b', '1abc', 'x'.repeat(65)]) {
    t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ok', bad], action: 'SCMP_ACT_LOG' }] }),
      /\/linux\/seccomp\/syscalls\/0\/names\/1: .* is not a syscall name/, JSON.stringify(bad));
  }
});

t.test('argument conditions: every operator; distinct arguments AND, the same argument twice splits the rule', async (t) => {
  for (const [op, word] of Object.entries(SECCOMP_OPERATORS)) {
    const [r] = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 4294967295, valueTwo: 7, op: op as 'SCMP_CMP_EQ' }] }] });
    t.same(r, ['seccomp-rule', 'errno', '1', 'personality', `0:${word}:4294967295:7`, '/linux/seccomp/syscalls/0'], op);
  }
  const and = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['clone'], action: 'SCMP_ACT_ERRNO', args: [
    { index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 2, value: 3, op: 'SCMP_CMP_NE' }] }] });
  t.same(and, [['seccomp-rule', 'errno', '1', 'clone', '0:eq:1:0', '2:ne:3:0', '/linux/seccomp/syscalls/0']]);
  const or = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a', 'b'], action: 'SCMP_ACT_ERRNO', args: [
    { index: 1, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 5, op: 'SCMP_CMP_EQ' }] }] });
  t.same(or.map((r) => r.slice(3, -1)), [['a', '1:eq:1:0'], ['a', '1:eq:5:0'], ['b', '1:eq:1:0'], ['b', '1:eq:5:0']]);
  const big = rules({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 18446744073709551615, op: 'SCMP_CMP_EQ' }] }] });
  t.equal(big[0]![4], '0:eq:18446744073709551615:0', '2^64-1 (rounded to 2^64 by JSON) is the largest value');
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] }),
    /args\/0\/value: must be an unsigned 64-bit integer/);
});

t.test('notify: listener with the state head; needs listenerPath; refused as default and for sendmsg/close', async (t) => {
  const r = steps({
    defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock', listenerMetadata: 'a "b"',
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
  });
  t.equal(r.notify, true);
  t.same(r.listener, [['seccomp-listener', '/run/agent.sock', '{"ociVersion":"1.3.0","fds":["seccompFd"],"metadata":"a \\"b\\""', '/linux/seccomp/listenerPath']]);
  t.same(JSON.parse(`${r.listener[0]![2]},"pid":1,"state":{}}`), { ociVersion: '1.3.0', fds: ['seccompFd'], metadata: 'a "b"', pid: 1, state: {} });
  t.same(steps({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x' }).listener, [], 'no NOTIFY rule: the listener is not used');
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }), /\/linux\/seccomp\/listenerPath: required/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: 'rel.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }), /listenerPath: must be an absolute path/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }), /listenerMetadata: needs listenerPath/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/x' }), /defaultAction: SCMP_ACT_NOTIFY cannot be the default action/);
  t.throws(() => steps({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x', syscalls: [{ names: ['mkdir', 'sendmsg'], action: 'SCMP_ACT_NOTIFY' }] }),
    /syscalls\/0\/names\/1: SCMP_ACT_NOTIFY cannot be used for sendmsg/);
});

const opts: CreatePlanOptions = {
  bundle: '/b', stateDir: '/run/pocrun/c1', noPivot: false, preserveFds: 0, cgroupProcsFiles: [], cgroupMounts: [],
  cgroupVersion: 2, mode: 'detach', host: PLAIN_HOST,
};
function plan(change: (s: Spec) => void) {
  const s = defaultSpec();
  s.process!.terminal = false;
  change(s);
  return compileCreatePlan(s, opts);
}

t.test('in the plan: built before created, loaded after start hooks right before execve', async (t) => {
  const p = plan((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
    s.hooks = { startContainer: [{ path: '/bin/true' }] };
  });
  const names = p.steps.map((s) => s[0]);
  t.ok(names.indexOf('seccomp-compile') < names.indexOf('created'));
  t.ok(names.indexOf('caps') < names.indexOf('seccomp-init'));
  t.same(names.slice(-4), ['run-hooks', 'close-fds', 'seccomp-load', 'execve']);
  t.notOk(names.includes('seccomp-listener'));
});

t.test('without noNewPrivileges the caps step keeps CAP_SYS_ADMIN, which the load step drops', async (t) => {
  const SA = 1n << 21n;
  const nnp = plan((s) => { s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW' }; });
  const caps = nnp.steps.find((s) => s[0] === 'caps')!;
  t.equal(BigInt(`0x${caps[2]}`) & SA, 0n, 'noNewPrivileges: CAP_SYS_ADMIN not kept');
  t.same(nnp.steps.find((s) => s[0] === 'seccomp-load'), ['seccomp-load', '/linux/seccomp']);

  const p = plan((s) => {
    s.process!.noNewPrivileges = false;
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
  });
  const kept = p.steps.find((s) => s[0] === 'caps')!;
  const load = p.steps.find((s) => s[0] === 'seccomp-load')!;
  t.equal(BigInt(`0x${kept[2]}`) & SA, SA, 'effective keeps CAP_SYS_ADMIN');
  t.equal(BigInt(`0x${kept[3]}`) & SA, SA, 'permitted keeps CAP_SYS_ADMIN');
  t.equal(BigInt(`0x${kept[1]}`) & SA, 0n, 'not in the bounding set');
  t.same(load.slice(1, 4), [(BigInt(`0x${kept[2]}`) & ~SA).toString(16), (BigInt(`0x${kept[3]}`) & ~SA).toString(16), kept[4]]);

  const admin = plan((s) => {
    s.process!.noNewPrivileges = false;
    s.process!.capabilities = { effective: ['CAP_SYS_ADMIN'], permitted: ['CAP_SYS_ADMIN'] };
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
  });
  t.same(admin.steps.find((s) => s[0] === 'seccomp-load'), ['seccomp-load', '/linux/seccomp'], 'nothing to drop');
});

t.test('notify: the listener is connected first in the parent stage, and the state comes with sync hooks', async (t) => {
  const p = plan((s) => {
    s.linux!.namespaces!.push({ type: 'user' } as never);
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
  });
  t.equal(p.steps[0]![0], 'seccomp-listener');
  t.equal(p.syncHooks, true);
  t.ok(p.steps.some((s) => s[0] === 'sync' && s[1] === 'hooks'));
});
