// The facts TypeScript and C share (src/vocabulary/): what the build generates from them, and that the plans the
// runtime makes fit the one definition of each step.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STEPS, fieldCounts, fieldsText, stepMisfit, stepPurpose } from '../../src/vocabulary/steps.js';
import { capabilitiesHeader, containerIdHeader, protocolWithTables, signalsHeader, stateRecordHeader, stepTable, stepFunctions } from '../../scripts/gen-native.js';
import { OCI_STATE_FIELDS } from '../../src/vocabulary/state-record.js';
import { ociState } from '../../src/runtime/status.js';
import { ID_PATTERN } from '../../src/vocabulary/container-id.js';
import { compileCreatePlan } from '../../src/plan/compile.js';
import { compileExecPlan, processFromFlags } from '../../src/plan/exec-plan.js';
import { defaultSpec } from '../../src/spec/default.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

const top = join(import.meta.dirname, '../..');

t.test("PROTOCOL.md's step tables are the ones src/vocabulary/steps.ts makes (npm run build rewrites them)", async (t) => {
  const file = readFileSync(join(top, 'src/plan/PROTOCOL.md'), 'utf8');
  t.equal(protocolWithTables(file), file);
  for (const stage of ['parent', 'child', 'seccomp']) t.match(file, `<!-- steps:${stage} `);
  for (const name of Object.keys(STEPS)) t.match(file, `| \`${name}\` | `, `${name} is documented`);
});

t.test('field counts: fixed fields, an optional group, a rest, and the ref', async (t) => {
  t.same(fieldCounts(STEPS.mount), { min: 7, max: 7 });
  t.same(fieldCounts(STEPS.console), { min: 1, max: 3 });
  t.same(fieldCounts(STEPS['seccomp-rule']), { min: 4, max: 10 });
  t.same(fieldCounts(STEPS.hook), { min: 6, max: -1 });
  t.same(fieldCounts(STEPS.groups), { min: 0, max: -1 });
  t.equal(fieldsText(STEPS.console), '[rows, cols,] ref');
  t.equal(fieldsText(STEPS.hook), 'phase, timeout, path, argc, argv..., envc, env..., ref');
  t.equal(stepMisfit(['mount', 'a', 'b']), 'mount: 2 fields, expected 7');
  t.equal(stepMisfit(['console', '1', '/p']), 'console: 2 fields, the optional ones all or none');
  t.equal(stepMisfit(['bogus']), 'unknown step "bogus"');
  t.equal(stepMisfit(['console', '24', '80', '/process/consoleSize']), undefined);
});

t.test("the C table and the step functions' prototypes come from the same definition", async (t) => {
  t.match(stepTable(), '\t{"mount", 7, 7, 1, step_mount},');
  t.match(stepTable(), '\t{"clone", 1, -1, 0, step_clone},');
  t.match(stepFunctions(), 'void step_oom_score_adj(const struct step *);');
  t.equal(stepTable().match(/step_/g)!.length, Object.keys(STEPS).length);
});

t.test("an error names the step's purpose; a pseudo-step names itself", async (t) => {
  t.equal(stepPurpose('cgroup-join'), 'join cgroup');
  t.equal(stepPurpose('plan'), 'plan');
  t.equal(stepPurpose('toString'), 'toString');
});

t.test('create and exec plans fit the table, with every optional part the planners make', async (t) => {
  const spec = defaultSpec();
  spec.process!.terminal = true;
  spec.process!.consoleSize = { height: 24, width: 80 };
  spec.hooks = { createContainer: [{ path: '/bin/true', args: ['true', 'x'], env: ['A=1'] }], startContainer: [{ path: '/bin/true' }] };
  spec.linux!.seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }],
  };
  spec.process!.user!.additionalGids = [5, 6];
  const { steps } = compileCreatePlan(spec, {
    bundle: '/b', stateDir: '/run/pocrun/c1', noPivot: false, preserveFds: 0, cgroupProcsFiles: ['/sys/fs/cgroup/pocrun/c1/cgroup.procs'],
    cgroupMounts: [], cgroupVersion: 2, mode: 'detach', consoleSocket: '/tmp/console.sock', host: PLAIN_HOST,
  });
  t.same(steps.map(stepMisfit).filter(Boolean), []);
  t.ok(steps.some((s) => s[0] === 'hook') && steps.some((s) => s[0] === 'seccomp-rule') && steps.some((s) => s[0] === 'console'));
  const exec = compileExecPlan(spec, processFromFlags(spec.process!, { args: ['sh'], tty: true, env: [], additionalGids: [], caps: [], noNewPrivs: false }), {
    namespaces: [['mnt', '/proc/9/ns/mnt']], preserveFds: 0, mode: 'wait', consoleSocket: '/tmp/console.sock', host: PLAIN_HOST,
  });
  t.same(exec.map(stepMisfit).filter(Boolean), []);
});

t.test('the C headers of signals, capabilities and the id rule', async (t) => {
  t.match(signalsHeader(), '#define FORWARDED_SIGNALS SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH\n');
  t.match(signalsHeader(), '_Static_assert(SIGKILL == 9, ');
  t.match(signalsHeader(), '{"WINCH", SIGWINCH}');
  t.match(capabilitiesHeader(), '#define CAPABILITY_NAMES "CAP_CHOWN", "CAP_DAC_OVERRIDE", ');
  t.match(capabilitiesHeader(), '_Static_assert(CAP_SYS_ADMIN == 21, ');
  t.match(containerIdHeader(), '#define ID_MAX_LENGTH 1024\n#define ID_PUNCTUATION "_.+-"\n');
  for (const id of ['a', 'A-b_c.d+e', '0x']) t.ok(ID_PATTERN.test(id), id);
  for (const id of ['-a', '.', '..', 'a/b', 'a b', 'a]b', 'a^b', 'a\\b']) t.notOk(ID_PATTERN.test(id), id);
});

t.test("the state record: the OCI state's fields in the one order both sides print, the names the front reads", async (t) => {
  const record = {
    ociVersion: '1.3.0', id: 'c1', pid: 42, bundle: '/b', initStartTime: '1', created: 'now', rootfs: '/b/rootfs', cgroupPath: '/p',
    cgroupDirs: {}, hooks: {}, owner: 'root', annotations: { a: 'b' },
  };
  t.same(Object.keys(ociState(record, 'running')), [...OCI_STATE_FIELDS, 'annotations']);
  t.equal(ociState(record, 'stopped').pid, 0, 'a stopped container has no pid');
  t.notOk('annotations' in ociState({ ...record, annotations: {} }, 'created'), 'no empty annotations');
  const header = stateRecordHeader();
  t.match(header, '#define OCI_STATE_FIELDS "ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner"\n');
  for (const line of ['#define STATE_RECORD "state.json"', '#define STATE_LOCK "lock"', '#define STATE_EXEC_FIFO "exec.fifo"',
    '#define RECORD_INIT_START_TIME "initStartTime"', '#define RECORD_CGROUP_DIRS "cgroupDirs"', '#define STATUS_PAUSED "paused"']) {
    t.match(header, `${line}\n`);
  }
});
