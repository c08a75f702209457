import t from 'tap';
import {
  blkioWeightToIOWeight,
  checkPageSize,
  cpuMax,
  cpuSharesToWeight,
  deviceRule,
  hugePageSizeName,
  intText,
  memorySwapToV2,
  parseCpuList,
  v2Limit,
} from '../../src/cgroups/convert.js';
import type { LinuxDeviceCgroup } from '../../src/cgroups/resources.js';

t.test('cpu.shares converts to cpu.weight with the formula of runc 1.3+ and crun 1.23+', async (t) => {
  const cases: [number, number][] = [
    // the cases of opencontainers/cgroups' utils_test.go (runc 1.3+): unset, out of range, the ends, the default
    [0, 0], [1, 1], [2, 1], [3, 2], [1024, 100], [262143, 10000], [262144, 10000], [262145, 10000],
    // points between, from the same formula (the old linear one gave 4, 20, 79, 191)
    [100, 17], [512, 59], [2048, 174], [5000, 356],
  ];
  for (const [shares, weight] of cases) t.equal(cpuSharesToWeight(shares), weight, `shares ${shares}`);
});

t.test('blkio weight converts to io.weight with runc formula', async (t) => {
  const cases: [number, number][] = [[0, 0], [10, 1], [100, 910], [500, 4950], [1000, 10000]];
  for (const [w, io] of cases) t.equal(blkioWeightToIOWeight(w), io, `weight ${w}`);
});

t.test('memory.swap (memory+swap) becomes memory.swap.max (swap alone)', async (t) => {
  const cases: [number | undefined, number | undefined, number | undefined][] = [
    // swap, limit, memory.swap.max (-1 = max, undefined = leave)
    [undefined, undefined, undefined],
    [undefined, 1000, undefined],
    [undefined, -1, -1],
    [-1, 1000, -1],
    [3000, 1000, 2000],
    [1000, 1000, 0],
  ];
  for (const [swap, limit, want] of cases) t.equal(memorySwapToV2(swap, limit), want, `swap ${swap} limit ${limit}`);
  t.throws(() => memorySwapToV2(500, 1000), /memory.swap: 500 is below memory.limit 1000/);
  t.throws(() => memorySwapToV2(500, undefined), /a swap limit needs a memory limit/);
});

t.test('cpu.max is "quota period"', async (t) => {
  const cases: [number | undefined, number | undefined, string | undefined][] = [
    [undefined, undefined, undefined],
    [50000, 100000, '50000 100000'],
    [50000, undefined, '50000'],
    [-1, 100000, 'max 100000'],
    [-1, undefined, 'max'],
    [undefined, 100000, 'max 100000'],
  ];
  for (const [q, p, want] of cases) t.equal(cpuMax(q, p), want, `quota ${q} period ${p}`);
  t.equal(cpuMax(undefined, 20000, '30000'), '30000 20000', 'a period alone keeps the current quota');
});

t.test('v2 limits: 0 is unset, negative is max', async (t) => {
  t.equal(v2Limit(undefined, 'x'), undefined);
  t.equal(v2Limit(0, 'x'), undefined);
  t.equal(v2Limit(-1, 'x'), 'max');
  t.equal(v2Limit(4096, 'x'), '4096');
});

t.test('integers are written in full, never in exponent form', async (t) => {
  t.equal(intText(9223372036854775807, 'x'), '9223372036854775808');
  t.equal(intText(-1, 'x'), '-1');
  t.throws(() => intText(1.5, 'memory.limit'), /memory.limit: 1.5 is not an integer/);
});

t.test('device rules become v1 devices.allow/deny lines', async (t) => {
  const cases: [LinuxDeviceCgroup, string][] = [
    [{ allow: false }, 'a *:* rwm'],
    [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, 'c 1:3 rwm'],
    [{ allow: true, type: 'c', major: 136, access: 'rw' }, 'c 136:* rw'],
    [{ allow: true, type: 'b', major: 8, minor: 0, access: 'r' }, 'b 8:0 r'],
    [{ allow: true, type: 'c', major: -1, minor: -1, access: 'm' }, 'c *:* m'],
  ];
  for (const [rule, line] of cases) t.equal(deviceRule(rule), line);
  t.throws(() => deviceRule({ allow: true, type: 'x' }), /type "x" is not a, c or b/);
  t.throws(() => deviceRule({ allow: true, access: 'rx' }), /access "rx"/);
});

t.test('huge page sizes', async (t) => {
  t.equal(checkPageSize('2MB'), '2MB');
  t.equal(checkPageSize('64KB'), '64KB');
  t.throws(() => checkPageSize('2M'), /pageSize "2M"/);
  t.throws(() => checkPageSize('../x'), /pageSize/);
  t.equal(hugePageSizeName('hugepages-2048kB'), '2MB');
  t.equal(hugePageSizeName('hugepages-1048576kB'), '1GB');
  t.equal(hugePageSizeName('hugepages-64kB'), '64KB');
  t.equal(hugePageSizeName('other'), undefined);
});

t.test('cpu lists', async (t) => {
  t.same(parseCpuList('0-3,7\n'), [0, 1, 2, 3, 7]);
  t.same(parseCpuList(''), []);
  t.same(parseCpuList('1'), [1]);
});
