/**
 * poc compose through the built poc, with the README's three-service application (examples/compose-app: web on a
 * published port, api reached by its service name, store with a named volume and a health check the api waits
 * for) on the Debian image, inside a simulated host as the user-network tests build it:
 *
 *   uplink netns  198.51.100.1/24 ── veth ── 198.51.100.2/24  "host" netns: poc runs here (nsenter --net)
 *   a resolver (dnsmasq, NXDOMAIN for everything)               └─ the project's network and its containers
 *
 * The real host's links, rules and resolvers are never touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { pocIn } from '../helpers/poc.js';
import { linkDebianImage } from '../helpers/debian-image.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'containers and network namespaces need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-compose-');
const root = join(work, 'root');
const app = join(work, 'app');
const tag = `poccmp-${randomBytes(3).toString('hex')}`;
const ns = { host: `${tag}-host`, uplink: `${tag}-up` };
const hostNetns = `/run/netns/${ns.host}`;
const resolvConf = join(work, 'resolv.conf');
const upstreamPid = join(work, 'upstream.pid');
const PROJECT = 'demo';

const cli = pocIn(root, { POC_RESOLV_CONF: resolvConf }, ['nsenter', `--net=${hostNetns}`, '--']);
/** poc compose in the application's directory, in the simulated host. */
const compose = (...args: string[]) => cli.poc(['compose', '-p', PROJECT, ...args], { cwd: app, timeout: 120_000 });
const ok = (...args: string[]) => {
  const r = compose(...args);
  if (r.status !== 0) throw new Error(`poc compose ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r;
};
const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
const inNs = (n: string, cmd: string, ...args: string[]) => spawnSync('nsenter', [`--net=/run/netns/${n}`, '--', cmd, ...args], { encoding: 'utf8' });

/** GET through the published port; the web front needs a moment to listen after `up -d` returns, as with docker. */
async function get(from: string, address: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    const r = inNs(from, 'curl', '-s', '-m', '5', `http://${address}:8080/`);
    if (r.status === 0 && r.stdout) return r.stdout;
    last = `${r.status} ${r.stderr}`;
    await new Promise((res) => setTimeout(res, 100));
  }
  return `ERROR ${last}`;
}

function containers(): Array<{ id: string; name: string; service: string; running: boolean }> {
  return JSON.parse(cli.ok(['ps', '-a', '--format', 'json'])).map((c: any) => ({ id: c.id, name: c.name, service: c.name.split('-')[1], running: c.status === 'running' }));
}
const idsByService = () => Object.fromEntries(containers().map((c) => [c.service, c.id]));

/** What the project can leave on the simulated host: containers, bridges, volumes, nftables chains, mounts, DNS servers. */
function residue() {
  const links = inNs(ns.host, 'ip', '-o', 'link', 'show').stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter((n) => n.startsWith('pocbr') && n !== 'pocbr0');
  const nft = inNs(ns.host, 'nft', 'list', 'table', 'ip', 'poc').stdout;
  return {
    containers: existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : [],
    networks: JSON.parse(cli.ok(['network', 'ls', '--format', 'json'])).map((n: any) => n.name ?? n.Name).filter((n: string) => n !== 'bridge'),
    volumes: existsSync(join(root, 'volumes')) ? readdirSync(join(root, 'volumes')).filter((v) => !v.startsWith('.')) : [],
    bridges: links,
    chains: [...nft.matchAll(/chain (ctr_\w+)/g)].map((m) => m[1]),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root)),
    dns: sh('ps', ['-eo', 'args=']).split('\n').filter((l) => l.startsWith('dnsmasq') && l.includes(root)),
  };
}
const NOTHING = { containers: [], networks: [], volumes: [], bridges: [], chains: [], mounts: [], dns: [] };

t.before(async () => {
  for (const n of Object.values(ns)) sh('ip', ['netns', 'add', n]);
  sh('ip', ['-n', ns.host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns.uplink]);
  sh('ip', ['-n', ns.host, '-batch', '-'], 'link set lo up\naddr add 198.51.100.2/24 dev up0\nlink set up0 up\nroute add default via 198.51.100.1\n');
  sh('ip', ['-n', ns.uplink, '-batch', '-'], 'link set lo up\naddr add 198.51.100.1/24 dev up0\nlink set up0 up\n');
  sh('ip', ['netns', 'exec', ns.uplink, 'dnsmasq', '--conf-file=/dev/null', `--pid-file=${upstreamPid}`, '--bind-interfaces', '--listen-address=198.51.100.1', '--no-hosts', '--no-resolv', '--local=//']);
  writeFileSync(resolvConf, 'nameserver 198.51.100.1\n');
  cpSync(join(import.meta.dirname, '../../examples/compose-app'), app, { recursive: true });
  linkDebianImage(root);
});

t.teardown(() => {
  compose('down', '-v', '--remove-orphans');
  for (const id of existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []) cli.poc(['rm', '-f', id]);
  cli.poc(['network', 'prune']);
  cli.poc(['prune']);
  try {
    process.kill(Number(readFileSync(upstreamPid, 'utf8')), 'SIGTERM');
  } catch {
    // not started
  }
  for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n]);
  rmSync(work, { recursive: true, force: true });
});

t.test('bad files: a clear error each, and nothing left behind', async (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['unsupported key', 'services:\n  web:\n    image: debian\n    links: [db]\n', /bad\.yaml:4: \/services\/web\/links: poc compose does not support the key "links"/],
    ['schema', 'services:\n  web:\n    image: debian\n    ports: {a: 1}\n', /bad\.yaml:4: \/services\/web\/ports: must be an array/],
    ['undefined volume', 'services:\n  web:\n    image: debian\n    volumes: [nope:/d]\n', /\/services\/web\/volumes\/0: the service refers to the undefined volume "nope"/],
    ['YAML', 'services:\n  web:\n    image: debian\n  - x\n', /bad\.yaml:\d+: invalid YAML/],
    ['a limit beyond the host', 'services:\n  web:\n    image: debian\n    deploy: {resources: {limits: {cpus: "999"}}}\nvolumes:\n  v: {}\n', /bad\.yaml:4: \/services\/web\/deploy\/resources\/limits\/cpus: invalid cpus 999: this machine has \d+ CPUs?/],
    ['missing external network', 'services:\n  web:\n    image: debian\n    networks: [ext]\nnetworks:\n  ext: {external: true}\n', /network ext declared as external, but could not be found/],
    ['a missing secret file', 'secrets:\n  pw: {file: ./nope.txt}\nservices:\n  web:\n    image: debian\n    secrets: [pw]\nvolumes:\n  v: {}\n', /bad\.yaml:2: \/secrets\/pw\/file: \/.*\/app\/nope\.txt: No such file or directory \(the secret "pw" of service web\)/],
    ['an unset secret variable', 'secrets:\n  pw: {environment: POC_NO_SUCH_VAR}\nservices:\n  web:\n    image: debian\n    secrets: [pw]\n', /bad\.yaml:2: \/secrets\/pw\/environment: environment variable "POC_NO_SUCH_VAR" required by the secret "pw" \(service web\) is not set/],
    ['an external secret', 'secrets:\n  pw: {external: true}\nservices:\n  web:\n    image: debian\n', /bad\.yaml:2: \/secrets\/pw\/external: poc compose does not support the key "external" \(an external secret is a swarm's/],
    ['a bad mode', 'configs:\n  c: {content: x}\nservices:\n  web:\n    image: debian\n    configs: [{source: c, mode: 0779}]\n', /bad\.yaml:6: \/services\/web\/configs\/0\/mode: invalid mode "0779"/],
    ['an extends cycle', 'services:\n  a: {extends: b, image: debian}\n  b: {extends: a}\n', /bad\.yaml:\d: \/services\/\w\/extends: the services extend each other in a cycle: \w -> \w -> \w/],
    ['a missing include', 'include: [nope/compose.yaml]\nservices:\n  a: {image: debian}\n', /bad\.yaml:1: \/include\/0: \/.*\/nope\/compose\.yaml: No such file or directory/],
    ['no such image', 'services:\n  a:\n    image: debian\n    command: sleep 1\n    volumes: [v:/v]\n  b:\n    image: nosuchimage-here\nvolumes:\n  v: {}\n', /no such image|nosuchimage-here/],
  ];
  for (const [what, text, re] of bad) {
    writeFileSync(join(app, 'bad.yaml'), text);
    const r = compose('-f', 'bad.yaml', 'up', '-d');
    t.not(r.status, 0, `${what}: fails`);
    t.match(r.stderr, re, what);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    t.same(residue(), NOTHING, `${what}: nothing left behind`);
  }
  rmSync(join(app, 'bad.yaml'));
});

t.test('up -d: three services, the web front answers through the published port', async (t) => {
  const r = ok('up', '-d');
  t.match(r.stderr, /Network demo_default {2}Created/);
  t.match(r.stderr, /Volume "demo_data" {2}Created/);
  t.match(r.stderr, /Container demo-store-1 {2}Healthy[\s\S]*Container demo-api-1 {2}Started/, 'the api started once the store was healthy');
  const cs = containers();
  t.same(cs.map((c) => c.name).sort(), ['demo-api-1', 'demo-store-1', 'demo-web-1']);
  t.ok(cs.every((c) => c.running), 'all running');
  const labels = JSON.parse(cli.ok(['inspect', 'demo-web-1']))[0].Config.Labels;
  t.match(labels, { 'com.docker.compose.project': 'demo', 'com.docker.compose.service': 'web', 'com.docker.compose.oneoff': 'False', 'com.docker.compose.config-hash': /^[0-9a-f]{64}$/ });
  t.equal(await get(ns.host, '127.0.0.1'), 'hello from web, visits: 1\n', 'from the host on 127.0.0.1');
  t.equal(await get(ns.uplink, '198.51.100.2'), 'hello from web, visits: 2\n', 'from outside, on the host address');
  t.match(ok('ps').stdout, /demo-store-1 .* store .* Up .*\(healthy\)/);
  t.match(ok('ps', '--format', 'json').stdout, /"Service": "web"/);
  t.match(ok('logs', 'store').stdout, /demo-store-1 {2}\| store: listening on 6000/);
  t.equal(ok('exec', '-T', 'store', 'cat', '/data/count').stdout, '2');
  const one = ok('run', '--rm', '--no-deps', 'store', 'python3', '-c', 'print(open("/data/count").read())');
  t.equal(one.stdout, '2\n', 'run --rm: a one-off container with the service\'s volume');
  t.equal(containers().length, 3, 'and it is gone');
  t.match(ok('config').stdout, /name: demo\nservices:\n {2}api:/);
});

t.test('up again is idempotent; a changed service is recreated alone', async (t) => {
  const before = idsByService();
  const again = ok('up', '-d');
  t.match(again.stderr, /demo-web-1 {2}Running/);
  t.same(idsByService(), before, 'nothing recreated');
  writeFileSync(join(app, 'change.yaml'), 'services:\n  web:\n    environment:\n      GREETING: changed\n');
  const r = ok('-f', 'compose.yaml', '-f', 'change.yaml', 'up', '-d');
  t.match(r.stderr, /demo-web-1 {2}Recreated/);
  t.match(r.stderr, /demo-api-1 {2}Running/);
  const after = idsByService();
  t.not(after.web, before.web, 'web recreated');
  t.equal(after.api, before.api, 'api kept');
  t.equal(after.store, before.store, 'store kept');
  t.match(cli.ok(['exec', 'demo-web-1', 'printenv', 'GREETING']), /changed/);
  t.equal(await get(ns.host, '127.0.0.1'), 'hello from web, visits: 3\n');
  ok('stop', 'web');
  t.equal(containers().find((c) => c.service === 'web')?.running, false, 'stop');
  ok('start', 'web');
  t.equal(await get(ns.host, '127.0.0.1'), 'hello from web, visits: 4\n', 'start');
});

t.test('down keeps the data, up brings it back; down -v removes it and everything else', async (t) => {
  const d = ok('down');
  t.match(d.stderr, /Container demo-web-1 {2}Stopped[\s\S]*Container demo-api-1 {2}Stopped[\s\S]*Container demo-store-1 {2}Stopped[\s\S]*Network demo_default {2}Removed/, 'dependents first');
  t.same({ ...residue(), volumes: [] }, NOTHING, 'no container, network, chain, mount or DNS server left');
  t.same(residue().volumes, ['demo_data'], 'the named volume stays');
  ok('up', '-d');
  t.equal(await get(ns.host, '127.0.0.1'), 'hello from web, visits: 5\n', 'the count went on');
  ok('down', '-v');
  t.same(residue(), NOTHING, 'down -v: nothing left at all');
  ok('up', '-d');
  t.equal(await get(ns.host, '127.0.0.1'), 'hello from web, visits: 1\n', 'a new volume starts from nothing');
  ok('down', '-v');
  t.same(residue(), NOTHING);
});

t.test('ports without a published one: poc picks them, keeps them across up, and ps and port show them', async (t) => {
  writeFileSync(join(app, 'eph.yaml'), [
    'services:',
    '  one:',
    '    image: debian',
    '    command: sleep 1000',
    '    ports: ["127.0.0.1::80", {target: 53, protocol: udp}, "127.0.0.1:18000-18001:90-91"]',
    '',
  ].join('\n'));
  const eph = (...args: string[]) => {
    const r = cli.poc(['compose', '-p', 'eph', '-f', 'eph.yaml', ...args], { cwd: app, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`poc compose ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r;
  };
  eph('up', '-d');
  const [lo, hi] = inNs(ns.host, 'cat', '/proc/sys/net/ipv4/ip_local_port_range').stdout.trim().split(/\s+/).map(Number);
  const pubs = () => JSON.parse(eph('ps', '--format', 'json').stdout)[0].Publishers as Array<{ URL: string; TargetPort: number; PublishedPort: number; Protocol: string }>;
  const first = pubs();
  t.same(first.map((p) => [p.URL, p.TargetPort, p.Protocol]), [['127.0.0.1', 80, 'tcp'], ['0.0.0.0', 53, 'udp'], ['127.0.0.1', 90, 'tcp'], ['127.0.0.1', 91, 'tcp']]);
  t.same(first.slice(2).map((p) => p.PublishedPort), [18000, 18001], 'the range');
  for (const p of first.slice(0, 2)) t.ok(p.PublishedPort >= lo! && p.PublishedPort <= hi!, `${p.TargetPort}/${p.Protocol} on ${p.PublishedPort}, in ${lo}-${hi}`);
  t.equal(cli.ok(['port', 'eph-one-1', '80']), `127.0.0.1:${first[0]!.PublishedPort}\n`);
  t.match(eph('up', '-d').stderr, /eph-one-1 {2}Running/, 'unchanged: left running');
  t.same(pubs(), first, 'the same ports');
  eph('down');
  rmSync(join(app, 'eph.yaml'));
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('secrets and configs: read-only at /run/secrets/NAME and /NAME, owners and modes, a changed value recreates', async (t) => {
  writeFileSync(join(app, 'db_pw.txt'), 'hunter2\n');
  writeFileSync(join(app, 'nginx.conf'), 'events {}\n');
  writeFileSync(join(app, 'sec.yaml'), [
    'secrets:',
    '  db_pw: {file: ./db_pw.txt}',
    '  token: {environment: SEC_TOKEN}',
    'configs:',
    '  app: {content: "port=${SEC_PORT:-80}"}',
    '  nginx: {file: nginx.conf}',
    'services:',
    '  one:',
    '    image: debian',
    '    command: sleep 1000',
    '    init: true',
    '    network_mode: none',
    '    secrets:',
    '      - db_pw',
    '      - {source: token, target: api_token, uid: "1000", gid: "1001", mode: 0440}',
    '    configs:',
    '      - app',
    '      - {source: nginx, target: /etc/nginx/nginx.conf, mode: 0600}',
    '',
  ].join('\n'));
  const sec = (env: Record<string, string>, ...args: string[]) => {
    const r = cli.poc(['compose', '-p', 'sec', '-f', 'sec.yaml', ...args], { cwd: app, timeout: 120_000, env: { ...cli.env, ...env } });
    if (r.status !== 0) throw new Error(`poc compose ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r;
  };
  sec({ SEC_TOKEN: 't0k' }, 'up', '-d');
  const script = [
    'for f in /run/secrets/db_pw /run/secrets/api_token /app /etc/nginx/nginx.conf; do',
    '  printf "%s %s|" "$f" "$(stat -c "%u:%g %a" "$f")"; cat "$f"; echo',
    '  if (echo x >> "$f") 2>/dev/null; then echo "$f WRITABLE"; fi',
    'done',
    'grep -E " /run/secrets/db_pw | /app " /proc/self/mountinfo | awk "{print \\$5, \\$6}" | cut -d, -f1',
  ].join('\n');
  const out = sec({}, 'exec', '-T', 'one', 'bash', '-c', script).stdout;
  t.match(out, /^\/run\/secrets\/db_pw \d+:\d+ \d+\|hunter2\n\n/m, 'a file secret: the host file, at /run/secrets/NAME');
  t.match(out, /^\/run\/secrets\/api_token 1000:1001 440\|t0k\n/m, 'an environment secret: its uid, gid and mode, at a relative target under /run/secrets');
  t.match(out, /^\/app 0:0 444\|port=80\n/m, 'a content config at /NAME, 0444 by default, interpolated');
  t.match(out, /^\/etc\/nginx\/nginx\.conf 0:0 600\|events \{\}\n/m, 'a file config with a mode: a copy with it');
  t.notMatch(out, /WRITABLE/, 'none writable, even by root');
  t.match(out, /^\/run\/secrets\/db_pw ro$/m, 'mounted read-only');
  t.match(out, /^\/app ro$/m);
  writeFileSync(join(app, 'db_pw.txt'), 'changed\n');
  t.equal(sec({}, 'exec', '-T', 'one', 'cat', '/run/secrets/db_pw').stdout, 'changed\n', 'a bound file is seen as it changes, as docker compose binds it');
  t.match(sec({ SEC_TOKEN: 't0k' }, 'up', '-d').stderr, /sec-one-1 {2}Running/, 'unchanged: left running');
  t.match(sec({ SEC_TOKEN: 'S3cr3t-v2' }, 'up', '-d').stderr, /sec-one-1 {2}Recreated/, 'a changed secret value: recreated');
  t.equal(sec({}, 'exec', '-T', 'one', 'cat', '/run/secrets/api_token').stdout, 'S3cr3t-v2');
  const record = readFileSync(join(root, 'containers', containers().find((c) => c.name === 'sec-one-1')!.id, 'container.json'), 'utf8');
  t.notOk(record.includes('S3cr3t-v2'), 'the value is not in the record');
  t.equal(sec({ SEC_TOKEN: 'one-off' }, 'run', '--rm', 'one', 'cat', '/run/secrets/api_token', '/app').stdout, 'one-offport=80', 'run --rm: a one-off container has them too');
  t.match(sec({}, 'config').stdout, /target: \/run\/secrets\/api_token\n\s+uid: "1000"/);
  sec({}, 'down');
  rmSync(join(app, 'sec.yaml'));
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('up --wait: returns once running and healthy; an exit, an unhealthy service or the timeout fails, naming the service', async (t) => {
  writeFileSync(join(app, 'wait.yaml'), [
    'x-quiet: &quiet {image: debian, network_mode: none, init: true}',
    'services:',
    '  job: {<<: *quiet, command: "true"}',
    '  ok:',
    '    <<: *quiet',
    '    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"]',
    '    healthcheck: {test: "test -e /tmp/ready", interval: 200ms, retries: 100}',
    '    depends_on: {job: {condition: service_completed_successfully}}',
    '  plain: {<<: *quiet, command: sleep 1000}',
    // A health check that cannot pass before it exits: "starting", then exited, whatever the load.
    '  bad: {<<: *quiet, profiles: [bad], command: ["sh", "-c", "sleep 0.3; exit 3"], healthcheck: {test: "false", interval: 60s}}',
    '  sick: {<<: *quiet, profiles: [bad], command: sleep 1000, healthcheck: {test: "false", interval: 200ms, retries: 1}}',
    '  slow: {<<: *quiet, profiles: [bad], command: sleep 1000, healthcheck: {test: "false", interval: 1s, retries: 1000}}',
    '',
  ].join('\n'));
  const wt = (...args: string[]) => cli.poc(['compose', '-p', 'wt', '-f', 'wait.yaml', ...args], { cwd: app, timeout: 120_000 });
  const r = wt('up', '--wait');
  t.equal(r.status, 0, `up --wait: ${r.stderr}`);
  t.match(r.stderr, /Container wt-ok-1 {2}Healthy/);
  t.match(r.stderr, /Container wt-plain-1 {2}Healthy/, 'a service without a health check: running is enough');
  const ps = JSON.parse(wt('ps', '-a', '--format', 'json').stdout) as Array<{ Service: string; State: string; Health: string; ExitCode: number }>;
  t.match(ps.find((c) => c.Service === 'ok'), { State: 'running', Health: 'healthy' }, 'healthy when up --wait returned (the check passes only after 1 s)');
  t.match(ps.find((c) => c.Service === 'job'), { State: 'exited', ExitCode: 0 }, 'what another needs completed: waited for until it exits 0');
  const fails: Array<[string[], RegExp]> = [
    [['bad'], /^poc: service bad: container wt-bad-1 exited \(3\)\n$/m],
    [['sick'], /^poc: service sick: container wt-sick-1 is unhealthy\n$/m],
    [['--wait-timeout', '1', 'slow'], /^poc: application not healthy after 1s: still waiting for slow \(starting\)\n$/m],
  ];
  for (const [args, re] of fails) {
    const f = wt('up', '--wait', ...args);
    t.not(f.status, 0, `${args.join(' ')}: fails`);
    t.match(f.stderr, re, args.join(' '));
  }
  const flag = wt('up', '--wait', '--wait-timeout', 'soon');
  t.match(flag.stderr, /invalid --wait-timeout "soon"/);
  t.equal(wt('down', '-t', '1').status, 0);
  rmSync(join(app, 'wait.yaml'));
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('extends and include: a service built on another file\'s, an included application\'s service, their paths their own', async (t) => {
  const dir = join(app, 'ext');
  for (const d of ['lib/files', 'inc/page']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'lib/files/base.txt'), 'from lib\n');
  writeFileSync(join(dir, 'inc/page/index.txt'), 'from inc\n');
  writeFileSync(join(dir, 'inc/.env'), 'INC_GREETING=hello from inc env\n');
  writeFileSync(join(dir, 'lib/base.yaml'), [
    'services:',
    '  base:',
    '    image: debian',
    '    network_mode: none',
    '    init: true',
    '    command: sleep 1000',
    '    environment: {ROLE: base, KEPT: "yes"}',
    '    volumes: ["./files:/files:ro"]',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'inc/compose.yaml'), [
    'services:',
    '  side:',
    '    image: debian',
    '    network_mode: none',
    '    init: true',
    '    command: sleep 1000',
    '    environment: {GREETING: "${INC_GREETING}"}',
    '    volumes: ["./page:/page:ro"]',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'compose.yaml'), [
    'include: [inc/compose.yaml]',
    'services:',
    '  main:',
    '    extends: {service: base, file: lib/base.yaml}',
    '    environment: {ROLE: main}',
    '  again: {extends: main, labels: {x: "1"}}',
    '',
  ].join('\n'));
  const ex = (...args: string[]) => {
    const r = cli.poc(['compose', '-p', 'ext', ...args], { cwd: dir, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`poc compose ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r;
  };
  ex('up', '-d');
  t.same(containers().map((c) => c.name).filter((n) => n.startsWith('ext-')).sort(), ['ext-again-1', 'ext-main-1', 'ext-side-1']);
  const look = 'printf "%s %s|" "$ROLE" "$KEPT"; cat /files/base.txt';
  t.equal(ex('exec', '-T', 'main', 'sh', '-c', look).stdout, 'main yes|from lib\n', 'main: its own ROLE over the base\'s, the rest inherited, ./files the base file\'s directory\'s');
  t.equal(ex('exec', '-T', 'again', 'sh', '-c', look).stdout, 'main yes|from lib\n', 'a chain of extends');
  t.equal(ex('exec', '-T', 'side', 'sh', '-c', 'printf "%s|" "$GREETING"; cat /page/index.txt').stdout, 'hello from inc env|from inc\n', 'the included service: its directory\'s .env and paths');
  ex('down');
  rmSync(dir, { recursive: true, force: true });
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('replicas and --scale: numbered containers, all answering to the service name; scaled up and down as compose; what cannot be scaled is refused first', async (t) => {
  writeFileSync(join(app, 'scale.yaml'), [
    'x-quiet: &quiet {image: debian, init: true}',
    'services:',
    '  web: {<<: *quiet, command: ["sh", "-c", "echo replica $$(hostname); exec sleep 1000"], deploy: {replicas: 2}, ports: ["127.0.0.1::80"]}',
    '  client: {<<: *quiet, command: sleep 1000, depends_on: [web]}',
    '  fixed: {<<: *quiet, profiles: [fixed], command: sleep 1000, ports: ["127.0.0.1:18080:80"]}',
    '',
  ].join('\n'));
  const sc = (...args: string[]) => cli.poc(['compose', '-p', 'sc', '-f', 'scale.yaml', ...args], { cwd: app, timeout: 120_000 });
  const scOk = (...args: string[]) => {
    const r = sc(...args);
    if (r.status !== 0) throw new Error(`poc compose ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r;
  };
  // Refused before anything is made: the project has no container, network or volume after each.
  const refused: Array<[string[], RegExp]> = [
    [['up', '-d', '--scale', 'nope=2'], /^poc: --scale nope=2: no such service: nope\n$/],
    [['up', '-d', '--scale', 'web=two'], /^poc: invalid --scale option "web=two": should be SERVICE=NUM\n$/],
    [['--profile', 'fixed', 'up', '-d', '--scale', 'fixed=2'], /^poc: --scale fixed=2: scale\.yaml: \/services\/fixed\/ports\/0: the host port 18080 can be published by one container only, and the service has 2 containers/],
    [['scale', 'web=x'], /^poc: invalid scale option "web=x": should be SERVICE=NUM\n$/],
  ];
  for (const [args, re] of refused) {
    const r = sc(...args);
    t.not(r.status, 0, `${args.join(' ')}: fails`);
    t.match(r.stderr, re, args.join(' '));
    t.same(residue(), NOTHING, `${args.join(' ')}: nothing made`);
  }
  const up = scOk('up', '-d');
  t.match(up.stderr, /Container sc-web-1 {2}Created[\s\S]*Container sc-web-2 {2}Created/);
  const names = () => containers().filter((c) => c.name.startsWith('sc-')).map((c) => c.name).sort();
  t.same(names(), ['sc-client-1', 'sc-web-1', 'sc-web-2'], 'deploy.replicas: 2');
  const ip = (name: string) => JSON.parse(cli.ok(['inspect', name]))[0].NetworkSettings.IPAddress as string;
  const resolved = (what: string) => [...new Set(scOk('exec', '-T', 'client', 'getent', 'ahostsv4', what).stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]))].sort();
  t.same(resolved('web'), [ip('sc-web-1'), ip('sc-web-2')].sort(), 'the service name resolves to every replica');
  t.same(resolved('sc-web-2'), [ip('sc-web-2')], 'and each by its own name');
  const pubs = JSON.parse(scOk('ps', '--format', 'json', 'web').stdout) as Array<{ Name: string; Publishers: Array<{ PublishedPort: number }> }>;
  t.same(pubs.map((c) => c.Name), ['sc-web-1', 'sc-web-2'], 'ps: both, in number order');
  t.not(pubs[0]!.Publishers[0]!.PublishedPort, pubs[1]!.Publishers[0]!.PublishedPort, 'an ephemeral host port each');
  const logs = scOk('logs', 'web').stdout;
  t.match(logs, /^sc-web-1 +\| replica /m);
  t.match(logs, /^sc-web-2 +\| replica /m);
  t.match(scOk('exec', '-T', '--index', '2', 'web', 'hostname').stdout, new RegExp(`^${JSON.parse(cli.ok(['inspect', 'sc-web-2']))[0].Id.slice(0, 12)}`), 'exec --index 2: the second');
  t.match(sc('exec', '-T', '--index', '3', 'web', 'true').stderr, /^poc: service "web" is not running container #3\n$/);
  const before = Object.fromEntries(containers().map((c) => [c.name, c.id]));
  const more = scOk('up', '-d', '--scale', 'web=3');
  t.match(more.stderr, /sc-web-1 {2}Running[\s\S]*sc-web-2 {2}Running[\s\S]*sc-web-3 {2}Created/, '--scale web=3: one more, the others left running');
  t.same(names(), ['sc-client-1', 'sc-web-1', 'sc-web-2', 'sc-web-3']);
  t.equal(containers().find((c) => c.name === 'sc-web-2')!.id, before['sc-web-2'], 'not recreated');
  t.same(resolved('web').length, 3, 'the third resolves too');
  scOk('stop', 'web');
  t.same(containers().filter((c) => c.name.startsWith('sc-web-')).map((c) => c.running), [false, false, false], 'stop: every replica');
  scOk('start', 'web');
  t.same(containers().filter((c) => c.name.startsWith('sc-web-')).map((c) => c.running), [true, true, true], 'start: every replica');
  const less = scOk('scale', 'web=1');
  t.match(less.stderr, /sc-web-3 {2}Removed/, 'scale web=1: the highest numbers go');
  t.match(less.stderr, /sc-web-2 {2}Removed/);
  t.same(names(), ['sc-client-1', 'sc-web-1']);
  t.equal(containers().find((c) => c.name === 'sc-web-1')!.id, before['sc-web-1'], 'the first kept');
  scOk('down');
  rmSync(join(app, 'scale.yaml'));
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('up --abort-on-container-exit and --exit-code-from: the first exit stops all, up exits with its status', async (t) => {
  writeFileSync(join(app, 'abort.yaml'), [
    'x-quiet: &quiet {image: debian, network_mode: none, init: true}',
    'services:',
    '  job: {<<: *quiet, command: ["sh", "-c", "sleep 1; echo job done; exit 3"]}',
    '  srv: {<<: *quiet, command: sleep 1000, scale: 2}',
    '  ok: {<<: *quiet, profiles: [ok], command: "true"}',
    '',
  ].join('\n'));
  const ab = (...args: string[]) => cli.poc(['compose', '-p', 'ab', '-f', 'abort.yaml', ...args], { cwd: app, timeout: 120_000 });
  const states = () => (JSON.parse(ab('ps', '-a', '--format', 'json').stdout) as Array<{ Name: string; State: string; ExitCode: number }>).map((c) => `${c.Name} ${c.State} ${c.ExitCode}`).sort();
  const bad: Array<[string[], RegExp]> = [
    [['up', '-d', '--abort-on-container-exit'], /^poc: compose up: --detach cannot be combined with --abort-on-container-exit/],
    [['up', '--wait', '--exit-code-from', 'job'], /^poc: compose up: --wait cannot be combined with --abort-on-container-exit/],
    [['up', '--abort-on-container-exit', '--abort-on-container-failure'], /^poc: compose up: --abort-on-container-failure cannot be combined with --abort-on-container-exit\n$/],
    [['up', '--exit-code-from', 'nope'], /^poc: --exit-code-from nope: no such service: nope\n$/],
    [['up', '--exit-code-from', 'ok'], /^poc: --exit-code-from ok: this up does not start the service/],
  ];
  for (const [args, re] of bad) {
    const r = ab(...args);
    t.not(r.status, 0, `${args.join(' ')}: fails`);
    t.match(r.stderr, re, args.join(' '));
    t.same(residue(), NOTHING, `${args.join(' ')}: nothing made`);
  }
  const r = ab('up', '--abort-on-container-exit');
  t.equal(r.status, 3, `up's status is the job's: ${r.stderr}`);
  t.match(r.stdout, /^ab-job-1 +\| job done$/m);
  t.match(r.stdout, /^ab-job-1 exited with code 3$/m);
  t.match(r.stderr, /Aborting on container exit\.\.\./);
  t.same(states().map((s) => s.replace(/ \d+$/, '')), ['ab-job-1 exited', 'ab-srv-1 exited', 'ab-srv-2 exited'], 'every container stopped');
  const from = ab('up', '--exit-code-from', 'srv');
  const srvCodes = states().filter((s) => s.startsWith('ab-srv-')).map((s) => Number(s.split(' ')[2]));
  t.notOk(srvCodes.includes(0), `srv was stopped: ${srvCodes}`);
  t.ok(srvCodes.includes(from.status ?? -1), `--exit-code-from srv: srv's status (${from.status}), not the job's`);
  const fail = ab('--profile', 'ok', 'up', '--abort-on-container-failure');
  t.match(fail.stdout, /^ab-ok-1 exited with code 0$/m);
  t.equal(fail.status, 3, '--abort-on-container-failure: an exit 0 goes on, the job\'s 3 stops all');
  t.equal(ab('--profile', 'ok', 'down').status, 0);
  rmSync(join(app, 'abort.yaml'));
  t.same(residue(), NOTHING, 'nothing left');
});

t.test('build: platform and ssh reach poc build; another platform or a missing agent is refused before anything is built', async (t) => {
  const dir = join(app, 'bld');
  mkdirSync(dir, { recursive: true });
  const sock = join(work, 'agent.sock');
  const agent = spawnSync('ssh-agent', ['-a', sock], { encoding: 'utf8' });
  const agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
  t.teardown(() => {
    if (agentPid) process.kill(agentPid, 'SIGTERM');
  });
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  writeFileSync(join(dir, 'Dockerfile'), 'FROM debian\nARG TARGETPLATFORM\nRUN --mount=type=ssh,id=work echo "$TARGETPLATFORM $(stat -c %F $SSH_AUTH_SOCK)" > /seen\n');
  const file = (platform: string, ssh: string) => `services:\n  b:\n    build: {context: ., platforms: ["${platform}"], ssh: ["${ssh}"]}\n    platform: ${platform}\n    network_mode: none\n    command: cat /seen\n`;
  const bl = (...args: string[]) => cli.poc(['compose', '-p', 'bl', ...args], { cwd: dir, timeout: 120_000 });
  const images = () => cli.ok(['images']);
  const imagesBefore = images();
  const refused: Array<[string, RegExp]> = [
    [file('linux/s390x', `work=${sock}`), /^poc: .*\/bld\/compose\.yaml:3: \/services\/b\/build\/platforms\/0: poc builds only for this machine's platform, linux\/\w+, not linux\/s390x \(it runs no emulation\)\n$/],
    [file(`linux/${arch}`, `work=${join(work, 'no-agent.sock')}`), /^poc: service b: build\.ssh work=.*no-agent\.sock: cannot use ".*no-agent\.sock": ENOENT\n$/],
  ];
  for (const [text, re] of refused) {
    writeFileSync(join(dir, 'compose.yaml'), text);
    const r = bl('up', '-d');
    t.not(r.status, 0);
    t.match(r.stderr, re);
    t.same(residue(), NOTHING, 'nothing made');
    t.equal(images(), imagesBefore, 'nothing built');
  }
  writeFileSync(join(dir, 'compose.yaml'), file(`linux/${arch}`, `work=${sock}`));
  const r = bl('up', '--abort-on-container-exit');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^bl-b-1 +\\| linux/${arch} socket$`, 'm'), 'built for the platform, with the agent\'s socket mounted');
  t.equal(bl('down').status, 0);
  t.equal(cli.poc(['rmi', 'bl-b']).status, 0, 'the built image, removed');
  rmSync(dir, { recursive: true, force: true });
  t.same(residue(), NOTHING, 'nothing left');
});
