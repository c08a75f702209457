// The facts TypeScript and C share (src/vocabulary/): what the build generates from them, and that the plans the
// runtime makes fit the one definition of each step.
import t from 'tap';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { STEPS, fieldCounts, fieldsText, stepMisfit, stepPurpose } from '../../src/vocabulary/steps.js';
import {
  capabilitiesHeader, containerIdHeader, factFunction, protocolWithTables, signalsHeader, stateRecordHeader, statusRuleHeader, stepTable, stepFunctions,
} from '../../scripts/gen-native.js';
import { OCI_STATE_FIELDS, STATUS_FACTS, STATUS_RULE, type Status, type StatusFact, type StatusRule } from '../../src/vocabulary/state-record.js';
import { deriveStatus, ociState, type StatusFacts } from '../../src/runtime/status.js';
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

// The status rule (STATUS_RULE): deriveStatus walks it, and the front's status_of is generated from it.
const FACTS = Object.keys(STATUS_FACTS) as StatusFact[];
const CC = ['-Wall', '-Wextra', '-Werror', '-std=gnu11', '-O2'];

/** Facts from a bit set (bit i: FACTS[i]), each read noted in `reads`, as the C harness below notes them. */
function factsOf(bits: number, reads: string[]): StatusFacts {
  return Object.fromEntries(FACTS.map((fact, i) => [fact, () => (reads.push(fact), Boolean(bits & (1 << i)))])) as unknown as StatusFacts;
}

/** "status fact fact ..." for each of the 2^n combinations of the facts: what it decides and what it read to. */
function tsAnswers(rule: StatusRule): string[] {
  return Array.from({ length: 1 << FACTS.length }, (_, bits) => {
    const reads: string[] = [];
    const status = deriveStatus(factsOf(bits, reads), rule);
    return [status, ...reads].join(' ');
  });
}

/** The same from the C that the generator writes for `rule`, compiled with the front's warnings as errors. */
async function cAnswers(dir: string, rule: StatusRule): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'state-record.h'), stateRecordHeader());
  writeFileSync(join(dir, 'status-rule.h'), statusRuleHeader(rule));
  const used = new Set(rule.rows.map((row) => row.fact));
  const facts = FACTS.map((fact, i) => (used.has(fact)
    ? `static bool ${factFunction(fact)}(const struct record *r) { printf(" ${fact}"); return r->bits & ${1 << i}; }\n`
    : '')).join('');
  writeFileSync(join(dir, 'harness.c'), `#include <stdio.h>
#include "status-rule.h"
struct record { unsigned bits; };
${facts}int main(void)
{
	for (unsigned bits = 0; bits < ${1 << FACTS.length}; bits++) {
		struct record r = {bits};
		const char *status = status_of(&r);
		printf("|%s\\n", status);
	}
	return 0;
}
`);
  const cc = await execa('cc', [...CC, '-o', join(dir, 'harness'), join(dir, 'harness.c')], { reject: false });
  if (cc.exitCode !== 0) throw new Error(`cc: ${cc.stderr}`);
  // Each line is " fact fact|status": the reads are printed as they happen, the status after them.
  return (await execa(join(dir, 'harness'))).stdout.split('\n').map((line) => {
    const [reads, status] = line.split('|');
    return [status, ...reads.split(' ').filter(Boolean)].join(' ');
  });
}

t.test('the status rule decides by the first fact that is as its row says, reading no further', async (t) => {
  const facts = (f: Record<StatusFact, boolean>, reads: string[] = []) =>
    Object.fromEntries(FACTS.map((fact) => [fact, () => (reads.push(fact), f[fact])])) as unknown as StatusFacts;
  const cases: [Record<StatusFact, boolean>, Status][] = [
    [{ initReported: false, initAlive: false, frozen: false, execFifoExists: true }, 'creating'],
    [{ initReported: true, initAlive: true, frozen: false, execFifoExists: true }, 'created'],
    [{ initReported: true, initAlive: true, frozen: false, execFifoExists: false }, 'running'],
    [{ initReported: true, initAlive: true, frozen: true, execFifoExists: false }, 'paused'],
    [{ initReported: true, initAlive: true, frozen: true, execFifoExists: true }, 'paused'],
    [{ initReported: true, initAlive: false, frozen: false, execFifoExists: true }, 'stopped'],
    // runc's refreshState: the freezer before the init, so a frozen cgroup whose init died is paused.
    [{ initReported: true, initAlive: false, frozen: true, execFifoExists: false }, 'paused'],
    [{ initReported: true, initAlive: false, frozen: true, execFifoExists: true }, 'paused'],
  ];
  for (const [f, want] of cases) t.equal(deriveStatus(facts(f)), want, JSON.stringify(f));
  const reads: string[] = [];
  deriveStatus(facts({ initReported: true, initAlive: false, frozen: false, execFifoExists: true }, reads));
  t.same(reads, ['initReported', 'frozen', 'initAlive'], "a dead init's fifo is not looked at");
  const frozenReads: string[] = [];
  deriveStatus(facts({ initReported: true, initAlive: true, frozen: true, execFifoExists: true }, frozenReads));
  t.same(frozenReads, ['initReported', 'frozen'], 'a frozen cgroup decides before the init is looked at');
  // A fact the rule reads cannot be left out: tsc refuses it (typecheck.test.ts runs tsc over this file).
  // @ts-expect-error
  t.throws(() => deriveStatus({ initReported: () => true, initAlive: () => true, execFifoExists: () => false }));
});

t.test("the front's status_of is the rule's: the same status and the same reads for every combination of the facts", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pocrun-status-rule-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rows = STATUS_RULE.rows;
  const broken: [string, StatusRule][] = [
    ['frozen read after the init (the order before runc\'s)', { ...STATUS_RULE, rows: [rows[0], rows[2], rows[1], rows[3]] }],
    ['frozen read after exec.fifo', { ...STATUS_RULE, rows: [rows[0], rows[2], rows[3], rows[1]] }],
    ['no paused row', { ...STATUS_RULE, rows: rows.filter((row) => row.status !== 'paused') }],
    ['a value turned', { ...STATUS_RULE, rows: rows.map((row) => (row.fact === 'execFifoExists' ? { ...row, is: false } : row)) }],
    ['another otherwise', { ...STATUS_RULE, otherwise: 'stopped' }],
  ];
  const real = tsAnswers(STATUS_RULE);
  t.same(await cAnswers(join(dir, 'rule'), STATUS_RULE), real, 'STATUS_RULE');
  for (const [name, rule] of broken) {
    const ts = tsAnswers(rule);
    t.not(ts.join('\n'), real.join('\n'), `${name}: the TypeScript answers change`);
    t.same(await cAnswers(join(dir, name.replace(/\W+/g, '-')), rule), ts, `${name}: and the C answers with them`);
  }
});

t.test('a fact the rule gains or loses fails the build of the front (container.c)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pocrun-status-front-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // container.c as the Makefile builds it: front/ beside generated/, with the headers the build wrote.
  cpSync(join(top, 'src/native/front'), join(dir, 'front'), { recursive: true });
  cpSync(join(top, 'src/native/generated'), join(dir, 'generated'), { recursive: true });
  cpSync(join(top, 'src/native/proc-stat.h'), join(dir, 'proc-stat.h'));
  const build = async (rule: StatusRule) => {
    writeFileSync(join(dir, 'generated/status-rule.h'), statusRuleHeader(rule));
    const r = await execa('cc', [...CC, '-c', '-o', '/dev/null', join(dir, 'front/container.c')], { reject: false, env: { LC_ALL: 'C' } });
    return `${r.exitCode} ${r.stderr}`;
  };
  t.match(await build(STATUS_RULE), /^0 $/, 'the rule as it is builds');
  const lost = { ...STATUS_RULE, rows: STATUS_RULE.rows.filter((row) => row.fact !== 'frozen') };
  t.match(await build(lost), /^1 .*'fact_frozen' defined but not used/s, 'a fact it no longer reads');
  const gained = { ...STATUS_RULE, rows: [{ fact: 'seccompLoaded' as StatusFact, is: true, status: 'paused' as const }, ...STATUS_RULE.rows] };
  t.match(await build(gained), /^1 .*'fact_seccomp_loaded' used but never defined/s, 'a fact it newly reads');
});
