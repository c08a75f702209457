import t from 'tap';
import { PocrunError } from '../../src/errors.js';
import { checkResources, parseBytes, readResources, resourcesFromFlags } from '../../src/runtime/update.js';
import { parseDuration } from '../../src/runtime/events.js';
import { goDurationNs } from '../../src/common/duration.js';
import { filterPsOutput } from '../../src/runtime/ps.js';
import { features, seccompFeatures } from '../../src/runtime/features.js';
import { validate_features } from '../../src/spec/generated/validators.js';
import { helpOrCheckArgs, splitAtFirstArg, parseFlags } from '../../src/cli/args.js';

t.test('sizes as runc (go-units RAMInBytes) reads them', async (t) => {
  t.equal(parseBytes('512m', '--memory'), 512 * 1024 * 1024);
  t.equal(parseBytes('1g', '--memory'), 1024 ** 3);
  t.equal(parseBytes('1.5G', '--memory'), 1.5 * 1024 ** 3);
  t.equal(parseBytes('64MiB', '--memory'), 64 * 1024 ** 2);
  t.equal(parseBytes('100k', '--memory'), 102400);
  t.equal(parseBytes('2 gb', '--memory'), 2 * 1024 ** 3);
  t.equal(parseBytes('4096', '--memory'), 4096);
  t.throws(() => parseBytes('12x', '--memory'), /invalid value for --memory: invalid size: "12x"/);
  t.throws(() => parseBytes('-5', '--memory'), /invalid size/);
});

t.test("runc's update flags become resources; 0 means unchanged", async (t) => {
  t.same(resourcesFromFlags({ memory: '256m', 'memory-swap': '-1', 'cpu-quota': '50000', 'cpu-period': '100000', 'pids-limit': '20' }), {
    memory: { limit: 256 * 1024 * 1024, swap: -1 },
    cpu: { quota: 50000, period: 100000 },
    pids: { limit: 20 },
  });
  t.same(resourcesFromFlags({ 'cpu-shares': '512', 'cpuset-cpus': '0', 'cpuset-mems': '0', 'blkio-weight': '300', 'memory-reservation': '1m' }), {
    memory: { reservation: 1048576 },
    cpu: { shares: 512, cpus: '0', mems: '0' },
    blockIO: { weight: 300 },
  });
  t.same(resourcesFromFlags({ 'pids-limit': '0', memory: '0' }), {}, 'zero is "not given"');
  t.same(resourcesFromFlags({ 'pids-limit': '-1' }), { pids: { limit: -1 } }, '-1 is unlimited');
  t.throws(() => resourcesFromFlags({ 'cpu-period': '-1' }), /--cpu-period: "-1" is not a non-negative integer/);
  t.throws(() => resourcesFromFlags({ 'blkio-weight': '5' }), /not in 10..1000/);
});

t.test('--resources is checked as linux.resources', async (t) => {
  t.same(checkResources({ memory: { limit: 1000, swap: 0 }, pids: { limit: 5 } }, 'r'), { memory: { limit: 1000 }, pids: { limit: 5 } });
  t.throws(() => checkResources({ memory: { limit: 'x' } }, 'update --resources f'), /update --resources f: \/memory\/limit: must be an integer/);
  t.throws(() => checkResources([], 'r'), /must be a JSON object/);
  t.same(readResources('-', () => Buffer.from('{"pids":{"limit":7}}')), { pids: { limit: 7 } });
  t.throws(() => readResources('-', () => Buffer.from('{"pids":')), { name: 'PocrunError', message: /^update --resources \(stdin\): not valid JSON: / });
});

t.test('durations as Go writes them', async (t) => {
  t.equal(parseDuration('5s'), 5000);
  t.equal(parseDuration('100ms'), 100);
  t.equal(parseDuration('1m30s'), 90000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('2'), 2000);
  t.throws(() => parseDuration('5 parsecs'), /invalid duration/);
  t.throws(() => parseDuration(''), /invalid duration/);
});

t.test("Go's duration syntax, one parser for pocrun's --interval and poc's health checks (src/common/duration.ts)", async (t) => {
  const good: [string, number][] = [
    ['0', 0], ['30s', 30e9], ['1m30s', 90e9], ['1.5h', 5400e9], ['500ms', 500e6], ['.5s', 500e6], ['1.s', 1e9],
    ['10us', 10e3], ['10µs', 10e3], ['7ns', 7], ['1h2m3s4ms', 3723004e6],
  ];
  for (const [text, ns] of good) t.equal(goDurationNs(text), ns, text);
  for (const bad of ['', '10', 's', '1x', '1s junk', '-1s', ' 1s', '1 s', '.s']) t.equal(goDurationNs(bad), undefined, JSON.stringify(bad));
});

t.test("ps keeps the header and the container's lines", async (t) => {
  const out = 'UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 1\nroot  420     1 other\n';
  t.equal(filterPsOutput(out, [42, 7]), 'UID   PID  PPID CMD\nroot   42     1 sleep 1\n');
  t.throws(() => filterPsOutput('USER COMMAND\nroot x\n', [1]), /couldn't find the PID field/);
});

t.test('features are valid against features-schema.json', async (t) => {
  const f = features() as { linux: { capabilities: string[]; namespaces: string[]; seccomp: unknown }; mountOptions: string[] };
  t.ok(validate_features(f), JSON.stringify(validate_features.errors));
  t.ok(f.linux.capabilities.includes('CAP_SYS_ADMIN'));
  t.same(f.linux.namespaces, ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
  t.ok(f.mountOptions.includes('rbind') && f.mountOptions.includes('rro') && f.mountOptions.includes('rprivate'));
  t.notOk(f.mountOptions.some((o) => o.includes('=')), 'no filesystem data options');
  t.ok(validate_features(features(undefined)), 'without seccomp too');
  const s = seccompFeatures('6.1.0-13-amd64');
  t.ok(s.actions.includes('SCMP_ACT_NOTIFY') && s.operators.includes('SCMP_CMP_MASKED_EQ') && s.archs.includes('SCMP_ARCH_X86_64'));
  t.same(s.supportedFlags, s.knownFlags, 'a 6.1 kernel has every flag');
  t.notOk(seccompFeatures('5.10.0').supportedFlags.includes('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'), 'not before 5.19');
  t.ok(seccompFeatures('5.10.0').supportedFlags.includes('SECCOMP_FILTER_FLAG_SPEC_ALLOW'));
});

t.test('pass-through commands: flags end at the first argument', async (t) => {
  const spec = { string: ['env', 'user', 'cwd'], boolean: ['tty', 'detach'], alias: { e: 'env', t: 'tty', u: 'user' } };
  t.same(splitAtFirstArg(['-e', 'A=1', '-t', '--cwd=/x', 'c1', 'sh', '-c', 'echo -- x', '--', 'y'], spec), [
    ['-e', 'A=1', '-t', '--cwd=/x'],
    ['c1', 'sh', '-c', 'echo -- x', '--', 'y'],
  ]);
  t.same(splitAtFirstArg(['--user', '1000', '--', 'c1', 'ls'], spec), [['--user', '1000'], ['c1', 'ls']]);
  t.same(splitAtFirstArg(['-tu', '5', 'c1'], spec), [['-tu', '5'], ['c1']]);
  t.same(splitAtFirstArg(['c1', '--', '-ef'], spec), [[], ['c1', '--', '-ef']]);
});

t.test('a flag that takes a value takes a negative number (Go flag package)', async (t) => {
  const spec = { string: ['pids-limit', 'memory-swap', 'user'], boolean: ['all'], alias: { u: 'user' } };
  const p = parseFlags(['--pids-limit', '-1', '--memory-swap', '-1', '-u', '-5', 'c1'], spec, 'x');
  t.equal(p.flags['pids-limit'], '-1');
  t.equal(p.flags['memory-swap'], '-1');
  t.equal(p.flags.user, '-5');
  t.same(p.args, ['c1']);
  t.throws(() => parseFlags(['--all', '-1'], spec, 'x'), /unknown flag -1/, 'a boolean takes no value');
});

t.test('a flag named --no-X is true when given (minimist would read it as X=false)', async (t) => {
  const p = parseFlags(['--no-new-privs', '--no-pivot', 'c1'], { boolean: ['no-new-privs', 'no-pivot'] }, 'x');
  t.equal(p.flags['no-new-privs'], true);
  t.equal(p.flags['no-pivot'], true);
  t.same(p.args, ['c1']);
  t.equal(parseFlags(['c1'], { boolean: ['no-pivot'] }, 'x').flags['no-pivot'], false);
  t.throws(() => parseFlags(['--no-such'], { boolean: ['no-pivot'] }, 'x'), /unknown flag --no-such/);
});

t.test("a command's --help and argument count, one rule for pocrun's and poc's command lines", async (t) => {
  const state = { usage: 'state ID', summary: 'print the state', args: [1, 1] as [number, number] };
  const spec = { boolean: ['help'] };
  const check = (argv: string[]) => helpOrCheckArgs('pocrun', 'state', state, parseFlags(argv, spec, 'state'), PocrunError);
  t.equal(check(['--help']), 'Usage: pocrun state ID\n\nprint the state\n');
  t.equal(check(['--help', 'a', 'b']), 'Usage: pocrun state ID\n\nprint the state\n', 'help wins over a wrong count');
  t.equal(check(['c1']), undefined);
  t.throws(() => check([]), { name: 'PocrunError', message: 'state: missing argument; usage: pocrun state ID' });
  t.throws(() => check(['c1', 'c2']), { name: 'PocrunError', message: 'state: unexpected argument "c2"; usage: pocrun state ID' });
});
