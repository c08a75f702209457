import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { portLines } from '../../src/poc/commands/port.js';
import {
  DEFAULT_EPHEMERAL_RANGE,
  EPHEMERAL,
  formatPublish,
  parsePortRange,
  parseProcNetPorts,
  parseNftPortsMap,
  pickHostPorts,
  allocate,
  allocateContainerNetwork,
  configureNetwork,
  containerChain,
  defaultRouteInterface,
  emptyNetworkState,
  getContainerNetwork,
  hostsFile,
  intToIp,
  ipToInt,
  nftBaseScript,
  nftContainerScript,
  nftContainerTeardownScript,
  parseHookState,
  parseProcNetRoute,
  parsePublish,
  parseSubnet,
  release,
  releaseContainerNetwork,
  resolvConf,
  vethName,
  type NetworkState,
  type PortMapping,
  type NetworkSet,
  type CreateNetworkRequest,
  nftDeleteTableScript,
  ip6ToBig,
  bigToIp6,
  parseSubnet6,
  ip6At,
  inSubnet6,
  subnets6Overlap,
  planNetwork,
  findNetwork,
  nextIfname,
  dnsNames,
  dnsHostsFile,
  containerAttachments,
  upstreamServers,
  dnsmasqArgs,
  parseAddHost,
} from '../../src/poc/network/index.js';

t.test('addresses and subnets', async (t) => {
  t.equal(ipToInt('10.89.0.1'), 0x0a590001);
  t.equal(intToIp(0x0a59ffff), '10.89.255.255');
  const s = parseSubnet('10.89.0.0/16');
  t.same([intToIp(s.first), intToIp(s.last), intToIp(s.broadcast)], ['10.89.0.1', '10.89.255.254', '10.89.255.255']);
  const bad: Array<[string, RegExp]> = [
    ['10.89.0.1/16', /host bits set \(did you mean 10\.89\.0\.0\/16\?\)/],
    ['10.89.0.0', /expected A\.B\.C\.D\/PREFIX/],
    ['10.89.0.0/31', /between \/8 and \/30/],
    ['300.1.1.0/24', /invalid subnet/],
  ];
  for (const [cidr, message] of bad) t.throws(() => parseSubnet(cidr), { name: 'PocError', message }, cidr);
});

t.test('parsePublish', async (t) => {
  const ok: Array<[string, PortMapping[]]> = [
    ['8080:80', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['8080:80/tcp', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['5353:53/udp', [{ hostPort: 5353, containerPort: 53, protocol: 'udp' }]],
    ['5353:53/UDP', [{ hostPort: 5353, containerPort: 53, protocol: 'udp' }]],
    ['127.0.0.1:8080:80', [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['0.0.0.0:8080:80', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['65535:1', [{ hostPort: 65535, containerPort: 1, protocol: 'tcp' }]],
    // Ephemeral: poc picks the host port (EPHEMERAL until then), as docker does.
    ['80', [{ hostPort: EPHEMERAL, containerPort: 80, protocol: 'tcp' }]],
    ['53/udp', [{ hostPort: EPHEMERAL, containerPort: 53, protocol: 'udp' }]],
    [':80', [{ hostPort: EPHEMERAL, containerPort: 80, protocol: 'tcp' }]],
    ['127.0.0.1::80', [{ hostIp: '127.0.0.1', hostPort: EPHEMERAL, containerPort: 80, protocol: 'tcp' }]],
    // Ranges of equal length: one mapping per port.
    ['8000-8001:80-81', [{ hostPort: 8000, containerPort: 80, protocol: 'tcp' }, { hostPort: 8001, containerPort: 81, protocol: 'tcp' }]],
    ['127.0.0.1:8000-8001:80-81/udp', [
      { hostIp: '127.0.0.1', hostPort: 8000, containerPort: 80, protocol: 'udp' },
      { hostIp: '127.0.0.1', hostPort: 8001, containerPort: 81, protocol: 'udp' },
    ]],
    ['80-81', [{ hostPort: EPHEMERAL, containerPort: 80, protocol: 'tcp' }, { hostPort: EPHEMERAL, containerPort: 81, protocol: 'tcp' }]],
    ['8080-8080:80', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
  ];
  for (const [spec, want] of ok) t.same(parsePublish(spec), want, spec);
  const bad: Array<[string, RegExp]> = [
    ['0:80', /"0:80": host port 0 is out of range 1-65535/],
    ['8080:70000', /container port 70000 is out of range/],
    ['8080:0', /container port 0 is out of range/],
    ['garbage', /"garbage": container port "garbage" is not a number or a range N-M/],
    ['a:80', /host port "a" is not a number/],
    ['8080:80/sctp', /protocol "sctp" is not tcp or udp/],
    ['1.2.3:8080:80', /host address "1\.2\.3" is not an IPv4 address/],
    ['', /container port "" is not a number/],
    ['8000-8010:80', /"8000-8010:80": the host range 8000-8010 has 11 port\(s\) and the container range 80 1: they must be the same length/],
    ['8000-8001:80-82', /host range 8000-8001 has 2 port\(s\) and the container range 80-82 3/],
    ['8001-8000:80-81', /host port range 8001-8000 ends before it starts/],
    ['8000-70000:1-62001', /host port 70000 is out of range/],
    ['[::1]:8080:80', /host address "::1" is not an IPv4 address \(poc publishes ports on IPv4\)/],
    ['1:2:3:4', /expected \[\[IP:\]\[HOST_PORT\]:\]CONTAINER_PORT/],
  ];
  for (const [spec, message] of bad) t.throws(() => parsePublish(spec), { name: 'PocError', message }, spec);
  t.equal(formatPublish(parsePublish('80')[0]!), '80/tcp');
  t.equal(formatPublish(parsePublish('127.0.0.1::80/udp')[0]!), '127.0.0.1::80/udp');
});

t.test('ephemeral host ports: the range, the host\'s sockets, the picking', async (t) => {
  t.same(parsePortRange('32768\t60999\n'), [32768, 60999]);
  t.same(parsePortRange(undefined), DEFAULT_EPHEMERAL_RANGE, 'unreadable: docker\'s default');
  t.same(parsePortRange('9 5'), DEFAULT_EPHEMERAL_RANGE, 'nonsense: the default');
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:8000 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
    '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
    '',
  ].join('\n');
  t.same(parseProcNetPorts(tcp), [0x8000, 22]);
  t.same(parseProcNetPorts('  sl  local_address rem_address\n'), [], 'header only');
  const map = 'table ip poc {\n\tmap ports {\n\t\ttype inet_proto . inet_service : verdict\n\t\telements = { tcp . 8080 : jump ctr_abc,\n\t\t\t     udp . 5353 : jump ctr_def }\n\t}\n}\n';
  t.same(parseNftPortsMap(map), ['8080/tcp', '5353/udp'], 'ports other poc roots publish');
  t.same(parseNftPortsMap(''), [], 'no table yet');
  const facts = { range: [40000, 40002] as [number, number], taken: new Set(['40000/tcp', '40002/tcp']) };
  const picked = pickHostPorts([...parsePublish('80-81'), ...parsePublish('40001:90'), ...parsePublish('53/udp'), ...parsePublish('127.0.0.1::8080')], { ...facts, range: [40000, 40010] });
  t.same(picked.map(formatPublish), ['40003:80/tcp', '40004:81/tcp', '40001:90/tcp', '40000:53/udp', '127.0.0.1:40005:8080/tcp'],
    'the lowest free port of the range, never a taken one or one given explicitly, udp apart from tcp');
  t.throws(() => pickHostPorts(parsePublish('80-81'), facts), { name: 'PocError', message: /no free host port for 81\/tcp: every port of 40000-40002\/tcp is in use/ });
  t.same(pickHostPorts(parsePublish('8080:80'), facts), parsePublish('8080:80'), 'nothing to pick: unchanged');
});

t.test('poc port: docker\'s lines', async (t) => {
  const publish = [...parsePublish('32768:80'), ...parsePublish('127.0.0.1:40000:53/udp'), ...parsePublish('127.0.0.1:40001:80')];
  t.same(portLines(publish, 'web'), ['80/tcp -> 0.0.0.0:32768', '53/udp -> 127.0.0.1:40000', '80/tcp -> 127.0.0.1:40001']);
  t.same(portLines(publish, 'web', '80'), ['0.0.0.0:32768', '127.0.0.1:40001'], 'tcp when no protocol is given');
  t.same(portLines(publish, 'web', '53/UDP'), ['127.0.0.1:40000']);
  t.same(portLines([], 'web'), [], 'nothing published: nothing printed');
  t.throws(() => portLines(publish, 'web', '53'), { name: 'PocError', message: /^no public port 53\/tcp published for web$/ });
  t.throws(() => portLines(publish, 'web', '80/sctp'), { name: 'PocError', message: /^invalid port "80\/sctp": use PORT or PORT\/tcp\|udp$/ });
});

t.test('IPAM: sequential, skips the gateway, same address again for the same container', async (t) => {
  let s: NetworkState = emptyNetworkState();
  t.equal(s.gateway, '10.89.0.1');
  const ips: string[] = [];
  for (const id of ['a', 'b', 'c']) {
    const r = allocate(s, { containerId: id, hostname: id });
    s = r.state;
    ips.push(r.entry.ip);
  }
  t.same(ips, ['10.89.0.2', '10.89.0.3', '10.89.0.4']);
  t.equal(allocate(s, { containerId: 'b', hostname: 'b' }).entry.ip, '10.89.0.3', 'idempotent');
  s = release(s, 'b');
  t.equal(allocate(s, { containerId: 'd', hostname: 'd' }).entry.ip, '10.89.0.5', 'a freed address is not reused at once');
  t.equal(release(s, 'nope'), s, 'releasing an unknown container changes nothing');
});

t.test('IPAM: wraps around and runs out', async (t) => {
  let s = emptyNetworkState({ subnet: '192.168.7.0/30' }); // hosts .1 (gateway) and .2
  s = allocate(s, { containerId: 'a', hostname: 'a' }).state;
  t.equal(s.containers.a!.ip, '192.168.7.2');
  t.throws(() => allocate(s, { containerId: 'b', hostname: 'b' }), /no free address left in 192\.168\.7\.0\/30/);
  s = release(s, 'a');
  t.equal(allocate(s, { containerId: 'b', hostname: 'b' }).entry.ip, '192.168.7.2', 'wraps around to a freed address');
});

t.test('IPAM: requested addresses and port clashes', async (t) => {
  let s = emptyNetworkState();
  s = allocate(s, { containerId: 'web', hostname: 'web', publish: parsePublish('8080:80') }).state;
  t.throws(() => allocate(s, { containerId: 'x', hostname: 'x', publish: parsePublish('127.0.0.1:8080:80') }), /port 8080\/tcp is already published by container web \(8080:80\/tcp\)/);
  t.doesNotThrow(() => allocate(s, { containerId: 'x', hostname: 'x', publish: parsePublish('8080:80/udp') }), 'udp and tcp are separate');
  t.throws(() => allocate(s, { containerId: 'x', hostname: 'x', publish: [...parsePublish('1:1'), ...parsePublish('1:2')] }), /port 1\/tcp is published twice/);
  t.throws(() => allocate(s, { containerId: 'x', hostname: 'x', ip: '10.89.0.2' }), /address 10\.89\.0\.2 is already in use/);
  t.throws(() => allocate(s, { containerId: 'x', hostname: 'x', ip: '10.89.0.1' }), /already in use/, 'the gateway');
  t.throws(() => allocate(s, { containerId: 'x', hostname: 'x', ip: '10.90.0.1' }), /not a host address of 10\.89\.0\.0\/16/);
  t.equal(allocate(s, { containerId: 'x', hostname: 'x', ip: '10.89.3.4' }).entry.ip, '10.89.3.4');
});

t.test('the subnet can change only while no container is attached', async (t) => {
  const s = emptyNetworkState();
  t.equal(configureNetwork(s, { subnet: '172.30.0.0/24' }).gateway, '172.30.0.1');
  const used = allocate(s, { containerId: 'a', hostname: 'a' }).state;
  t.equal(configureNetwork(used, {}), used);
  t.throws(() => configureNetwork(used, { subnet: '172.30.0.0/24' }), /cannot change the network from pocbr0 10\.89\.0\.0\/16 to pocbr0 172\.30\.0\.0\/24 while 1 container is attached/);
  t.throws(() => emptyNetworkState({ bridge: 'a-very-long-bridge-name' }), /invalid bridge name/);
});

t.test('allocation is kept in a locked state file', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'poc-ipam-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => allocateContainerNetwork({ root, containerId: `c${i}`, hostname: `h${i}` })),
  );
  const ips = new Set(results.map((r) => r.ip));
  t.equal(ips.size, 20, '20 concurrent allocations, 20 distinct addresses');
  t.equal(results[0]!.prefix, 16);
  t.equal(results[0]!.gateway, '10.89.0.1');
  t.equal(getContainerNetwork('c3', { root })?.hostname, 'h3');
  await t.rejects(allocateContainerNetwork({ root, containerId: 'p', hostname: 'p', publish: ['0:80'] }), /host port 0/);
  await allocateContainerNetwork({ root, containerId: 'p', hostname: 'p', publish: ['8080:80'] });
  await t.rejects(allocateContainerNetwork({ root, containerId: 'q', hostname: 'q', publish: ['8080:80'] }), /already published by container p/);
  await releaseContainerNetwork({ root, containerId: 'p' });
  t.equal(getContainerNetwork('p', { root }), undefined);
  await t.resolves(allocateContainerNetwork({ root, containerId: 'q', hostname: 'q', publish: ['8080:80'] }), 'released ports can be published again');
});

t.test('veth and chain names are short, stable and distinct', async (t) => {
  t.equal(vethName('abc'), vethName('abc'));
  t.not(vethName('abc'), vethName('abd'));
  t.ok(vethName('x'.repeat(64)).length <= 15);
  t.match(containerChain('abc'), /^ctr_[0-9a-f]{12}$/);
});

t.test('nftables base script', async (t) => {
  const script = nftBaseScript({ networks: [{ bridge: 'pocbr0', subnet: '10.89.0.0/16' }], uplink: 'eth0' });
  t.equal(
    script,
    [
      'add table ip poc',
      'add map ip poc ports { type inet_proto . inet_service : verdict ; }',
      'add chain ip poc prerouting { type nat hook prerouting priority dstnat ; policy accept ; }',
      'add chain ip poc output { type nat hook output priority -100 ; policy accept ; }',
      'add chain ip poc postrouting { type nat hook postrouting priority srcnat ; policy accept ; }',
      'add chain ip poc guard { type filter hook prerouting priority raw ; policy accept ; }',
      'add chain ip poc isolate { type filter hook forward priority filter ; policy accept ; }',
      'flush chain ip poc prerouting',
      'flush chain ip poc output',
      'flush chain ip poc postrouting',
      'flush chain ip poc guard',
      'flush chain ip poc isolate',
      'add rule ip poc prerouting fib daddr type local meta l4proto . th dport vmap @ports',
      'add rule ip poc output fib daddr type local meta l4proto . th dport vmap @ports',
      'add rule ip poc postrouting ip saddr 10.89.0.0/16 oifname "eth0" masquerade',
      'add rule ip poc postrouting ip saddr 127.0.0.0/8 oifname "pocbr0" masquerade',
      'add rule ip poc postrouting ip saddr 10.89.0.0/16 ip daddr 10.89.0.0/16 oifname "pocbr0" ct status dnat masquerade',
      'add rule ip poc guard iifname "pocbr0" ip daddr 127.0.0.0/8 drop',
      'add table ip6 poc',
      'delete table ip6 poc',
      '',
    ].join('\n'),
  );
  const noUplink = nftBaseScript({ networks: [{ bridge: 'pocbr0', subnet: '10.89.0.0/16' }], uplink: null });
  t.notMatch(noUplink, /saddr 10\.89\.0\.0\/16 oifname/, 'no default route: no masquerade rule');
  t.notMatch(script + noUplink, /flush ruleset|delete table ip |table inet|table ip nat/, 'only its own table');
  t.match(script, /delete table ip6 poc\n$/, 'no IPv6 table without a dual-stack network');
});

t.test('nftables base script with user networks: isolation, internal, dual-stack', async (t) => {
  const script = nftBaseScript({
    networks: [
      { bridge: 'pocbr0', subnet: '10.89.0.0/16' },
      { bridge: 'pocbraaaa', subnet: '10.90.0.0/24', subnet6: 'fd00:1::/64' },
      { bridge: 'pocbrbbbb', subnet: '10.90.1.0/24', internal: true },
    ],
    uplink: 'up0',
  });
  const rules = script.split('\n');
  t.ok(rules.includes('add rule ip poc postrouting ip saddr 10.90.0.0/24 oifname "up0" masquerade'));
  t.notOk(rules.some((r) => r.includes('saddr 10.90.1.0/24 oifname "up0"')), 'an internal network is not masqueraded');
  t.ok(rules.includes('add rule ip poc isolate iifname "pocbrbbbb" oifname != "pocbrbbbb" drop'), 'internal: nothing leaves its bridge');
  t.ok(rules.includes('add rule ip poc isolate oifname "pocbrbbbb" iifname != "pocbrbbbb" drop'), 'internal: nothing enters it from elsewhere');
  t.ok(rules.includes('add rule ip poc isolate iifname "pocbr0" oifname { "pocbraaaa", "pocbrbbbb" } drop'), 'the default network is cut off from the others');
  t.ok(rules.includes('add rule ip poc isolate iifname "pocbraaaa" oifname { "pocbr0", "pocbrbbbb" } drop'));
  t.ok(rules.includes('add rule ip6 poc postrouting ip6 saddr fd00:1::/64 oifname != "pocbraaaa" masquerade'), 'IPv6 masquerade');
  t.ok(rules.includes('add rule ip6 poc isolate iifname "pocbraaaa" oifname { "pocbr0", "pocbrbbbb" } drop'), 'IPv6 isolation too');
  t.equal(nftDeleteTableScript(), 'add table ip poc\ndelete table ip poc\nadd table ip6 poc\ndelete table ip6 poc\n');
});

t.test('IPv6 addresses and subnets', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['fd00::1', 'fd00::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['1::2::3', null],
    ['fd00:::1', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['10.0.0.1', null],
  ];
  for (const [text, want] of cases) {
    const n = ip6ToBig(text);
    t.equal(n === null ? null : bigToIp6(n), want, text);
  }
  const s = parseSubnet6('fd00:1:0:0::/64');
  t.equal(s.cidr, 'fd00:1::/64');
  t.equal(ip6At(s, 1), 'fd00:1::1');
  t.equal(ip6At(s, 258), 'fd00:1::102');
  t.ok(inSubnet6(s, 'fd00:1::abcd'));
  t.notOk(inSubnet6(s, 'fd00:2::1'));
  t.ok(subnets6Overlap(s, parseSubnet6('fd00:1::/48')));
  t.notOk(subnets6Overlap(s, parseSubnet6('fd00:2::/64')));
  t.throws(() => parseSubnet6('fd00::1/64'), /host bits set \(did you mean fd00::\/64\?\)/);
  t.throws(() => parseSubnet6('fd00::/32'), /between \/48 and \/120/);
  t.throws(() => parseSubnet6('nope/64'), /invalid IPv6 subnet "nope\/64"/);
});

t.test('planning user networks: ranges, gateways and every bad input', async (t) => {
  const empty = (): NetworkSet => ({ default: emptyNetworkState(), user: {} });
  const req = (o: Partial<CreateNetworkRequest>): CreateNetworkRequest => ({ name: 'app', id: 'ab'.repeat(32), created: 'now', subnets: [], gateways: [], internal: false, ipv6: false, ...o });
  const a = planNetwork(empty(), req({}));
  t.same([a.name, a.bridge, a.subnet, a.gateway], ['app', 'pocbrabababab', '10.90.0.0/24', '10.90.0.1']);
  let set: NetworkSet = { ...empty(), user: { app: a } };
  t.equal(planNetwork(set, req({ name: 'two', id: 'cd'.repeat(32) })).subnet, '10.90.1.0/24', 'the next free range');
  const d = planNetwork(set, req({ name: 'six', id: 'ef'.repeat(32), subnets: ['172.20.0.0/16', 'fd00:6::/64'], gateways: ['172.20.0.254'], ipv6: true, internal: true }));
  t.same([d.subnet, d.gateway, d.subnet6, d.gateway6, d.internal], ['172.20.0.0/16', '172.20.0.254', 'fd00:6::/64', 'fd00:6::fe', true]);
  t.equal(planNetwork(set, req({ name: 'auto6', ipv6: true })).subnet6, 'fd70:6f63:0:0::/64'.replace('0:0::', ':'), 'an IPv6 range is picked too');
  set = { ...set, user: { ...set.user, six: d } };
  const bad: Array<[Partial<CreateNetworkRequest>, RegExp]> = [
    [{ name: 'app' }, /network app already exists/],
    [{ name: 'bridge' }, /network name "bridge" is reserved/],
    [{ name: 'host' }, /reserved/],
    [{ name: '-x' }, /invalid network name "-x"/],
    [{ name: 'n', subnets: ['10.89.5.0/24'] }, /--subnet 10\.89\.5\.0\/24 overlaps 10\.89\.0\.0\/16 of network bridge/],
    [{ name: 'n', subnets: ['10.90.0.0/16'] }, /overlaps 10\.90\.0\.0\/24 of network app/],
    [{ name: 'n', subnets: ['10.1.2.3/24'] }, /host bits set/],
    [{ name: 'n', subnets: ['banana'] }, /invalid subnet "banana"/],
    [{ name: 'n', subnets: ['10.1.0.0/24', '10.2.0.0/24'] }, /one IPv4 subnet per network/],
    [{ name: 'n', subnets: ['fd00:7::/64'] }, /is IPv6: add --ipv6/],
    [{ name: 'n', subnets: ['fd00:6::/56'], ipv6: true }, /overlaps fd00:6::\/64 of network six/],
    [{ name: 'n', subnets: ['10.1.0.0/16', 'fd00:7::/120'], ipv6: true }, /smaller than 10\.1\.0\.0\/16/],
    [{ name: 'n', subnets: ['10.1.0.0/24'], gateways: ['10.2.0.1'] }, /--gateway 10\.2\.0\.1 is not a host address of 10\.1\.0\.0\/24/],
    [{ name: 'n', subnets: ['10.1.0.0/24'], gateways: ['10.1.0.255'] }, /not a host address/],
    [{ name: 'n', gateways: ['x.y'] }, /invalid --gateway "x\.y"/],
  ];
  for (const [r, re] of bad) t.throws(() => planNetwork(set, req(r)), re, JSON.stringify(r));
  const hostRoutes = [{ dst: '10.90.0.0/23', dev: 'eth1' }, { dst: '192.0.2.9', dev: 'tun0' }];
  t.throws(() => planNetwork(set, req({ name: 'n', subnets: ['192.0.2.0/24'], hostRoutes })), /--subnet 192\.0\.2\.0\/24 overlaps the host's route to 192\.0\.2\.9 \(dev tun0\)/);
  t.equal(planNetwork({ default: emptyNetworkState(), user: {} }, req({ name: 'n', hostRoutes })).subnet, '10.90.2.0/24', 'the automatic range skips what the host routes');
  t.equal(findNetwork(set, 'abab').name, 'app', 'by id prefix');
  t.throws(() => findNetwork(set, 'nope'), /no such network: nope/);
});

t.test('a container on several networks: interfaces, addresses, DNS names', async (t) => {
  let set: NetworkSet = { default: emptyNetworkState(), user: {} };
  const req = (name: string, o: Partial<CreateNetworkRequest> = {}): CreateNetworkRequest => ({ name, id: name.padEnd(64, '0'), created: 'now', subnets: [], gateways: [], internal: false, ipv6: false, ...o });
  set = { ...set, user: { front: planNetwork(set, req('front', { ipv6: true, subnets: ['10.50.0.0/24', 'fd00:50::/64'] })) } };
  set = { ...set, user: { ...set.user, back: planNetwork(set, req('back')) } };
  t.equal(nextIfname(set, 'c'), 'eth0');
  const { state: front } = allocate(set.user.front!, { containerId: 'c', hostname: 'h', ifname: 'eth0', names: dnsNames('web', 'c'.repeat(64), ['www']) });
  set = { ...set, user: { ...set.user, front } };
  t.equal(nextIfname(set, 'c'), 'eth1');
  const entry = front.containers.c!;
  t.same([entry.ip, entry.ip6, entry.vethHost === vethName('c')], ['10.50.0.2', 'fd00:50::2', false], 'the IPv6 address at the IPv4 offset; a veth per network');
  t.same(dnsNames('web', 'c'.repeat(64), ['www', 'web']), ['web', 'cccccccccccc', 'www']);
  t.equal(dnsHostsFile({ ...front, containers: { c: { ...entry, up: true } } }), '10.50.0.2\tweb cccccccccccc www\nfd00:50::2\tweb cccccccccccc www\n');
  t.same(containerAttachments(set, 'c').map((a) => a.network.name), ['front']);
});

t.test('the DNS server: upstreams and command line', async (t) => {
  t.same(upstreamServers('# x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver 192.0.2.1\nnameserver bogus\nsearch lan\n'), ['127.0.0.53', 'fe80::1%eth0', '192.0.2.1']);
  const args = dnsmasqArgs({ dir: '/d', listen: ['10.90.0.1', 'fd00::1'], upstreams: ['192.0.2.1'] });
  for (const a of ['--domain-needed', '--bind-interfaces', '--listen-address=10.90.0.1', '--listen-address=fd00::1', '--no-resolv', '--server=192.0.2.1', '--addn-hosts=/d/hosts', '--no-hosts', '--pid-file=/d/dnsmasq.pid']) {
    t.ok(args.includes(a), a);
  }
});

t.test('nftables container scripts: setup and exact teardown', async (t) => {
  const c = {
    containerId: 'web',
    ip: '10.89.0.7',
    publish: [...parsePublish("8080:80"), ...parsePublish("127.0.0.1:9090:90"), ...parsePublish("5353:53/udp")],
  };
  const chain = containerChain('web');
  t.equal(
    nftContainerScript(c),
    [
      `add chain ip poc ${chain}`,
      `flush chain ip poc ${chain}`,
      `add rule ip poc ${chain} tcp dport 8080 dnat to 10.89.0.7:80`,
      `add rule ip poc ${chain} ip daddr 127.0.0.1 tcp dport 9090 dnat to 10.89.0.7:90`,
      `add rule ip poc ${chain} udp dport 5353 dnat to 10.89.0.7:53`,
      `add element ip poc ports { tcp . 8080 : jump ${chain} }`,
      `add element ip poc ports { tcp . 9090 : jump ${chain} }`,
      `add element ip poc ports { udp . 5353 : jump ${chain} }`,
      '',
    ].join('\n'),
  );
  t.equal(
    nftContainerTeardownScript(c),
    [
      `add chain ip poc ${chain}`,
      `add element ip poc ports { tcp . 8080 : jump ${chain} }`,
      `delete element ip poc ports { tcp . 8080 }`,
      `add element ip poc ports { tcp . 9090 : jump ${chain} }`,
      `delete element ip poc ports { tcp . 9090 }`,
      `add element ip poc ports { udp . 5353 : jump ${chain} }`,
      `delete element ip poc ports { udp . 5353 }`,
      `flush chain ip poc ${chain}`,
      `delete chain ip poc ${chain}`,
      '',
    ].join('\n'),
  );
  t.equal(nftContainerScript({ containerId: 'q', ip: '10.89.0.8', publish: [] }).split('\n').length, 3, 'no ports: just the (empty) chain');
});

t.test('default route interface from /proc/net/route', async (t) => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'pocbr0\t00000000\t0100590A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'down0\t00000000\t010200C0\t0002\t0\t0\t1\t00000000\t0\t0\t0',
  ].join('\n');
  const routes = parseProcNetRoute(text);
  t.equal(routes[2]!.gateway, '192.0.2.1');
  t.equal(routes[3]!.destination, '192.0.2.0');
  t.equal(routes[3]!.mask, '255.255.255.0');
  t.equal(defaultRouteInterface(routes, ['pocbr0']), 'eth0', 'lowest metric, up, not our bridge');
  t.equal(defaultRouteInterface(parseProcNetRoute(text.split('\n').slice(0, 1).join('\n'))), null);
});

t.test('resolv.conf with --dns or a user network\'s DNS server; --add-host lines', async (t) => {
  const host = 'nameserver 127.0.0.53\nsearch corp.example\noptions ndots:2\n';
  t.equal(resolvConf(host, 'bridge', { dns: ['192.0.2.1', 'fd00::1'] }), '# Generated by poc from --dns.\nnameserver 192.0.2.1\nnameserver fd00::1\nsearch corp.example\noptions ndots:2\n');
  t.equal(resolvConf(host, 'bridge', { networkDns: '10.90.0.1' }), "# Generated by poc: the network's DNS server.\nnameserver 10.90.0.1\nsearch corp.example\noptions ndots:2\n");
  t.match(resolvConf(host, 'bridge', { networkDns: '10.90.0.1', dns: ['192.0.2.1'] }), /^nameserver 10\.90\.0\.1\nnameserver 192\.0\.2\.1$/m, 'the network\'s server first, then --dns');
  t.match(hostsFile({ hostname: 'h', ip: '10.90.0.2', extra: [{ ip: '192.0.2.7', names: ['db'] }] }), /^192\.0\.2\.7\tdb$/m);
  t.same(parseAddHost('six:[fd00::7]'), { ip: 'fd00::7', names: ['six'] }, 'a bracketed IPv6 address');
  t.same(parseAddHost('db=192.0.2.7'), { ip: '192.0.2.7', names: ['db'] }, 'NAME=IP, as newer docker');
  t.throws(() => parseAddHost(':1.2.3.4'), /use NAME:IP/);
});

t.test('resolv.conf for a container', async (t) => {
  const cases: Array<[string, string, 'bridge' | 'host' | 'none', RegExp[], RegExp[]]> = [
    ['plain', 'nameserver 10.0.0.53\nsearch corp.example\noptions ndots:2\n', 'bridge', [/^nameserver 10\.0\.0\.53$/m, /^search corp\.example$/m, /^options ndots:2$/m], [/Left out/]],
    ['stub resolver only', 'nameserver 127.0.0.53\noptions edns0\n', 'bridge', [/127\.0\.0\.53\) are not reachable from a container/, /--dns/], [/^nameserver/m]],
    ['mixed', 'nameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 2001:db8::1\n', 'bridge', [/^nameserver 192\.0\.2\.53$/m, /Left out, not reachable from a container: 127\.0\.0\.1, ::1, 2001:db8::1/], [/^nameserver 127/m, /^nameserver ::1/m]],
    ['host mode keeps loopback', 'nameserver 127.0.0.53\n', 'host', [/^nameserver 127\.0\.0\.53$/m], []],
    ['none', 'nameserver 10.0.0.53\n', 'none', [/no nameserver is reachable/], [/^nameserver/m]],
    ['empty host file', '', 'bridge', [/\(none\) are not reachable/], [/^nameserver/m]],
  ];
  for (const [what, host, mode, want, notWant] of cases) {
    const out = resolvConf(host, mode);
    for (const w of want) t.match(out, w, `${what}: ${w}`);
    for (const w of notWant) t.notMatch(out, w, `${what}: not ${w}`);
    t.notMatch(out, /8\.8\.8\.8|1\.1\.1\.1/, `${what}: no public server invented`);
  }
});

t.test('/etc/hosts for a container', async (t) => {
  const h = hostsFile({ hostname: 'web', ip: '10.89.0.7', extra: [{ ip: '10.89.0.8', names: ['db', 'db.local'] }] });
  t.match(h, /^127\.0\.0\.1\tlocalhost$/m);
  t.match(h, /^10\.89\.0\.7\tweb$/m);
  t.match(h, /^10\.89\.0\.8\tdb db\.local$/m);
  t.match(hostsFile({ hostname: 'lonely' }), /^127\.0\.1\.1\tlonely$/m, 'no address: the name still resolves');
});

t.test('hook state from stdin', async (t) => {
  t.same(parseHookState('{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":4242,"bundle":"/b","annotations":{"k":"v"}}'), {
    id: 'c1',
    pid: 4242,
    bundle: '/b',
    status: 'creating',
    annotations: { k: 'v' },
  });
  t.same(parseHookState('{"id":"c1"}'), { id: 'c1', annotations: {} }, 'poststop hooks may have no pid');
  t.throws(() => parseHookState('nope'), /not JSON/);
  t.throws(() => parseHookState('{"pid":1}'), /has no "id"/);
  t.throws(() => parseHookState('{"id":"c","pid":-3}'), /invalid "pid" -3/);
});
