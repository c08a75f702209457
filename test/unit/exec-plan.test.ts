import t from 'tap';
import { compileExecPlan, dedupeEnv, parseProcessFile, processFromFlags, type ExecFlags } from '../../src/plan/exec-plan.js';
import { defaultSpec } from '../../src/spec/default.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

function container(change: (s: Spec) => void = () => {}): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  change(s);
  return s;
}

const flags = (f: Partial<ExecFlags> = {}): ExecFlags => ({ args: ['sh'], tty: false, env: [], additionalGids: [], caps: [], noNewPrivs: false, ...f });
const names = (steps: readonly (readonly string[])[]) => steps.map((s) => s[0]);
const find = (steps: readonly (readonly string[])[], name: string) => steps.filter((s) => s[0] === name);
const NS: [string, string][] = [['mnt', '/proc/9/ns/mnt'], ['pid', '/proc/9/ns/pid'], ['user', '/proc/9/ns/user'], ['net', '/proc/9/ns/net']];

t.test('the plan joins the namespaces user last but mount, forks, then joins the cgroup at a sync point', async (t) => {
  const c = container();
  const steps = compileExecPlan(c, processFromFlags(c.process!, flags({ args: ['ls', '-l'] })), { namespaces: NS, preserveFds: 0, mode: 'wait', host: PLAIN_HOST });
  const clone = steps.findIndex((s) => s[0] === 'clone');
  t.same(steps.slice(0, clone).map((s) => s[2]), ['net', 'pid', 'user', 'mnt']);
  t.same(steps[clone], ['clone', 'wait'], 'clone makes no namespace');
  t.same(steps[clone + 1], ['sync', 'cgroup']);
  t.same(steps[clone + 2], ['setsid']);
  t.same(find(steps, 'exec'), [['exec', '2', 'ls', '-l', '/process/args']]);
  t.notOk(names(steps).includes('wait-start'), 'no exec.fifo wait');
  t.notOk(names(steps).includes('exec-fifo'));
  t.notOk(names(steps).includes('cgroup-join'), 'the helper parent never enters the cgroup');
  t.same(names(steps).slice(-2), ['close-fds', 'execve']);
  t.notOk(names(steps).includes('created'), 'the runtime reads to EOF: the execve');
  t.same(find(steps, 'rlimit'), [['rlimit', '7', '1024', '1024', '/process/rlimits/0']], "the container's rlimits when the process has none");
});

t.test('detached exec forks; a terminal connects the console before setns and sets it up after setsid', async (t) => {
  const c = container();
  const p = processFromFlags(c.process!, flags({ tty: true }));
  t.throws(() => compileExecPlan(c, p, { namespaces: NS, preserveFds: 0, mode: 'fork', host: PLAIN_HOST }), /needs --console-socket/);
  const steps = compileExecPlan(c, p, { namespaces: NS, preserveFds: 2, mode: 'fork', consoleSocket: '/run/x.sock', host: PLAIN_HOST });
  t.same(steps[0], ['console-connect', '/run/x.sock', '/process/terminal']);
  t.same(find(steps, 'clone'), [['clone', 'fork']]);
  t.ok(names(steps).indexOf('console') > names(steps).indexOf('setsid'));
  t.same(find(steps, 'close-fds'), [['close-fds', '5']]);
  const sized = compileExecPlan(c, { ...p, consoleSize: { height: 24, width: 80 } }, { namespaces: [], preserveFds: 0, mode: 'fork', consoleSocket: '/s', host: PLAIN_HOST });
  t.same(find(sized, 'console'), [['console', '24', '80', '/process/consoleSize']]);
  const oom = compileExecPlan(c, { ...p, terminal: false, oomScoreAdj: -5 }, { namespaces: NS, preserveFds: 0, mode: 'fork', host: PLAIN_HOST });
  t.same(oom[0], ['oom-score-adj', '-5', '/process/oomScoreAdj'], 'oom_score_adj before setns (a user namespace could not lower it)');
});

t.test("flags change the container's process as runc's do", async (t) => {
  const c = container((s) => {
    s.process!.env = ['PATH=/bin', 'A=1'];
    s.process!.user = { uid: 0, gid: 0, additionalGids: [10] };
  });
  const p = processFromFlags(c.process!, flags({
    args: ['id'], cwd: '/tmp', env: ['A=2', 'B=3'], user: '1000:1001', additionalGids: ['5'], caps: ['NET_RAW', 'CAP_SYS_ADMIN'], noNewPrivs: true, tty: false,
  }));
  t.same(p.args, ['id']);
  t.equal(p.cwd, '/tmp');
  t.same(p.user, { uid: 1000, gid: 1001, additionalGids: [10, 5] });
  t.same(p.env, ['PATH=/bin', 'A=1', 'A=2', 'B=3']);
  t.equal(p.noNewPrivileges, true);
  for (const set of ['bounding', 'effective', 'permitted'] as const) {
    t.ok(p.capabilities![set]!.includes('CAP_NET_RAW') && p.capabilities![set]!.includes('CAP_SYS_ADMIN'), set);
  }
  t.notOk(p.capabilities!.inheritable?.includes('CAP_NET_RAW'), '--cap never adds inheritable (CVE-2022-29162)');
  t.notOk(p.capabilities!.ambient?.includes('CAP_NET_RAW'));
  t.same(c.process!.env, ['PATH=/bin', 'A=1'], "the container's config is not changed");
  const steps = compileExecPlan(c, p, { namespaces: [], preserveFds: 0, mode: 'wait', host: PLAIN_HOST });
  t.same(find(steps, 'env'), [['env', 'PATH=/bin'], ['env', 'A=2'], ['env', 'B=3']], 'the last value of a variable wins');
  t.same(find(steps, 'user'), [['user', '1000', '1001', '/process/user']]);
  t.same(find(steps, 'groups'), [['groups', '10', '5']]);
  const [caps] = find(steps, 'caps');
  t.equal(caps![4], '0', 'inheritable set empty');
  t.same(processFromFlags(c.process!, flags({ user: '7' })).user, { uid: 7, gid: 0, additionalGids: [10] }, 'UID alone keeps the gid');
  t.throws(() => processFromFlags(c.process!, flags({ user: 'root' })), /not UID or UID:GID/);
  t.throws(() => processFromFlags(c.process!, flags({ caps: ['CAP_NOPE'] })), /unknown capability "CAP_NOPE"/);
  t.throws(() => processFromFlags(c.process!, flags({ cwd: 'rel' })), /absolute/);
  const labelled = processFromFlags(c.process!, flags({ apparmor: 'prof', processLabel: 'system_u:system_r:container_t:s0' }));
  const without = () => ({ apparmor: false, selinux: false });
  const withBoth = () => ({ apparmor: true, selinux: true });
  t.throws(() => compileExecPlan(c, labelled, { namespaces: [], preserveFds: 0, mode: 'wait', host: { security: without } }), /AppArmor is not enabled on this host/);
  const lsm = compileExecPlan(c, labelled, { namespaces: [], preserveFds: 0, mode: 'wait', host: { security: withBoth } });
  t.same(find(lsm, 'apparmor'), [['apparmor', 'prof', '/process/apparmorProfile']], '--apparmor');
  t.same(find(lsm, 'selinux'), [['selinux', 'system_u:system_r:container_t:s0', '/process/selinuxLabel']], '--process-label');
});

t.test('process.json is validated against the schema, with pointers into it', async (t) => {
  const ok = parseProcessFile(JSON.stringify({ args: ['sh'], cwd: '/', env: ['X=1'] }), 'p.json');
  t.same(ok.user, { uid: 0, gid: 0 }, 'no user means root');
  t.throws(() => parseProcessFile('{', 'p.json'), /p.json: not valid JSON/);
  t.throws(() => parseProcessFile('[]', 'p.json'), /must be a JSON object/);
  t.throws(() => parseProcessFile(JSON.stringify({ args: ['sh'] }), 'p.json'), /p.json \/cwd: required/);
  t.throws(() => parseProcessFile(JSON.stringify({ args: 'sh', cwd: '/' }), 'p.json'), /p.json \/args: must be an array/);
  t.throws(() => parseProcessFile(JSON.stringify({ args: [], cwd: '/' }), 'p.json'), /args must not be empty/);
  t.throws(() => parseProcessFile(JSON.stringify({ args: ['sh'], cwd: 'x' }), 'p.json'), /absolute/);
  const tty = parseProcessFile(JSON.stringify({ args: ['sh'], cwd: '/', terminal: true, capabilities: { inheritable: ['CAP_CHOWN'] } }), 'p.json');
  const steps = compileExecPlan(container(), tty, { namespaces: [], preserveFds: 0, mode: 'fork', consoleSocket: '/s', host: PLAIN_HOST });
  t.equal(find(steps, 'caps')[0]![4], '1', 'an inheritable set the process asks for is kept');
});

t.test('dedupeEnv', async (t) => {
  t.same(dedupeEnv(['A=1', 'B=2', 'A=3', 'C=']), ['A=3', 'B=2', 'C=']);
  t.throws(() => dedupeEnv(['NOEQUALS']), /not NAME=VALUE/);
});

t.test("the container's seccomp profile: built and loaded last; a notify agent's socket connected before setns", async (t) => {
  const c = container((s) => {
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: '/run/agent.sock',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
    };
  });
  const steps = compileExecPlan(c, processFromFlags(c.process!, flags()), { namespaces: NS, preserveFds: 0, mode: 'fork', host: PLAIN_HOST });
  const listener = names(steps).indexOf('seccomp-listener');
  t.ok(listener >= 0 && listener < names(steps).indexOf('setns'), 'listener before any setns');
  t.same(names(steps).slice(-2), ['seccomp-load', 'execve']);
  t.ok(names(steps).includes('seccomp-compile'));
  const none = compileExecPlan(container(), processFromFlags(container().process!, flags()), { namespaces: NS, preserveFds: 0, mode: 'fork', host: PLAIN_HOST });
  t.notOk(names(none).some((n) => n.startsWith('seccomp')));
});

t.test('execCPUAffinity: initial before the fork, final once the process is in the cgroup; lists checked', async (t) => {
  const proc = (a: object) => ({ ...processFromFlags(container().process!, flags()), execCPUAffinity: a });
  const steps = compileExecPlan(container(), proc({ initial: '7', final: '0-3,7' }), { namespaces: NS, preserveFds: 0, mode: 'wait', host: PLAIN_HOST });
  const at = (name: string) => names(steps).indexOf(name);
  t.same(steps[at('affinity')], ['affinity', '7', '/process/execCPUAffinity/initial']);
  t.ok(at('affinity') < at('clone'), 'initial: the helper, before the fork');
  const final = steps.findIndex((s, i) => s[0] === 'affinity' && i > at('clone'));
  t.same(steps[final], ['affinity', '0,1,2,3,7', '/process/execCPUAffinity/final']);
  t.equal(final, at('sync') + 1, 'final: right after the move into the cgroup');
  const none = compileExecPlan(container(), proc({}), { namespaces: NS, preserveFds: 0, mode: 'wait', host: PLAIN_HOST });
  t.notOk(names(none).includes('affinity'), 'no steps without lists');
  t.throws(() => compileExecPlan(container(), proc({ final: '3-1' }), { namespaces: NS, preserveFds: 0, mode: 'wait', host: PLAIN_HOST }),
    /config.json \/process\/execCPUAffinity\/final: "3-1" is not a CPU or a range of CPUs from 0 to 1023/);
  t.throws(() => compileExecPlan(container(), proc({ initial: 'all' }), { namespaces: NS, preserveFds: 0, mode: 'wait', host: PLAIN_HOST }),
    /\/process\/execCPUAffinity\/initial: "all" is not a CPU/);
});
