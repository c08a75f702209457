import t from 'tap';
import { destroyCgroup } from '../../src/runtime/delete.js';
import { RuntimeContext } from '../../src/runtime/context.js';
import { checkId, MAX_ID_LENGTH } from '../../src/runtime/id.js';
import { HelperStepError, parseHelperMessage } from '../../src/runtime/init-helper.js';
import { ConfigFieldError } from '../../src/errors.js';
import { compileExecPlan } from '../../src/plan/exec-plan.js';
import { defaultSpec } from '../../src/spec/default.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';
import { parseFlags } from '../../src/cli/args.js';

t.test('ids are checked before any path is built from them', async (t) => {
  for (const good of ['c1', 'a', 'A-b_c.d+e', '0', 'x'.repeat(MAX_ID_LENGTH)]) t.equal(checkId(good), good, good);
  const bad: [unknown, RegExp][] = [
    ['', /cannot be empty/], [undefined, /cannot be empty/], ['..', /invalid container id/], ['.', /invalid container id/],
    ['a/b', /invalid container id/], ['../etc', /invalid container id/], ['-a', /invalid container id/],
    ['a\u0000b', /invalid container id/], ['with space', /invalid container id/], ['x'.repeat(2000), /too long \(2000 characters/],
  ];
  for (const [id, re] of bad) t.throws(() => checkId(id), { name: 'PocrunError', message: re }, JSON.stringify(id));
});

const helperError = (line: string): HelperStepError => {
  const m = parseHelperMessage(`error ${line}`);
  if (m.kind !== 'error') throw new Error(`not an error: ${line}`);
  return m.error;
};

t.test("the helper's errors name the purpose and the config field", async (t) => {
  t.equal(helperError('mount\t/mounts/3\t19\tmount nosuchfs on /x: No such device').message,
    'mount (config.json /mounts/3): mount nosuchfs on /x: No such device');
  t.equal(helperError('exec\t/process/args\t2\texec: "foo": executable file not found in $PATH').message,
    'exec: "foo": executable file not found in $PATH (config.json /process/args)');
  t.equal(helperError('plan\t-\t22\tstep 1: unknown step "x"').message, 'plan: step 1: unknown step "x"', 'no ref: no field');
  const e = helperError('sysctl\t/linux/sysctl/a\t2\tno\tsuch');
  t.same([e.step, e.ref, e.errno, e.detail, e.name], ['sysctl', '/linux/sysctl/a', 2, 'no\tsuch', 'PocrunError'], 'the fields stay fields');
});

t.test("the one parser of the helper's lines", async (t) => {
  t.same(parseHelperMessage('pid 4242'), { kind: 'pid', pid: 4242 });
  t.same(parseHelperMessage('sync maps'), { kind: 'sync', name: 'maps' });
  t.same(parseHelperMessage('created'), { kind: 'created' });
  t.same(parseHelperMessage('hello there'), { kind: 'unknown', line: 'hello there' });
  t.ok(parseHelperMessage('error x\t-\t0\tm').kind === 'error');
});

t.test("exec moves a field of /process to the exec'd process's document, by the error's fields, not its words", async (t) => {
  const moved = helperError('affinity\t/process/execCPUAffinity/final\t22\tsched_setaffinity: Invalid argument').movedUnder('/process', '/tmp/p.json');
  t.equal(moved.message, 'set CPU affinity (/tmp/p.json /execCPUAffinity/final): sched_setaffinity: Invalid argument');
  const exec = helperError('exec\t/process/args\t2\texec: "foo": not found').movedUnder('/process', 'process');
  t.equal(exec.message, 'exec: "foo": not found (process /args)');
  const other = helperError('mount\t/mounts/3\t19\tx');
  t.equal(other.movedUnder('/process', 'process'), other, 'a field elsewhere stays in config.json');
  const spec = defaultSpec();
  spec.process!.terminal = false;
  const process = { ...spec.process!, capabilities: { bounding: ['CAP_BOGUS'] } };
  let err: unknown;
  try {
    compileExecPlan(spec, process, { namespaces: [], preserveFds: 0, mode: 'wait', host: PLAIN_HOST });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigFieldError, 'the plan throws a ConfigFieldError');
  t.equal((err as ConfigFieldError).movedUnder('/process', 'process').message, 'process /capabilities/bounding: unknown capability "CAP_BOGUS"');
  const field = new ConfigFieldError('/process', 'required');
  t.equal(field.movedUnder('/process', 'p.json').message, 'p.json /: required');
  t.equal(new ConfigFieldError('/processes/0', 'x').movedUnder('/process', 'p.json').message, 'config.json /processes/0: x', 'a prefix is whole segments');
});

t.test('flags: both forms, unknown flags and missing values are errors', async (t) => {
  const spec = { string: ['bundle', 'pid-file'], boolean: ['detach'], alias: { b: 'bundle', d: 'detach' } };
  t.same(parseFlags(['--bundle', '/b', 'id'], spec, 'run').flags.bundle, '/b');
  t.same(parseFlags(['--bundle=/b', 'id'], spec, 'run').flags.bundle, '/b');
  t.same(parseFlags(['-b', '/b', '-d', 'id'], spec, 'run').args, ['id']);
  t.throws(() => parseFlags(['--bogus', 'id'], spec, 'run'), /run: unknown flag --bogus/);
  t.throws(() => parseFlags(['id', '--pid-file'], spec, 'run'), /run: flag --pid-file needs a value/);
  t.throws(() => parseFlags(['--bundle', 'a', '--bundle', 'b', 'id'], spec, 'run'), /given more than once/);
});

t.test("the cgroup.procs file of pocrun's own cgroup, for the grace-period head start", async (t) => {
  const { CgroupV1Driver, CgroupV2Driver } = await import('../../src/cgroups/index.js');
  const self = '9:name=systemd:/\n8:pids:/user.slice\n4:memory:/process_api/x\n0::/\n';
  const v1 = new CgroupV1Driver('/sys/fs/cgroup', { pids: '/sys/fs/cgroup/pids', memory: '/sys/fs/cgroup/memory' });
  t.equal(v1.ownProcsFile(self), '/sys/fs/cgroup/pids/user.slice/cgroup.procs', 'the first mounted controller, at its own path');
  t.equal(new CgroupV1Driver('/sys/fs/cgroup', { freezer: '/f' }).ownProcsFile(self), undefined, 'none mounted: no head start');
  t.equal(new CgroupV2Driver('/sys/fs/cgroup').ownProcsFile('0::/system.slice/x.service\n'), '/sys/fs/cgroup/system.slice/x.service/cgroup.procs');
  t.equal(new CgroupV2Driver('/sys/fs/cgroup').ownProcsFile('0::/\n'), '/sys/fs/cgroup/cgroup.procs');
});

t.test('the runtime prints only through the output the command line hands in', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const output = { stdout: (s: string) => (out.push(s), true), stderr: (s: string) => (err.push(s), true) };
  const ctx = new RuntimeContext({ root: '/nonexistent-root', logFormat: 'text', debug: false, output });
  ctx.log('warning', 'w1');
  ctx.log('debug', 'not shown without --debug');
  ctx.log('error', 'errors go to the log only: report.ts prints them');
  t.same(err, ['pocrun: warning: w1\n']);
  const debugging = new RuntimeContext({ root: '/nonexistent-root', logFormat: 'text', debug: true, output });
  debugging.log('debug', 'd1');
  t.same(err.slice(1), ['pocrun: debug: d1\n']);
  t.same(out, []);
});

t.test('delete removes a busy cgroup by killing what is left and trying again, then gives up with the error', async (t) => {
  const calls: string[] = [];
  let busy = 2;
  const cgroups = {
    destroy: () => {
      calls.push('destroy');
      if (busy-- > 0) throw new Error('EBUSY');
    },
    exists: () => true,
    killAll: () => void calls.push('kill'),
  };
  destroyCgroup(cgroups, '/poc/x');
  t.same(calls, ['destroy', 'kill', 'destroy', 'kill', 'destroy'], 'killed again before each new try');
  const gone = { ...cgroups, destroy: () => { throw new Error('ENOENT-ish'); }, exists: () => false };
  t.throws(() => destroyCgroup(gone, '/poc/x'), /ENOENT-ish/, 'a cgroup that is gone is not waited for');
  const stuck = { ...cgroups, destroy: () => { throw new Error('still busy'); } };
  const started = Date.now();
  t.throws(() => destroyCgroup(stuck, '/poc/x', 120), /still busy/, 'after the time allowed, the last error');
  t.ok(Date.now() - started >= 120, 'not before');
});

t.test("the state directory's lock: one rule with poc's (common/lock-file.ts), the holder's pid and start time", async (t) => {
  const { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { Store } = await import('../../src/runtime/state-store.js');
  const { readProcStat } = await import('../../src/common/proc.js');
  const { lockHolder, STATE_FILES } = await import('../../src/vocabulary/state-record.js');
  const root = mkdtempSync('/tmp/pocrun-lock-test-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new Store(root);
  mkdirSync(join(root, 'c1'));
  const file = join(root, 'c1', STATE_FILES.lock);
  const unlock = store.lock('c1');
  t.equal(readFileSync(file, 'utf8'), lockHolder(process.pid, readProcStat(process.pid)!.startTime), 'what the front writes too ("%d %s")');
  t.throws(() => store.lock('c1', 30), /container "c1" is busy: another pocrun command \(pid \d+\) holds its lock/);
  unlock();
  unlock();
  t.notOk(existsSync(file), 'released once');
  writeFileSync(file, '999999999 12345');
  store.lock('c1')();
  t.notOk(existsSync(file), 'a dead holder\'s lock is taken over');
  t.throws(() => store.lock('nope'), /container "nope" does not exist/);
});

t.test('the commands that change a container begin alike: lock, record, status (withLockedContainer)', async (t) => {
  const { mkdtempSync, mkdirSync, existsSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { withLockedContainer } = await import('../../src/runtime/status.js');
  const { STATE_FILES } = await import('../../src/vocabulary/state-record.js');
  const root = mkdtempSync('/tmp/pocrun-locked-test-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const output = { stdout: () => true, stderr: () => true };
  const ctx = new RuntimeContext({ root, logFormat: 'text', debug: false, output });
  const record = {
    ociVersion: '1.3.0', id: 'c1', pid: 0, bundle: '/b', initStartTime: '', created: 'now', rootfs: '/b/rootfs', cgroupPath: '/p',
    cgroupDirs: {}, hooks: {}, owner: '',
  };
  ctx.store.makeDir('c1');
  ctx.store.write(record);
  const lockFile = join(root, 'c1', STATE_FILES.lock);

  const seen = withLockedContainer(ctx, 'c1', (r, status) => {
    t.ok(existsSync(lockFile), 'the lock is held while the command acts');
    t.throws(() => ctx.store.lock('c1', 30), /is busy/, 'and another command waits for it');
    return [r.id, status];
  });
  t.same(seen, ['c1', 'creating'], 'the record, and its status read under the lock (pid 0: creating)');
  t.notOk(existsSync(lockFile), 'released after');

  ctx.store.write({ ...record, pid: 999_999_999, initStartTime: '1' });
  t.throws(() => withLockedContainer(ctx, 'c1', (_r, status) => {
    throw new Error(`refused: ${status}`);
  }), /refused: stopped/, "the command's own refusal goes through");
  t.notOk(existsSync(lockFile), 'released after a throw too');

  t.throws(() => withLockedContainer(ctx, 'nope', () => t.fail('no act')), /container "nope" does not exist/, 'no directory: the lock says so');
  mkdirSync(join(root, 'half'));
  t.throws(() => withLockedContainer(ctx, 'half', () => t.fail('no act')), /container "half" does not exist/, 'no state.json: the read says so');
  t.notOk(existsSync(join(root, 'half', STATE_FILES.lock)), 'and lets the lock go');
  t.equal(withLockedContainer(ctx, 'nope', () => 'acted', { whenGone: () => 'gone' }), 'gone', 'whenGone: no directory');
  t.equal(withLockedContainer(ctx, 'half', () => 'acted', { whenGone: () => 'gone' }), 'gone', 'whenGone: no state.json');
  t.equal(withLockedContainer(ctx, 'c1', () => 'acted', { whenGone: () => 'gone' }), 'acted', 'whenGone: there, it acts');
});
