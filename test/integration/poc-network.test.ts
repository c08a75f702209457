/**
 * poc's bridge networking, proven inside a simulated host (its traffic stays in network namespaces the test
 * makes: nothing leaves the machine):
 *
 *   uplink netns  198.51.100.1/24 ── veth ── 198.51.100.2/24  "host" netns  (default route via .1)
 *                                                         └─ pocbr0 10.89.0.1/16, nftables table ip poc
 *                                                              ├─ veth ── eth0 10.89.0.x   container netns c1
 *                                                              └─ veth ── eth0 10.89.0.y   container netns c2
 *
 * Everything is created in namespaces this test makes and removes; the real host's links and rules are
 * never touched (checked at the end). Traffic goes only between these namespaces.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  allocateContainerNetwork,
  containerChain,
  destroyNetwork,
  getContainerNetwork,
  parseHookState,
  runNetworkHook,
  setupContainerNetwork,
  teardownContainerNetwork,
  vethName,
} from '../../src/poc/network/index.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'network namespaces need root');
  process.exit(0);
}

const tag = `poc-test-${randomBytes(3).toString('hex')}`;
const ns = { host: `${tag}-host`, uplink: `${tag}-uplink`, c1: `${tag}-c1`, c2: `${tag}-c2`, c3: `${tag}-c3` };
const nsPath = (n: string) => `/run/netns/${n}`;
const hostNetns = nsPath(ns.host);
const root = mkdtempSync(join(tmpdir(), 'poc-net-'));
const children: ChildProcess[] = [];

const sh = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
const inNs = (n: string, cmd: string, ...args: string[]) => sh('ip', ['netns', 'exec', n, cmd, ...args]);

// What the real host has before; compared at the end.
const hostTablesBefore = sh('nft', ['list', 'tables']);
const hostLinksBefore = sh('ip', ['-o', 'link', 'show']).replace(/^\d+: /gm, '').split('\n').map((l) => l.split(':')[0]).sort().join(' ');

t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of Object.values(ns)) {
    try {
      sh('ip', ['netns', 'del', n]);
    } catch {
      // not made
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** A TCP server in a namespace that answers "from <client address>" (node, so no extra package). */
async function server(n: string, host: string, port: number): Promise<void> {
  const code = `require('net').createServer((s) => { s.end('from ' + s.remoteAddress.replace(/^::ffff:/, '') + '\\n'); }).listen(${port}, ${JSON.stringify(host)}, () => console.log('ready'));`;
  const child = spawn('ip', ['netns', 'exec', n, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`server in ${n} exited with ${c}`)));
  });
}

/** Connects from a namespace; resolves to the server's answer, or "ERROR: ..." after a short timeout. */
function fetchFrom(n: string, host: string, port: number): string {
  const code = `const s = require('net').connect(${port}, ${JSON.stringify(host)}); let d = ''; s.setTimeout(2000, () => { console.log('ERROR: timeout'); process.exit(0); }); s.on('data', (x) => d += x); s.on('end', () => console.log(d.trim())); s.on('error', (e) => console.log('ERROR: ' + e.code));`;
  return inNs(n, process.execPath, '-e', code).trim();
}

t.before(() => {
  for (const n of Object.values(ns)) sh('ip', ['netns', 'add', n]);
  sh('ip', ['-n', ns.host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns.uplink]);
  sh('ip', ['-n', ns.host, '-batch', '-'], 'link set lo up\naddr add 198.51.100.2/24 dev up0\nlink set up0 up\nroute add default via 198.51.100.1\n');
  sh('ip', ['-n', ns.uplink, '-batch', '-'], 'link set lo up\naddr add 198.51.100.1/24 dev up0\nlink set up0 up\n');
});

t.test('containers get addresses on the bridge, reach each other, and reach the uplink through NAT', async (t) => {
  const a = await allocateContainerNetwork({ root, containerId: 'c1', hostname: 'one', publish: ['8080:80', '127.0.0.1:8081:81'] });
  const b = await allocateContainerNetwork({ root, containerId: 'c2', hostname: 'two' });
  t.not(a.ip, b.ip);
  await setupContainerNetwork({ root, hostNetns, containerId: 'c1', netnsPath: nsPath(ns.c1) });
  await setupContainerNetwork({ root, hostNetns, containerId: 'c2', netnsPath: nsPath(ns.c2) });

  const addr = JSON.parse(sh('ip', ['-n', ns.c1, '-j', 'addr', 'show', 'dev', 'eth0']))[0];
  t.same(addr.addr_info.filter((x: { family: string }) => x.family === 'inet').map((x: { local: string; prefixlen: number }) => `${x.local}/${x.prefixlen}`), [`${a.ip}/16`]);
  t.match(sh('ip', ['-n', ns.c1, 'route', 'show', 'default']), /default via 10\.89\.0\.1 dev eth0/);
  t.match(sh('ip', ['-n', ns.host, 'link', 'show', vethName('c1')]), /master pocbr0/, 'host end attached to the bridge');

  await server(ns.uplink, '198.51.100.1', 9000);
  t.equal(fetchFrom(ns.c1, '198.51.100.1', 9000), 'from 198.51.100.2', 'c1 reaches the uplink, masqueraded as the host');
  t.equal(fetchFrom(ns.c2, '198.51.100.1', 9000), 'from 198.51.100.2', 'c2 too');

  await server(ns.c2, '0.0.0.0', 7000);
  t.equal(fetchFrom(ns.c1, b.ip, 7000), `from ${a.ip}`, 'containers reach each other directly, no NAT');
});

t.test('a published port answers from outside, from the host, and on the host\'s 127.0.0.1', async (t) => {
  const a = getContainerNetwork('c1', { root })!;
  await server(ns.c1, '0.0.0.0', 80);
  await server(ns.c1, '0.0.0.0', 81);
  t.equal(fetchFrom(ns.uplink, '198.51.100.2', 8080), 'from 198.51.100.1', 'from the uplink: DNAT, client address kept');
  t.equal(fetchFrom(ns.host, '198.51.100.2', 8080), `from 198.51.100.2`, 'from the host to its own address');
  t.equal(fetchFrom(ns.host, '127.0.0.1', 8080), 'from 10.89.0.1', 'from the host on 127.0.0.1 (masqueraded to the gateway)');
  t.equal(fetchFrom(ns.c2, '198.51.100.2', 8080), 'from 10.89.0.1', 'hairpin: another container through the host address');
  t.equal(fetchFrom(ns.host, '127.0.0.1', 8081), 'from 10.89.0.1', '127.0.0.1:8081:81 answers on 127.0.0.1');
  t.match(fetchFrom(ns.uplink, '198.51.100.2', 8081), /^ERROR/, '...and only there');
  t.equal(a.publish.length, 2);
});

t.test('a container cannot reach the host\'s loopback services through the bridge', async (t) => {
  await server(ns.host, '127.0.0.1', 9999);
  t.equal(fetchFrom(ns.host, '127.0.0.1', 9999), 'from 127.0.0.1', 'the service answers on the host');
  // Make c2 send packets for 127.0.0.2 out of eth0 to the gateway, as a hostile container could.
  sh('ip', ['-n', ns.c2, 'addr', 'flush', 'dev', 'lo']); // 127.0.0.1 is no longer local in c2
  inNs(ns.c2, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet');
  const gwMac = JSON.parse(sh('ip', ['-n', ns.host, '-j', 'link', 'show', 'pocbr0']))[0].address;
  sh('ip', ['-n', ns.c2, 'neigh', 'replace', '10.89.0.1', 'lladdr', gwMac, 'dev', 'eth0']);
  sh('ip', ['-n', ns.c2, 'route', 'add', '127.0.0.1/32', 'via', '10.89.0.1', 'dev', 'eth0']);
  t.match(fetchFrom(ns.c2, '127.0.0.1', 9999), /^ERROR/, 'dropped by the guard chain');
});

t.test('setup from a hook: the OCI state on stdin gives the pid', async (t) => {
  const sleeper = spawn('ip', ['netns', 'exec', ns.c3, 'sleep', '60'], { stdio: 'ignore' });
  children.push(sleeper);
  await new Promise((r) => setTimeout(r, 200));
  const state = parseHookState(JSON.stringify({ ociVersion: '1.2.0', id: 'c3', status: 'creating', pid: sleeper.pid, bundle: '/b' }));
  await allocateContainerNetwork({ root, containerId: state.id, hostname: 'three' });
  const c3 = await setupContainerNetwork({ root, hostNetns, containerId: state.id, pid: state.pid! });
  t.match(sh('ip', ['-n', ns.c3, 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${c3.ip.replace(/\./g, '\\.')}/16`));
  const again = await setupContainerNetwork({ root, hostNetns, containerId: 'c3', pid: sleeper.pid! });
  t.equal(again.ip, c3.ip, 'a hook that runs twice redoes the same setup');
  t.equal(sh('ip', ['-n', ns.c3, '-o', 'link', 'show']).split('\n').filter((l) => /eth0/.test(l)).length, 1);
  // The same through the hook entry point, as `poc hook network ...` runs it: poststop has no pid.
  await runNetworkHook('teardown', JSON.stringify({ ociVersion: '1.2.0', id: 'c3', status: 'stopped', bundle: '/b' }), { root, hostNetns });
  t.throws(() => sh('ip', ['-n', ns.host, 'link', 'show', vethName('c3')]), 'poststop hook removed the veth');
  await t.rejects(runNetworkHook('setup', JSON.stringify({ id: 'c3' }), { root, hostNetns }), /has no "pid"/);
  await runNetworkHook('setup', JSON.stringify({ id: 'other', pid: sleeper.pid, annotations: { 'io.poc.container.id': 'c3' } }), { root, hostNetns });
  t.match(sh('ip', ['-n', ns.c3, 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${c3.ip.replace(/\./g, '\\.')}/16`), 'createRuntime hook set it up again');
  sleeper.kill('SIGKILL');
});

t.test('teardown removes exactly that container\'s link and rules', async (t) => {
  const before = sh('ip', ['netns', 'exec', ns.host, 'nft', 'list', 'table', 'ip', 'poc']);
  t.match(before, new RegExp(`chain ${containerChain('c1')}`));
  t.match(before, /tcp \. 8080 : jump/);
  await teardownContainerNetwork({ root, hostNetns, containerId: 'c1' });
  const after = sh('ip', ['netns', 'exec', ns.host, 'nft', 'list', 'table', 'ip', 'poc']);
  t.notMatch(after, new RegExp(containerChain('c1')), 'c1\'s chain is gone');
  t.notMatch(after, /8080|8081/, 'c1\'s map elements are gone');
  t.match(after, new RegExp(`chain ${containerChain('c2')}`), 'c2\'s chain stays');
  t.match(after, /masquerade/, 'the base rules stay');
  t.throws(() => sh('ip', ['-n', ns.host, 'link', 'show', vethName('c1')]), 'c1\'s veth is gone');
  t.ok(getContainerNetwork('c1', { root }), 'without release, the address stays reserved');
  t.match(fetchFrom(ns.uplink, '198.51.100.2', 8080), /^ERROR/, 'the port is no longer published');
  t.equal(fetchFrom(ns.c2, '198.51.100.1', 9000), 'from 198.51.100.2', 'c2 still reaches out');
  await t.resolves(teardownContainerNetwork({ root, hostNetns, containerId: 'c1', release: true }), 'teardown again is harmless');
  t.equal(getContainerNetwork('c1', { root }), undefined, 'released');
});

t.test('destroyNetwork removes the table, the bridge and every veth', async (t) => {
  await destroyNetwork({ root, hostNetns });
  t.notMatch(sh('ip', ['netns', 'exec', ns.host, 'nft', 'list', 'tables']), /poc/);
  t.throws(() => sh('ip', ['-n', ns.host, 'link', 'show', 'pocbr0']));
  t.same(sh('ip', ['-n', ns.host, '-o', 'link', 'show']).split('\n').filter((l) => /^\d+: poc/.test(l)), [], 'no poc link left');
  await t.resolves(destroyNetwork({ root, hostNetns }), 'and again');
});

t.test('the real host was not touched', async (t) => {
  t.equal(sh('nft', ['list', 'tables']), hostTablesBefore);
  const links = sh('ip', ['-o', 'link', 'show']).replace(/^\d+: /gm, '').split('\n').map((l) => l.split(':')[0]).sort().join(' ');
  t.equal(links, hostLinksBefore);
});
