/**
 * User networks through the built poc, with real busybox containers, inside a simulated host (as the NAT tests):
 *
 *   uplink netns  198.51.100.1/24 ── veth ── 198.51.100.2/24  "host" netns: poc runs here (nsenter --net)
 *   a resolver (dnsmasq: outside.test → 203.0.113.7)            ├─ front  10.77.0.0/24 + fd00:77::/64
 *                                                               ├─ back   (a range poc picks)
 *                                                               └─ intern (--internal)
 *
 * poc takes the simulated host's resolv.conf from POC_RESOLV_CONF (naming the uplink's resolver). The real
 * host's links, rules and resolvers are never touched: poc's bridges, veths, tables and DNS servers are all in
 * the "host" namespace, and traffic goes only between these namespaces.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { pocIn } from '../helpers/poc.js';
import { buildBusyboxImage } from '../../src/poc/images/index.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'containers and network namespaces need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-un-');
const root = join(work, 'root');
const tag = `pocun-${randomBytes(3).toString('hex')}`;
const ns = { host: `${tag}-host`, uplink: `${tag}-up` };
const hostNetns = `/run/netns/${ns.host}`;
const resolvConf = join(work, 'resolv.conf');
const upstreamPid = join(work, 'upstream.pid');

/** poc, run in the simulated host's network namespace. */
const cli = pocIn(root, { POC_RESOLV_CONF: resolvConf }, ['nsenter', `--net=${hostNetns}`, '--']);
const poc = (...args: string[]) => cli.poc(args);
const ok = (...args: string[]) => cli.ok(args);
const pocAsync = (...args: string[]) => cli.pocAsync(args);

const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
const inHost = (cmd: string, ...args: string[]) => sh('nsenter', [`--net=${hostNetns}`, '--', cmd, ...args]);

/**
 * The IPv4 addresses busybox nslookup gives for a name from inside a container ([] when it cannot resolve it).
 * Asked as "NAME." : busybox's nslookup gives up after the first search domain (example.test here), where the
 * C library's resolver would go on to the name itself.
 */
function lookup(container: string, name: string): string[] {
  const r = poc('exec', container, 'nslookup', '-type=a', `${name}.`);
  const answer = r.stdout.split(/\nName:\s*/).slice(1).join('\n');
  return [...answer.matchAll(/^Address:\s*(\S+)$/gm)].map((m) => m[1]!);
}

/** Whether one ping from a container to an address is answered. */
function pings(container: string, address: string): boolean {
  return poc('exec', container, 'ping', '-c', '1', '-W', '1', address).status === 0;
}

function inspect(ref: string): any {
  return JSON.parse(ok('inspect', ref))[0];
}

/** What of poc's networking the simulated host has: bridges, veths, tables, DNS servers of this root. */
function networkResidue() {
  const links = inHost('ip', '-o', 'link', 'show').split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter((n) => n.startsWith('poc'));
  const tables = inHost('nft', 'list', 'tables').split('\n').filter((l) => / poc$/.test(l));
  const dns = sh('ps', ['-eo', 'args=']).split('\n').filter((l) => l.startsWith('dnsmasq') && l.includes(root));
  const dnsDirs = existsSync(join(root, 'network/dns')) ? readdirSync(join(root, 'network/dns')) : [];
  return { links, tables, dns, dnsDirs };
}

t.before(async () => {
  for (const n of Object.values(ns)) sh('ip', ['netns', 'add', n]);
  sh('ip', ['-n', ns.host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns.uplink]);
  sh('ip', ['-n', ns.host, '-batch', '-'], 'link set lo up\naddr add 198.51.100.2/24 dev up0\nlink set up0 up\nroute add default via 198.51.100.1\n');
  sh('ip', ['-n', ns.uplink, '-batch', '-'], 'link set lo up\naddr add 198.51.100.1/24 dev up0\nlink set up0 up\n');
  // The outside world's resolver, in the uplink namespace: it knows one name, and says NXDOMAIN for the others
  // (as a real one would; a refusal would stop busybox's search-list walk).
  sh('ip', ['netns', 'exec', ns.uplink, 'dnsmasq', '--conf-file=/dev/null', `--pid-file=${upstreamPid}`, '--bind-interfaces', '--listen-address=198.51.100.1', '--no-hosts', '--no-resolv', '--address=/outside.test/203.0.113.7', '--local=/test/', '--local=//', `--log-facility=${join(work, 'upstream.log')}`]);
  writeFileSync(resolvConf, 'nameserver 198.51.100.1\nsearch example.test\n');
  await buildBusyboxImage({ root });
});

t.teardown(() => {
  for (const id of existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []) poc('rm', '-f', id);
  poc('network', 'prune');
  poc('prune');
  try {
    process.kill(Number(readFileSync(upstreamPid, 'utf8')), 'SIGTERM');
  } catch {
    // not started
  }
  for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n]);
  rmSync(work, { recursive: true, force: true });
});

t.test('bad input: one clear error each, and nothing made', async (t) => {
  ok('network', 'create', '--ipv6', '--subnet', '10.77.0.0/24', '--subnet', 'fd00:77::/64', 'front');
  const before = readFileSync(join(root, 'network/networks.json'), 'utf8');
  const bad: Array<[string[], RegExp]> = [
    [['network', 'create', '--subnet', '10.77.0.128/25', 'x'], /--subnet 10\.77\.0\.128\/25 overlaps 10\.77\.0\.0\/24 of network front/],
    [['network', 'create', '--subnet', '10.1.2.300/24', 'x'], /invalid subnet "10\.1\.2\.300\/24"/],
    [['network', 'create', '--subnet', '10.1.2.0/24', '--gateway', '10.1.3.1', 'x'], /--gateway 10\.1\.3\.1 is not a host address of 10\.1\.2\.0\/24/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:77::/56', 'x'], /overlaps fd00:77::\/64 of network front/],
    [['network', 'create', 'front'], /network front already exists/],
    [['network', 'create', '--subnet', '198.51.100.0/25', 'x'], /--subnet 198\.51\.100\.0\/25 overlaps the host's route to 198\.51\.100\.0\/24 \(dev up0\)/],
    [['network', 'create', 'host'], /network name "host" is reserved/],
    [['network', 'create', '--bogus', 'x'], /network create: unknown flag --bogus/],
    [['network', 'rm', 'nosuch'], /no such network: nosuch/],
    [['network', 'frobnicate'], /network: unknown subcommand "frobnicate"/],
    [['run', '--rm', '--network', 'nosuch', 'busybox', 'true'], /no such network: nosuch/],
    [['run', '--rm', '--network', 'front', '--ip', '10.78.0.5', 'busybox', 'true'], /address 10\.78\.0\.5 is not a host address of 10\.77\.0\.0\/24/],
  ];
  for (const [args, re] of bad) {
    const r = poc(...args);
    t.not(r.status, 0, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
  }
  t.equal(readFileSync(join(root, 'network/networks.json'), 'utf8'), before, 'the networks are as they were');
  t.same(readdirSync(join(root, 'containers')), [], 'no container left behind');
  t.same(networkResidue().links, [], 'no bridge or veth made');
});

let dbIp = '';
let webIp = '';

t.test('containers find each other by name, alias and short id; other names go to the host\'s resolver', async (t) => {
  ok('network', 'create', 'back');
  ok('network', 'create', '--internal', 'intern');
  const db = ok('run', '-d', '--name', 'db', '--network', 'front', '--network', 'back', '--network-alias', 'database', 'busybox', 'sleep', '600').trim();
  ok('run', '-d', '--name', 'web', '--network', 'front', '--dns', '198.51.100.1', '--add-host', 'legacy:192.0.2.10', '--add-host', 'gw:host-gateway', 'busybox', 'sleep', '600');
  const nets = inspect('db').NetworkSettings.Networks;
  t.same(Object.keys(nets), ['front', 'back'], 'db is on both networks');
  t.same([nets.front.Interface, nets.back.Interface], ['eth0', 'eth1']);
  dbIp = nets.front.IPAddress;
  webIp = inspect('web').NetworkSettings.Networks.front.IPAddress;
  t.match(dbIp, /^10\.77\.0\.\d+$/);
  t.same(lookup('web', 'db'), [dbIp], 'by name');
  t.same(lookup('web', 'database'), [dbIp], 'by alias');
  t.same(lookup('web', db.slice(0, 12)), [dbIp], 'by short id');
  t.same(lookup('db', 'web'), [webIp], 'and the other way');
  t.same(lookup('web', 'outside.test'), ['203.0.113.7'], 'an outside name, forwarded to the host\'s resolver');
  t.ok(pings('web', 'db'), 'web reaches db by name');
  t.ok(pings('web', '198.51.100.1'), 'a way out through the host');
  const resolv = ok('exec', 'web', 'cat', '/etc/resolv.conf');
  t.match(resolv, /^nameserver 10\.77\.0\.1\nnameserver 198\.51\.100\.1$/m, 'the network\'s DNS server, then --dns');
  t.match(resolv, /^search example\.test$/m, 'the host\'s search domains kept');
  const hosts = ok('exec', 'web', 'cat', '/etc/hosts');
  t.match(hosts, /^192\.0\.2\.10\tlegacy$/m, '--add-host');
  t.match(hosts, /^10\.77\.0\.1\tgw$/m, '--add-host NAME:host-gateway is the network\'s gateway');
  const lines = inHost('ip', '-o', 'link', 'show');
  t.equal(inspect('db').NetworkSettings.Networks.front.NetworkID, JSON.parse(ok('network', 'inspect', 'front'))[0].Id);
  t.match(lines, /pocbr[0-9a-f]{8}/, 'the networks\' bridges are in the simulated host');
});

t.test('dual-stack: IPv6 addresses on front, reachable', async (t) => {
  const v6 = inspect('db').NetworkSettings.Networks.front.GlobalIPv6Address;
  t.match(v6, /^fd00:77::[0-9a-f]+$/);
  t.match(ok('exec', 'web', 'ip', '-6', 'addr', 'show', 'dev', 'eth0'), /inet6 fd00:77::[0-9a-f]+\/64 scope global/);
  t.ok(pings('web', v6), 'web reaches db over IPv6');
  t.match(ok('exec', 'web', 'ip', '-6', 'route', 'show', 'default'), /default via fd00:77::1 dev eth0/);
  t.match(ok('network', 'inspect', 'front'), /"EnableIPv6": true/);
});

t.test('networks are isolated from each other; an internal network has no way out', async (t) => {
  ok('run', '-d', '--name', 'other', '--network', 'back', 'busybox', 'sleep', '600');
  ok('run', '-d', '--name', 'hidden', '--network', 'intern', 'busybox', 'sleep', '600');
  const dbBack = inspect('db').NetworkSettings.Networks.back.IPAddress;
  t.ok(pings('other', dbBack), 'other reaches db on their shared network');
  t.same(lookup('other', 'db'), [dbBack], 'and resolves it to its address there');
  t.notOk(pings('other', webIp), 'other cannot reach web on front');
  t.notOk(pings('web', inspect('other').NetworkSettings.Networks.back.IPAddress), 'nor web other');
  t.same(lookup('other', 'web'), [], 'and back\'s DNS does not know front\'s containers');
  t.notOk(pings('hidden', '198.51.100.1'), 'internal: no way out');
  t.notOk(pings('hidden', webIp), 'internal: no way to other networks');
  t.notMatch(ok('exec', 'hidden', 'ip', 'route'), /^default/m, 'internal: no default route');
  t.notOk(pings('web', inspect('hidden').NetworkSettings.Networks.intern.IPAddress), 'nor a way in');
});

t.test('connect and disconnect a running container', async (t) => {
  ok('network', 'connect', '--alias', 'www', 'back', 'web');
  const nets = inspect('web').NetworkSettings.Networks;
  t.same(Object.keys(nets), ['front', 'back']);
  t.equal(nets.back.Interface, 'eth1');
  t.match(ok('exec', 'web', 'ip', 'addr', 'show', 'dev', 'eth1'), new RegExp(`inet ${nets.back.IPAddress.replace(/\./g, '\\.')}/24`));
  t.same(lookup('other', 'www'), [nets.back.IPAddress], 'other resolves its new alias');
  t.ok(pings('other', 'web'), 'and reaches it');
  t.match(ok('exec', 'web', 'ip', 'route', 'show', 'default'), /via 10\.77\.0\.1 dev eth0/, 'the default route stays on the first network');
  t.match(poc('network', 'connect', 'back', 'web').stderr, /container web is already connected to network back/);
  ok('network', 'disconnect', 'back', 'web');
  t.same(Object.keys(inspect('web').NetworkSettings.Networks), ['front']);
  t.not(poc('exec', 'web', 'ip', 'link', 'show', 'dev', 'eth1').status, 0, 'eth1 is gone');
  t.same(lookup('other', 'www'), [], 'and its name with it');
  t.ok(pings('web', 'db'), 'web still on front');
  t.match(poc('network', 'disconnect', 'back', 'web').stderr, /container web is not connected to network back/);
});

t.test('a port published from a container on a user network', async (t) => {
  ok('run', '-d', '--name', 'pub', '--network', 'back', '-p', '8080:80', 'busybox', 'sh', '-c', 'mkdir -p /www && echo from-back > /www/index.html && exec httpd -f -p 80 -h /www');
  let body = '';
  for (let i = 0; i < 50 && body === ''; i++) {
    // From the uplink, as a client outside the host would.
    const get = "require('http').get('http://198.51.100.2:8080/', { timeout: 2000 }, (r) => r.pipe(process.stdout)).on('error', () => {})";
    body = spawnSync('ip', ['netns', 'exec', ns.uplink, process.execPath, '-e', get], { encoding: 'utf8' }).stdout.trim();
    if (body === '') await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(body, 'from-back', 'DNAT to its address on back');
  ok('rm', '-f', 'pub');
  t.notMatch(inHost('nft', 'list', 'table', 'ip', 'poc'), /8080/, 'its rules are gone with it');
});

t.test('a network in use is not removed; -f stops its containers first', async (t) => {
  const r = poc('network', 'rm', 'front');
  t.not(r.status, 0);
  t.match(r.stderr, /network front is in use by 2 containers \((db|web), (db|web)\)/);
  t.match(ok('network', 'ls', '-q'), /^front$/m, 'still there');
  t.ok(pings('web', 'db'), 'and still working');
  ok('network', 'rm', '-f', 'front');
  t.notMatch(ok('network', 'ls', '-q'), /^front$/m, 'removed');
  t.match(ok('ps', '-a'), /Exited.*\bweb\b/, 'web was stopped');
  t.match(ok('ps', '-a'), /Exited.*\bdb\b/, 'db too');
  t.same(Object.keys(inspect('db').NetworkSettings.Networks), ['back'], 'db is off front, and still on back');
  t.notOk(networkResidue().dns.some((l) => l.includes('/dns/front/')), 'front\'s DNS server is gone');
});

t.test('concurrency: networks made and removed while containers start on them', async (t) => {
  // Four creates at once: four distinct ranges (each planned under the network lock against the others).
  const made = await Promise.all(['c1', 'c2', 'c3', 'c4'].map((n) => pocAsync('network', 'create', n)));
  t.same(made.map((r) => r.status), [0, 0, 0, 0], made.map((r) => r.stderr).join(''));
  const subnets = ['c1', 'c2', 'c3', 'c4'].map((n) => JSON.parse(ok('network', 'inspect', n))[0].IPAM.Config[0].Subnet);
  t.equal(new Set(subnets).size, 4, `distinct ranges: ${subnets.join(' ')}`);
  // Containers starting on c1 while c1 is being removed, and c2..c4 removed meanwhile: each run either gets
  // its container wired, or fails cleanly because the network is gone; the removal either happens before
  // any container reserved an address, or is refused as "in use".
  const runs = ['r1', 'r2', 'r3'].map((n) => pocAsync('run', '-d', '--name', n, '--network', 'c1', 'busybox', 'sleep', '600'));
  const rms = ['c1', 'c2', 'c3', 'c4'].map((n) => pocAsync('network', 'rm', n));
  const [runResults, rmResults] = [await Promise.all(runs), await Promise.all(rms)];
  t.same(rmResults.slice(1).map((r) => r.status), [0, 0, 0], 'the idle networks are removed');
  const rm1 = rmResults[0]!;
  const started = runResults.filter((r) => r.status === 0).length;
  for (const r of runResults) if (r.status !== 0) t.match(r.stderr, /no such network: c1/, `a run that lost the race names the network: ${r.stderr}`);
  if (rm1.status === 0) {
    t.notMatch(ok('network', 'ls', '-q'), /^c1$/m, 'c1 removed');
    t.equal(started, 0, 'so no container could have started on it');
  } else {
    t.match(rm1.stderr, /network c1 is in use/, `refused: ${rm1.stderr}`);
    t.ok(started > 0, 'refused because a container is on it');
    for (const n of ['r1', 'r2', 'r3']) {
      if (poc('inspect', n).status !== 0) continue;
      t.ok(inspect(n).State.Running, `${n} runs`);
      t.same(Object.keys(inspect(n).NetworkSettings.Networks), ['c1'], `${n} is wired into c1`);
      t.match(ok('exec', n, 'ip', 'addr', 'show', 'dev', 'eth0'), new RegExp(`inet ${inspect(n).NetworkSettings.Networks.c1.IPAddress.replace(/\./g, '\\.')}/24`));
    }
    for (const n of ['r1', 'r2', 'r3']) poc('rm', '-f', n);
    ok('network', 'rm', 'c1');
  }
  t.same(readdirSync(join(root, 'containers')).filter((id) => ['r1', 'r2', 'r3'].includes(JSON.parse(readFileSync(join(root, 'containers', id, 'container.json'), 'utf8')).name)), [], 'no half-made container');
  const ids = made.map((r) => r.stdout.trim().slice(0, 8));
  t.same(networkResidue().links.filter((l) => ids.some((id) => l === `pocbr${id}`)), [], 'their bridges are gone');
});

t.test('no residue after rm and prune', async (t) => {
  for (const c of ['db', 'web', 'other', 'hidden']) ok('rm', '-f', c);
  t.same(networkResidue().dns, [], 'no DNS server once the networks have no containers');
  const pruned = ok('network', 'prune');
  t.match(pruned, /Deleted network: back/);
  t.match(pruned, /Deleted network: intern/);
  ok('prune');
  t.same(networkResidue(), { links: [], tables: [], dns: [], dnsDirs: [] }, 'no bridge, veth, table, DNS server or its files');
  t.same(JSON.parse(readFileSync(join(root, 'network/networks.json'), 'utf8')).networks, {}, 'no network recorded');
  t.same(Object.keys(JSON.parse(readFileSync(join(root, 'network/state.json'), 'utf8')).containers), [], 'no allocation');
});
