/**
 * --systemd-cgroup on a host where systemd is not the init (this machine's host): a clear error that says so,
 * a non-zero exit and nothing left behind. The driver itself is tested with systemd in the guest
 * (test/guest/systemd.test.ts).
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, setup } from '../helpers/runtime.js';

const { work, rt, residue } = setup();
const NO_SYSTEMD = /^pocrun: --systemd-cgroup: systemd is not running on this host \(no \/run\/systemd\/system, as sd_booted\(3\) checks\); without the flag pocrun manages the cgroup itself \(cgroupfs\)\n$/;

t.test('this host has no systemd as its init', async (t) => {
  t.notOk(existsSync('/run/systemd/system'), 'these tests are for a host without systemd; the guest suite tests the driver');
});

t.test('create and run with --systemd-cgroup: one clear error, exit 1, nothing made', async (t) => {
  const b = makeBundle(work, (s) => {
    s.linux!.cgroupsPath = 'system.slice:pocrun-test:sd1';
  });
  for (const command of ['create', 'run']) {
    const log = join(work, `${command}.log`);
    const r = rt.run(['--systemd-cgroup', '--log', log, '--log-format', 'json', command, '--bundle', b.dir, 'sd1']);
    t.equal(r.status, 1, `${command}: exit 1`);
    t.match(r.stderr, NO_SYSTEMD, `${command}: the error says why`);
    const line = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').at(-1)!);
    t.match(line, { level: 'error', msg: /^--systemd-cgroup: systemd is not running on this host/ }, `${command}: the same in --log`);
    t.notOk(existsSync(join(rt.root, 'sd1')), `${command}: no state directory`);
    t.equal(rt.run(['state', 'sd1']).status, 1, `${command}: no container`);
  }
});

t.test('features says systemd: false here', async (t) => {
  t.equal(JSON.parse(rt.ok(['features'])).linux.cgroup.systemd, false);
});

t.test('nothing left behind', async (t) => residue(t));
