/**
 * poc compose's pure parts: interpolation and .env files, file discovery and the project name, loading with the
 * Compose Specification's schema and poc's refusals (each error naming the file, line and key), the merge of
 * several files, a service's container plan (the flags `poc run` checks, labels, config hash), profiles, and
 * what `up` decides for an existing container.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { interpolateString, parseDotenv, splitCommand } from '../../src/poc/compose/interpolate.js';
import { checkProjectName, discoverFiles, normalizeProjectName, projectName } from '../../src/poc/compose/files.js';
import { loadProject, type LoadOptions } from '../../src/poc/compose/load.js';
import { applyScale, LABELS, planContainer, selectServices } from '../../src/poc/compose/plan.js';
import { converge, decide, orphans, type ExistingContainer } from '../../src/poc/compose/reconcile.js';
import { ExitCascade } from '../../src/poc/compose/cascade.js';
import { serviceScale } from '../../src/poc/compose/model.js';
import { projectYaml } from '../../src/poc/compose/config.js';
import { waitGoal, waitVerdict, type WaitState } from '../../src/poc/compose/wait.js';
import { resolveRunFlags } from '../../src/poc/containers/options.js';

const vars: Record<string, string> = { A: 'a', EMPTY: '', PORT: '8080' };
const lookup = (n: string) => vars[n];

t.test('interpolation: docker compose v2 forms', async (t) => {
  const cases: Array<[string, string]> = [
    ['$A', 'a'],
    ['${A}', 'a'],
    ['x${A}y$A', 'xaya'],
    ['${UNSET}', ''],
    ['${UNSET:-d}', 'd'],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${A:-d}', 'a'],
    ['${A:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['$$A', '$A'],
    ['$${A}', '${A}'],
    ['${UNSET:-${A}-${PORT}}', 'a-8080'],
    ['cost: 5$', 'cost: 5$'],
    ['${PORT:-80}:80', '8080:80'],
  ];
  for (const [text, want] of cases) t.equal(interpolateString(text, lookup, 'f: /x'), want, text);
  const bad: Array<[string, RegExp]> = [
    ['${', /f: \/x: invalid interpolation format "\$\{": you may need to escape any \$ with another \$/],
    ['${1A}', /invalid interpolation format/],
    ['${A!}', /invalid interpolation format/],
    ['${UNSET:?set it please}', /f: \/x: required variable UNSET is missing a value: set it please/],
    ['${EMPTY:?}', /required variable EMPTY is missing a value: EMPTY is unset or empty/],
    ['${UNSET?no}', /required variable UNSET is missing a value: no/],
  ];
  for (const [text, re] of bad) t.throws(() => interpolateString(text, lookup, 'f: /x'), re, text);
  t.equal(interpolateString('${EMPTY?no}', lookup, 'f'), '', '? accepts an empty value');
});

t.test('.env files: export, quotes, comments, earlier variables', async (t) => {
  const env = parseDotenv(
    [
      '# comment',
      'export A=1',
      'B = two words # a comment',
      "C='${A} literal'",
      'D="line\\nnext ${A}"',
      'E=${A}${B}',
      'F="multi',
      'line"',
      'FROM_HOST',
      'NOT_SET',
      'G=a#b',
      '',
    ].join('\n'),
    '.env',
    (n) => (n === 'FROM_HOST' ? 'h' : undefined),
  );
  t.same(env, { A: '1', B: 'two words', C: '${A} literal', D: 'line\nnext 1', E: '1two words', F: 'multi\nline', FROM_HOST: 'h', G: 'a#b' });
  t.throws(() => parseDotenv('A=1\n=x\n', '/p/.env'), /\/p\/\.env:2: invalid line "=x": use NAME=VALUE/);
  t.throws(() => parseDotenv('A="open\n', '/p/.env'), /\/p\/\.env:1: unterminated double-quoted value of A/);
});

t.test('a command given as a string is split as compose splits it', async (t) => {
  t.same(splitCommand(`sh -c 'echo "hi there"' x\\ y "a\\"b"`, 'w'), ['sh', '-c', 'echo "hi there"', 'x y', 'a"b']);
  t.same(splitCommand('  ', 'w'), []);
  t.throws(() => splitCommand("echo 'open", 'f: /services/a/command'), /f: \/services\/a\/command: unterminated quote/);
});

t.test('files and the project name', async (t) => {
  const present = new Set(['/w/app/compose.yaml', '/w/app/compose.override.yaml', '/w/other/docker-compose.yml', '/w/x.yml']);
  const fs = { exists: (p: string) => present.has(p) };
  t.same(discoverFiles({ files: [], cwd: '/w/app', env: {} }, fs), { files: ['/w/app/compose.yaml', '/w/app/compose.override.yaml'], workingDir: '/w/app' });
  t.same(discoverFiles({ files: [], cwd: '/w/app/src/deep', env: {} }, { exists: (p) => p === '/w/app/compose.yaml' }).files, ['/w/app/compose.yaml'], 'found in a parent');
  t.same(discoverFiles({ files: [], cwd: '/w/other', env: {} }, fs).files, ['/w/other/docker-compose.yml']);
  t.same(discoverFiles({ files: ['../x.yml'], cwd: '/w/app', env: {} }, fs), { files: ['/w/x.yml'], workingDir: '/w' }, '-f: its directory is the project directory');
  t.same(discoverFiles({ files: [], cwd: '/', env: { COMPOSE_FILE: '/w/x.yml:/w/app/compose.yaml' } }, fs).files, ['/w/x.yml', '/w/app/compose.yaml']);
  t.throws(() => discoverFiles({ files: [], cwd: '/w', env: {} }, fs), /no configuration file provided: none of compose\.yaml, compose\.yml, docker-compose\.yaml, docker-compose\.yml in \/w/);
  t.throws(() => discoverFiles({ files: ['nope.yaml'], cwd: '/w', env: {} }, fs), /compose file \/w\/nope\.yaml: No such file or directory/);
  t.equal(normalizeProjectName('My App.v2'), 'myappv2');
  t.equal(normalizeProjectName('_x-Y'), 'x-y');
  t.equal(projectName({ env: {}, workingDir: '/srv/Web Shop' }), 'webshop');
  t.equal(projectName({ env: { COMPOSE_PROJECT_NAME: 'envname' }, fileName: 'filename', workingDir: '/x' }), 'envname');
  t.equal(projectName({ flag: 'flag', env: { COMPOSE_PROJECT_NAME: 'envname' }, workingDir: '/x' }), 'flag');
  t.equal(projectName({ env: {}, fileName: 'from-file', workingDir: '/x' }), 'from-file');
  t.throws(() => checkProjectName('Bad Name', '-p'), /invalid project name "Bad Name" \(-p\): lower-case letters/);
});

/** A project from files in memory. */
function load(files: Record<string, string>, o: Partial<LoadOptions> = {}) {
  return loadProject({
    files: Object.keys(files).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')),
    workingDir: '/p',
    env: {},
    readFile: (p) => {
      if (!(p in files)) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
      return files[p]!;
    },
    ...o,
  });
}

const APP = readFileSync(join(import.meta.dirname, '../../examples/compose-app/compose.yaml'), 'utf8');

t.test('the example application loads, with .env and the environment over it', async (t) => {
  const p = load({ '/p/compose.yaml': APP }, { dotenv: { path: '/p/.env', text: 'WEB_PORT=9000\nIMAGE=fromdotenv\n' }, env: { IMAGE: 'fromenv' } });
  t.equal(p.name, 'p');
  t.same(Object.keys(p.services).sort(), ['api', 'store', 'web']);
  t.same(p.services.web!.ports, [{ target: 8000, published: 9000, protocol: 'tcp' }], '.env gives WEB_PORT');
  t.equal(p.services.web!.image, 'fromenv', 'the environment wins over .env');
  t.same(p.services.api!.dependsOn, { store: { condition: 'service_healthy', required: true, restart: false } });
  t.same(p.services.web!.dependsOn, { api: { condition: 'service_started', required: true, restart: false } });
  t.same(p.services.store!.volumes, [
    { type: 'bind', source: '/p/app', target: '/app', readOnly: true, createHostPath: true },
    { type: 'volume', source: 'data', target: '/data', readOnly: false },
  ]);
  t.same(p.services.store!.healthcheck, { test: ['CMD', 'bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/6000'], interval: '500ms', retries: 60 });
  t.same(p.services.store!.limits, { memory: '128m', pids: 64 });
  t.same(p.volumes, { data: { name: 'p_data', external: false, labels: {} } });
  t.match(projectYaml(p), /name: p\nservices:\n {2}api:/, 'config prints it back');
});

t.test('bad files: one error each, naming the file, the line and the key', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['services:\n  web:\n    image: x\n    links: [db]\n', /^\/p\/compose\.yaml:4: \/services\/web\/links: poc compose does not support the key "links"$/],
    ['services:\n  web:\n    image: x\n    bogus: 1\n', /^\/p\/compose\.yaml:4: \/services\/web\/bogus: unknown key "bogus" in services\.web \(not in the Compose Specification\)$/],
    ['services:\n  web:\n    image: x\n    healthcheck:\n      interval: 5\n', /^\/p\/compose\.yaml:5: \/services\/web\/healthcheck\/interval: must be a string$/],
    ['services:\n  web:\n    image: x\n    deploy:\n      replicas: -1\n', /^\/p\/compose\.yaml:5: \/services\/web\/deploy\/replicas: invalid number of containers -1: a whole number, 0 or more$/],
    ['services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n', /^\/p\/compose\.yaml:4: \/services\/web\/scale: scale \(2\) and deploy\.replicas \(3\) are set to distinct values$/],
    ['services:\n  web:\n    image: x\n    container_name: w1\n    deploy: {replicas: 2}\n', /^compose\.yaml: \/services\/web\/container_name: can't set container_name "w1": the service has 2 containers \(deploy\.replicas, scale or --scale\), and a container name must be unique$/],
    ['services:\n  web:\n    image: x\n    scale: 3\n    ports: ["80", "8080:80"]\n', /^compose\.yaml: \/services\/web\/ports\/1: the host port 8080 can be published by one container only, and the service has 3 containers/],
    ['services:\n  web:\n    image: x\n    platform: windows/amd64\n', /^\/p\/compose\.yaml:4: \/services\/web\/platform: poc builds only for this machine's platform, linux\/\w+, not windows\/amd64 \(it runs no emulation\)$/],
    ['services:\n  web:\n    build:\n      platforms: [linux/s390x]\n', /^\/p\/compose\.yaml:4: \/services\/web\/build\/platforms\/0: poc builds only for this machine's platform, linux\/\w+, not linux\/s390x/],
    ['services:\n  web:\n    build:\n      platforms: [nonsense]\n', /:4: \/services\/web\/build\/platforms\/0: "nonsense" is not a platform \(os\/arch\[\/variant\], as linux\/amd64\)$/],
    ['services:\n  web:\n    build:\n      ssh: ["my key=/k"]\n', /:4: \/services\/web\/build\/ssh\/0: invalid ssh id "my key": letters, digits and \._- \(default, or ID=PATH\)$/],
    ['services:\n  web:\n    image: x\n    deploy:\n      resources:\n        reservations: {memory: 1g}\n', /:6: \/services\/web\/deploy\/resources\/reservations: poc compose does not support/],
    ['services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD, "true"]\n      start_interval: 1s\n', /:6: \/services\/web\/healthcheck\/start_interval: poc compose does not support the key/],
    ['services:\n  web:\n    image: x\n    ports: ["8000-8010:80-81"]\n', /:4: \/services\/web\/ports\/0: invalid port mapping "8000-8010:80-81": the host range 8000-8010 has 11 port\(s\) and the container range 80-81 2: they must be the same length$/],
    ['services:\n  web:\n    image: x\n    ports: ["[::1]:8080:80"]\n', /:4: \/services\/web\/ports\/0: invalid port mapping "\[::1\]:8080:80": host address "::1" is not an IPv4 address/],
    ['services:\n  web:\n    image: x\n    ports: ["8080:80/sctp"]\n', /:4: \/services\/web\/ports\/0: invalid port mapping "8080:80\/sctp": protocol "sctp" is not tcp or udp$/],
    ['services:\n  web:\n    image: x\n    ports:\n      - {target: 80, published: "99999"}\n', /:5: \/services\/web\/ports\/0: invalid port mapping "99999:80\/tcp": host port 99999 is out of range 1-65535$/],
    ['services:\n  web:\n    image: x\n    deploy: {resources: {limits: {cpus: "999"}}}\n', /^\/p\/compose\.yaml:4: \/services\/web\/deploy\/resources\/limits\/cpus: invalid cpus 999: this machine has 2 CPUs$/],
    ['services:\n  web:\n    image: x\n    deploy: {resources: {limits: {cpus: "lots"}}}\n', /:4: \/services\/web\/deploy\/resources\/limits\/cpus: invalid cpus "lots": use a positive number/],
    ['services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: 1k\n', /^\/p\/compose\.yaml:7: \/services\/web\/deploy\/resources\/limits\/memory: memory limit 1k for memory is too small: at least 6m$/],
    ['services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: 12qb}}}\n', /\/services\/web\/deploy\/resources\/limits\/memory: invalid memory size "12qb" for memory/],
    ['services:\n  web:\n    image: x\n    deploy: {resources: {limits: {pids: 0}}}\n', /\/services\/web\/deploy\/resources\/limits\/pids: invalid pids "0": use a positive integer$/],
    ['services:\n  web:\n    image: x\n    network_mode: "service:db"\n', /\/services\/web\/network_mode: poc compose does not support the key "network_mode" \("service:db": poc takes host, none and bridge\)/],
    ['services:\n  web:\n    image: x\n    volumes: [data:/d]\n', /\/services\/web\/volumes\/0: the service refers to the undefined volume "data"/],
    ['services:\n  web:\n    image: x\n    networks: [back]\n', /\/services\/web\/networks\/back: the service refers to the undefined network "back"/],
    ['services:\n  web:\n    image: x\n    depends_on: [db]\n', /\/services\/web\/depends_on: the service depends on the undefined service "db"/],
    ['services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n', /the services depend on each other in a cycle: a -> b -> a/],
    ['services:\n  web:\n    command: x\n', /\/services\/web: the service has neither an image nor a build/],
    ['services:\n  web:\n    image: x\nnetworks:\n  n:\n    driver: overlay\n', /:6: \/networks\/n\/driver: poc compose does not support the key "driver" \(driver "overlay": poc's networks are bridges\)/],
    ['services:\n  web:\n    image: ${TAG:?give a TAG}\n', /^\/p\/compose\.yaml:3: \/services\/web\/image: required variable TAG is missing a value: give a TAG$/],
    ['services:\n  web:\n    image: x\n   bad: indent\n', /^\/p\/compose\.yaml:4: invalid YAML: /],
    ['services:\n  web:\n    image: x\n    image: y\n', /^\/p\/compose\.yaml:4: invalid YAML: Map keys must be unique/],
    ['', /\/p\/compose\.yaml: the file is empty/],
    ['- a\n', /the top level must be a mapping/],
    ['services: {}\n', /no service is defined/],
    ['services:\n  "bad name":\n    image: x\n', /:2: \/services\/bad name: unknown key "bad name" in services/],
    ['services:\n  web:\n    image: x\n    volumes: ["./a:/a:z"]\n', /\/services\/web\/volumes\/0: volume "\.\/a:\/a:z": the mode "z" is not supported by poc/],
  ];
  for (const [text, re] of cases) t.throws(() => load({ '/p/compose.yaml': text }, { cpuCount: 2 }), re, text.split('\n').slice(-3).join(' '));
  t.throws(() => load({ '/p/compose.yaml': 'services:\n  web: {image: x}\n' }, { projectName: 'Bad' }), /invalid project name "Bad" \(-p\)/);
});

t.test('ports: ephemeral (no published port) and ranges, short and long syntax, as poc run -p reads them', async (t) => {
  const p = load({
    '/p/compose.yaml': [
      'services:',
      '  web:',
      '    image: x',
      '    ports:',
      '      - "80"',
      '      - "127.0.0.1::81/udp"',
      '      - "8000-8001:90-91"',
      '      - {target: 100}',
      '      - {target: 101, host_ip: 127.0.0.1, protocol: udp}',
      '      - {target: 102, published: "9000-9000"}',
      '      - {target: 103, published: 9103}',
      '',
    ].join('\n'),
  });
  t.same(p.services.web!.ports, [
    { target: 80, published: 0, protocol: 'tcp' },
    { target: 81, published: 0, hostIp: '127.0.0.1', protocol: 'udp' },
    { target: 90, published: 8000, protocol: 'tcp' },
    { target: 91, published: 8001, protocol: 'tcp' },
    { target: 100, published: 0, protocol: 'tcp' },
    { target: 101, published: 0, hostIp: '127.0.0.1', protocol: 'udp' },
    { target: 102, published: 9000, protocol: 'tcp' },
    { target: 103, published: 9103, protocol: 'tcp' },
  ]);
  const flags = planContainer(p, 'web', { readFile: () => '', lookup: () => undefined, version: 'test' }).flags;
  t.same(flags.publish, ['80/tcp', '127.0.0.1::81/udp', '8000:90/tcp', '8001:91/tcp', '100/tcp', '127.0.0.1::101/udp', '9000:102/tcp', '9103:103/tcp'], 'the -p flags poc run gets');
  t.match(projectYaml(p), /- target: 80\n {8}protocol: tcp\n/, 'config prints an ephemeral port without published');
  t.notMatch(projectYaml(p), /published: "0"/);
});

t.test('several files: the later one over the earlier, by the merge rules', async (t) => {
  const p = load({
    '/p/compose.yaml': [
      'services:',
      '  web:',
      '    image: a',
      '    command: [one, two]',
      '    environment: {A: "1", B: "2"}',
      '    ports: ["8080:80"]',
      '    volumes: ["./x:/x", "data:/data"]',
      '    healthcheck: {test: [CMD, "true"], interval: 1s}',
      '    depends_on: [db]',
      '    labels: [l1=a]',
      '  db:',
      '    image: db',
      'volumes:',
      '  data: {}',
    ].join('\n'),
    '/p/compose.override.yaml': [
      'services:',
      '  web:',
      '    image: b',
      '    command: three',
      '    environment: [B=20, C=3]',
      '    ports: ["8080:80", "9090:90"]',
      '    volumes: ["./y:/x:ro"]',
      '    healthcheck: {retries: 5}',
      '    depends_on: {db: {condition: service_healthy}}',
      '    labels: {l2: b}',
      '  extra:',
      '    image: e',
    ].join('\n'),
  });
  const web = p.services.web!;
  t.equal(web.image, 'b', 'scalars replace');
  t.same(web.command, ['three'], 'command replaces');
  t.same(web.environment, { A: '1', B: '20', C: '3' }, 'environment merges by name, list and map alike');
  t.same(web.ports.map((x) => x.published), [8080, 9090], 'ports append what is new');
  t.same(web.volumes.map((v) => [v.target, v.source, v.readOnly]), [['/x', '/p/y', true], ['/data', 'data', false]], 'volumes merge by their container path');
  t.same(web.healthcheck, { test: ['CMD', 'true'], interval: '1s', retries: 5 });
  t.same(web.dependsOn.db!.condition, 'service_healthy');
  t.same(web.labels, { l1: 'a', l2: 'b' });
  t.ok(p.services.extra, 'a service of the later file alone');
});

t.test('a service as the container poc makes: flags checked as poc run checks them, labels, config hash', async (t) => {
  const files = {
    '/p/compose.yaml': [
      'name: shop',
      'services:',
      '  web:',
      '    image: debian',
      '    entrypoint: ["/bin/sh", "-c"]',
      '    command: "echo hi"',
      '    env_file: [./web.env, {path: ./missing.env, required: false}]',
      '    environment: [FROM_FILE=overridden, FROM_HOST, NOT_SET]',
      '    ports: ["127.0.0.1:8080:80/tcp"]',
      '    volumes: ["data:/data:ro", "/srv:/srv", {type: tmpfs, target: /run/t, tmpfs: {size: 1m}}]',
      '    networks:',
      '      front: {aliases: [www], ipv4_address: 10.77.0.9}',
      '      default: {}',
      '    healthcheck: {test: "wget -q localhost", interval: 2s, timeout: 1s, retries: 2}',
      '    restart: on-failure:3',
      '    deploy: {resources: {limits: {cpus: "0.5", memory: 64m, pids: 50}}}',
      '    cap_add: [NET_ADMIN]',
      '    cap_drop: [MKNOD]',
      '    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 100}',
      '    sysctls: {net.core.somaxconn: 1024}',
      '    extra_hosts: {db.local: 10.0.0.5}',
      '    stop_grace_period: 1m30s',
      '    labels: {team: a}',
      'networks:',
      '  front:',
      '    ipam: {config: [{subnet: 10.77.0.0/24}]}',
      'volumes:',
      '  data: {}',
    ].join('\n'),
    '/p/web.env': 'FROM_FILE=file\nONLY_FILE="x y"\n',
  };
  const p = load(files);
  const contextOf = (fs: Record<string, string>) => ({
    readFile: (f: string) => fs[f] ?? (() => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); })(),
    lookup: (n: string) => (n === 'FROM_HOST' ? 'host' : undefined),
    version: 'test',
  });
  const ctx = contextOf(files);
  const plan = planContainer(p, 'web', ctx);
  t.equal(plan.name, 'shop-web-1');
  t.same(plan.flags.env, ['FROM_FILE=overridden', 'ONLY_FILE=x y', 'FROM_HOST=host']);
  t.same(plan.flags.mounts, ['type=volume,source=shop_data,target=/data,readonly', 'type=bind,source=/srv,target=/srv', 'type=tmpfs,target=/run/t,tmpfs-size=1m']);
  t.same(plan.flags.publish, ['127.0.0.1:8080:80/tcp']);
  t.same(plan.flags.network, ['shop_front', 'shop_default']);
  t.same(plan.overrides.networks, [{ network: 'shop_front', aliases: ['web', 'www'], ip: '10.77.0.9' }, { network: 'shop_default', aliases: ['web'] }]);
  t.same(plan.overrides.entrypoint, ['/bin/sh', '-c']);
  t.same(plan.flags.command, ['echo', 'hi']);
  t.same(plan.overrides.healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 2e9, Timeout: 1e9, Retries: 2 });
  t.equal(plan.flags.stopTimeout, '90');
  t.same(plan.flags.ulimits, ['nofile=1024:2048', 'nproc=100:100']);
  t.same(plan.flags.addHosts, ['db.local:10.0.0.5']);
  for (const l of [`${LABELS.project}=shop`, `${LABELS.service}=web`, `${LABELS.oneoff}=False`, `${LABELS.configHash}=${plan.configHash}`, 'team=a', `${LABELS.workingDir}=/p`]) t.ok(plan.flags.labels.includes(l), l);
  const options = resolveRunFlags(plan.flags, { readFile: () => '', hostEnv: {}, cpuCount: 2, systemdRunning: false });
  t.same(options.resources, { memory: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 50 }, 'poc run accepts every flag');
  t.same(options.restart, { Name: 'on-failure', MaximumRetryCount: 3 });
  t.same(planContainer(load(files), 'web', ctx).configHash, plan.configHash, 'the same service, the same hash');
  const changed = { ...files, '/p/web.env': 'FROM_FILE=file\nONLY_FILE=changed\n' };
  t.not(planContainer(load(changed), 'web', contextOf(changed)).configHash, plan.configHash, 'an env_file change is a change');
});

t.test('secrets and configs: long forms, targets, modes, and where each value comes from', async (t) => {
  const files: Record<string, string> = {
    '/p/compose.yaml': [
      'secrets:',
      '  db_pw: {file: ./db_pw.txt}',
      '  token: {environment: TOKEN}',
      '  owned: {file: /etc/owned}',
      'configs:',
      '  app: {content: "port=${PORT}"}',
      '  nginx: {file: conf/nginx.conf}',
      'x-defaults: &defaults',
      '  configs: [{source: app, target: /merged, mode: 0640}]',
      'services:',
      '  side: {<<: *defaults, image: x}',
      '  web:',
      '    image: x',
      '    secrets:',
      '      - db_pw',
      '      - {source: token, target: api_token, uid: "1000", gid: "1001", mode: 0440}',
      '      - {source: owned, target: /etc/owned.key, mode: "0400"}',
      '    configs:',
      '      - app',
      '      - {source: nginx, target: /etc/nginx/nginx.conf, mode: 0o644}',
      '      - {source: app, target: conf/app.ini, mode: 420}',
      '      - {source: app, target: /aliased, mode: &m 0400}',
      '      - {source: app, target: /aliased2, mode: *m}',
    ].join('\n'),
  };
  const p = load(files, { env: { PORT: '80', TOKEN: 't0k' } });
  t.same(p.secrets.db_pw, { file: '/p/db_pw.txt', at: '/p/compose.yaml:2: /secrets/db_pw/file' }, 'a relative file is the project directory\'s');
  t.same(p.configs.app, { content: 'port=80', at: '/p/compose.yaml:6: /configs/app/content' }, 'content is interpolated');
  t.same(p.services.web!.secrets, [
    { source: 'db_pw', target: '/run/secrets/db_pw' },
    { source: 'token', target: '/run/secrets/api_token', uid: 1000, gid: 1001, mode: 0o440 },
    { source: 'owned', target: '/etc/owned.key', mode: 0o400 },
  ], 'a relative target is under /run/secrets; 0440 is octal, as compose reads it');
  t.same(p.services.web!.configs, [
    { source: 'app', target: '/app' },
    { source: 'nginx', target: '/etc/nginx/nginx.conf', mode: 0o644 },
    { source: 'app', target: '/conf/app.ini', mode: 420 },
    { source: 'app', target: '/aliased', mode: 0o400 },
    { source: 'app', target: '/aliased2', mode: 0o400 },
  ], 'a config is at /NAME; a decimal mode is decimal; an alias is its anchor\'s octal');
  t.same(p.services.side!.configs, [{ source: 'app', target: '/merged', mode: 0o640 }], 'through a merge key: its octal too');
  const disk: Record<string, string> = { '/p/db_pw.txt': 'hunter2', '/p/conf/nginx.conf': 'events {}', '/etc/owned': 'key' };
  const ctx = {
    readFile: (f: string) => disk[f] ?? (() => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); })(),
    lookup: p.lookup,
    version: 'test',
  };
  const plan = planContainer(p, 'web', ctx);
  t.same(plan.flags.mounts, ['type=bind,source=/p/db_pw.txt,target=/run/secrets/db_pw,readonly'], 'a host file without owner or mode is bound');
  t.same(plan.files.map((f) => [f.target, f.content.toString(), f.uid, f.gid, f.mode.toString(8)]), [
    ['/run/secrets/api_token', 't0k', 1000, 1001, '440'],
    ['/etc/owned.key', 'key', 0, 0, '400'],
    ['/app', 'port=80', 0, 0, '444'],
    ['/etc/nginx/nginx.conf', 'events {}', 0, 0, '644'],
    ['/conf/app.ini', 'port=80', 0, 0, '644'],
    ['/aliased', 'port=80', 0, 0, '400'],
    ['/aliased2', 'port=80', 0, 0, '400'],
  ], 'a variable, content, or a file with its own mode is given whole; 0444 by default');
  t.notOk(JSON.stringify(plan.flags).includes('t0k'), 'a value given whole is not in the flags (nor the record)');
  const again = load(files, { env: { PORT: '80', TOKEN: 'other' } });
  t.not(planContainer(again, 'web', { ...ctx, lookup: again.lookup }).configHash, plan.configHash, 'a changed secret value is a change');
  const unset = load(files, { env: { PORT: '80' } });
  t.throws(() => planContainer(unset, 'web', { ...ctx, lookup: unset.lookup }), /^\/p\/compose\.yaml:3: \/secrets\/token\/environment: environment variable "TOKEN" required by the secret "token" \(service web\) is not set$/);
  const { '/p/db_pw.txt': _gone, ...lost } = disk;
  t.throws(() => planContainer(p, 'web', { ...ctx, readFile: (f: string) => lost[f] ?? (() => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); })() }), /^\/p\/compose\.yaml:2: \/secrets\/db_pw\/file: \/p\/db_pw\.txt: No such file or directory \(the secret "db_pw" of service web\)$/);
  t.match(projectYaml(p), /secrets:\n {6}- source: db_pw\n {8}target: \/run\/secrets\/db_pw\n/, 'config prints the long syntax');
  const over = load({ ...files, '/p/over.yaml': 'secrets:\n  db_pw: {environment: PW}\nservices:\n  web:\n    secrets: [{source: token, target: db_pw}]\n' }, { env: { PORT: '80', TOKEN: 't0k' } });
  t.same(over.secrets.db_pw, { environment: 'PW', at: '/p/over.yaml:2: /secrets/db_pw/environment' }, 'a later file\'s secret replaces');
  t.same(over.services.web!.secrets.map((g) => `${g.source}>${g.target}`), ['token>/run/secrets/db_pw', 'token>/run/secrets/api_token', 'owned>/etc/owned.key'], 'grants merge by target');

  const bad: Array<[string, RegExp]> = [
    ['secrets:\n  s: {external: true}\n', /^\/p\/compose\.yaml:2: \/secrets\/s\/external: poc compose does not support the key "external" \(an external secret is a swarm's, and poc has no swarm/],
    ['configs:\n  c:\n    external: true\n', /:3: \/configs\/c\/external: poc compose does not support the key "external"/],
    ['secrets:\n  s: {file: ./a, driver: vault}\n', /\/secrets\/s\/driver: poc compose does not support the key "driver" \(secret drivers are a swarm's\)/],
    ['secrets:\n  s: {content: x}\n', /^\/p\/compose\.yaml:2: \/secrets\/s\/content: unknown key "content" in secrets\.s/],
    ['secrets:\n  s: {labels: {a: b}}\n', /^\/p\/compose\.yaml:2: \/secrets\/s: the secret "s" needs one of `file` or `environment`$/],
    ['configs:\n  c: {file: ./a, content: x}\n', /\/configs\/c\/content: the config "c" has both file and content/],
    ['secrets:\n  s: {environment: "1X"}\n', /\/secrets\/s\/environment: invalid variable name "1X"/],
    ['secrets:\n  s: {file: ./a}\nservices:\n  web:\n    image: x\n    secrets: [nope]\n', /\/services\/web\/secrets\/0: the service refers to the undefined secret "nope" \(declare it under the top-level secrets:\)/],
    ['configs:\n  c: {content: x}\nservices:\n  web:\n    image: x\n    configs: [{source: c, mode: 0999}]\n', /^\/p\/compose\.yaml:6: \/services\/web\/configs\/0\/mode: invalid mode "0999": an octal number from 0 to 07777/],
    ['configs:\n  c: {content: x}\nservices:\n  web:\n    image: x\n    configs: [{source: c, mode: "rw"}]\n', /\/services\/web\/configs\/0\/mode: invalid mode "rw"/],
    ['configs:\n  c: {content: x}\nservices:\n  web:\n    image: x\n    configs: [{source: c, mode: 0o17777}]\n', /\/services\/web\/configs\/0\/mode: invalid mode "0o17777"/],
    ['secrets:\n  s: {file: ./a}\nservices:\n  web:\n    image: x\n    secrets: [{source: s, uid: bob}]\n', /\/services\/web\/secrets\/0\/uid: invalid uid "bob": a number/],
    ['secrets:\n  s: {file: ./a}\nservices:\n  web:\n    image: x\n    secrets: [{source: s, target: ../../etc/passwd}]\n', /\/services\/web\/secrets\/0\/target: invalid target "\.\.\/\.\.\/etc\/passwd"/],
    ['secrets:\n  s: {file: ./a}\nservices:\n  web:\n    image: x\n    secrets: [s, {source: s}]\n', /\/services\/web\/secrets\/1: \/run\/secrets\/s is already the target of secrets 0/],
    ['secrets:\n  s: {file: ./a}\nservices:\n  web:\n    image: x\n    secrets: [{target: x}]\n', /\/services\/web\/secrets\/0: a secret needs its source/],
  ];
  for (const [text, re] of bad) {
    const doc = text.includes('services:') ? text : `${text}services:\n  web: {image: x}\n`;
    t.throws(() => load({ '/p/compose.yaml': doc }), re, text.split('\n').slice(0, 2).join(' '));
  }
});

t.test('up --wait: running or healthy, completed for what others need completed; the first failure names its service', async (t) => {
  const p = load({ '/p/compose.yaml': 'services:\n  init: {image: x}\n  db: {image: x}\n  web: {image: x, depends_on: {init: {condition: service_completed_successfully}, db: {condition: service_healthy}}}\n' });
  t.same(['init', 'db', 'web'].map((s) => waitGoal(p, s)), ['completed_successfully', 'running_or_healthy', 'running_or_healthy']);
  const R = 'running_or_healthy' as const;
  const C = 'completed_successfully' as const;
  const st = (service: string, goal: WaitState['goal'], rest: Partial<WaitState>): WaitState => ({ service, goal, name: `p-${service}-1`, ...rest });
  const cases: Array<[string, WaitState[], { ready?: string[]; waiting?: string[]; error?: RegExp }]> = [
    ['running, no health check: ready', [st('web', R, { status: 'running' })], { ready: ['p-web-1'], waiting: [] }],
    ['created: waiting', [st('web', R, { status: 'created' })], { waiting: ['web (created)'] }],
    ['restarting: waiting', [st('web', R, { status: 'restarting', exitCode: 1 })], { waiting: ['web (restarting)'] }],
    ['health starting: waiting', [st('db', R, { status: 'running', hasHealthcheck: true, health: 'starting' })], { waiting: ['db (starting)'] }],
    ['healthy: ready', [st('db', R, { status: 'running', hasHealthcheck: true, health: 'healthy' })], { ready: ['p-db-1'] }],
    ['unhealthy: fails', [st('web', R, { status: 'running' }), st('db', R, { status: 'running', hasHealthcheck: true, health: 'unhealthy' })], { error: /^service db: container p-db-1 is unhealthy$/ }],
    ['exited: fails', [st('web', R, { status: 'exited', exitCode: 3 })], { error: /^service web: container p-web-1 exited \(3\)$/ }],
    ['completed 0: ready', [st('init', C, { status: 'exited', exitCode: 0 })], { ready: ['p-init-1'] }],
    ['completed 0 still running: waiting', [st('init', C, { status: 'running' })], { waiting: ['init (running)'] }],
    ['completed non-zero: fails', [st('init', C, { status: 'exited', exitCode: 2 })], { error: /^service init didn't complete successfully: container p-init-1 exited \(2\)$/ }],
    ['no container: fails', [{ service: 'web', goal: R }], { error: /^service web has no container$/ }],
  ];
  for (const [what, states, want] of cases) {
    const v = waitVerdict(states);
    if (want.ready) t.same(v.ready, want.ready, `${what}: ready`);
    if (want.waiting) t.same(v.waiting.map((w) => `${w.service} (${w.now})`), want.waiting, `${what}: waiting`);
    if (want.error) t.match(v.error, want.error, what);
    else t.equal(v.error, undefined, `${what}: no error`);
  }
});

t.test('extends: the same file and another, chains, paths relative to the base file, cycles', async (t) => {
  const files: Record<string, string> = {
    '/p/compose.yaml': [
      'services:',
      '  base:',
      '    image: debian',
      '    environment: {A: base, B: base}',
      '    volumes: ["./data:/data"]',
      '    command: sleep 1',
      '  web:',
      '    extends: base',
      '    environment: {B: web}',
      '    ports: ["80"]',
      '  api:',
      '    extends: {service: common, file: lib/common.yaml}',
      '    command: ["serve"]',
      '  top: {extends: web, labels: {x: "1"}}',
    ].join('\n'),
    '/p/lib/common.yaml': [
      'services:',
      '  root: {image: busybox, env_file: root.env, labels: {from: root}}',
      '  common:',
      '    extends: root',
      '    volumes: ["./conf:/conf:ro"]',
      '    build: ./ctx',
      '    environment: {C: "${C_VAL:-c}"}',
      '  unrelated: {image: x}',
    ].join('\n'),
  };
  const p = load(files, { files: ['/p/compose.yaml'], env: { C_VAL: 'interpolated' } });
  t.same(p.services.web!.environment, { A: 'base', B: 'web' }, 'mappings merge, the service over its base');
  t.same(p.services.web!.volumes.map((m) => m.source), ['/p/data']);
  t.same(p.services.web!.command, ['sleep', '1'], 'what the service does not set it inherits');
  t.same(p.services.top!.environment, { A: 'base', B: 'web' }, 'a chain');
  t.same(p.services.top!.labels, { x: '1' });
  const api = p.services.api!;
  t.equal(api.image, 'busybox', 'from the other file, through its own extends');
  t.same(api.command, ['serve']);
  t.same(api.volumes.map((m) => m.source), ['/p/lib/conf'], 'a relative path of the base file is its directory\'s');
  t.equal(api.build!.context, '/p/lib/ctx');
  t.same(api.envFiles, [{ path: '/p/lib/root.env', required: true }]);
  t.same(api.environment, { C: 'interpolated' }, 'the base file is interpolated with the project\'s variables');
  t.same(api.labels, { from: 'root' });
  t.notOk(p.services.unrelated, 'the other file\'s services are not the project\'s');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ '/p/compose.yaml': 'services:\n  web: {extends: nope}\n' }, /^\/p\/compose\.yaml:2: \/services\/web\/extends: cannot extend service "web": service "nope" not found in \/p\/compose\.yaml$/],
    [{ '/p/compose.yaml': 'services:\n  a: {extends: b, image: x}\n  b: {extends: c}\n  c: {extends: a}\n' }, /\/services\/\w\/extends: the services extend each other in a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)$/],
    [{ '/p/compose.yaml': 'services:\n  a: {extends: a, image: x}\n' }, /\/services\/a\/extends: the services extend each other in a cycle: a -> a/],
    [{ '/p/compose.yaml': 'services:\n  web:\n    extends: {service: s, file: gone.yaml}\n' }, /^\/p\/compose\.yaml:3: \/services\/web\/extends\/file: \/p\/gone\.yaml: No such file or directory$/],
    [{ '/p/compose.yaml': 'services:\n  web:\n    extends: {file: b.yaml}\n' }, /\/services\/web\/extends/],
    [{ '/p/compose.yaml': 'services:\n  web:\n    extends: {service: s, file: b.yaml}\n', '/p/b.yaml': 'services:\n  s: {image: x, links: [a]}\n' }, /^\/p\/b\.yaml:2: \/services\/s\/links: poc compose does not support the key "links"/],
    [{ '/p/compose.yaml': 'services:\n  web:\n    extends: {service: s, file: b.yaml}\n', '/p/b.yaml': 'services:\n  s: {image: x, ports: 80}\n' }, /^\/p\/b\.yaml:2: \/services\/s\/ports: must be an array/],
  ];
  for (const [fs, re] of bad) t.throws(() => load(fs, { files: ['/p/compose.yaml'] }), re, Object.values(fs)[0]!.split('\n')[1]);
});

t.test('include: another application\'s resources, its own directory and variables; conflicts and cycles', async (t) => {
  const files: Record<string, string> = {
    '/p/compose.yaml': [
      'include:',
      '  - db/compose.yaml',
      '  - path: [cache/compose.yaml, cache/override.yaml]',
      '    env_file: cache.env',
      'services:',
      '  web: {image: x, depends_on: [db, cache]}',
    ].join('\n'),
    '/p/db/compose.yaml': 'services:\n  db:\n    image: "postgres:${PG:-16}"\n    volumes: [data:/var/lib/db, ./init:/init]\nvolumes:\n  data: {}\n',
    '/p/db/.env': 'PG=15\n',
    '/p/cache/compose.yaml': 'services:\n  cache: {image: "redis:${REDIS}", secrets: [pw]}\nsecrets:\n  pw: {file: ./pw.txt}\n',
    '/p/cache/override.yaml': 'services:\n  cache: {environment: {X: "1"}}\n',
    '/p/cache.env': 'REDIS=7\n',
  };
  const p = load(files, { files: ['/p/compose.yaml'] });
  t.same(Object.keys(p.services).sort(), ['cache', 'db', 'web']);
  t.equal(p.services.db!.image, 'postgres:15', 'the included directory\'s .env');
  t.same(p.services.db!.volumes.map((m) => m.source), ['data', '/p/db/init'], 'relative paths: the included directory\'s');
  t.equal(p.volumes.data!.name, 'p_data', 'named in this project');
  t.equal(p.services.cache!.image, 'redis:7', 'env_file, relative to the including project');
  t.same(p.services.cache!.environment, { X: '1' }, 'several paths: the later override the first');
  t.equal(p.secrets.pw!.file, '/p/cache/pw.txt');
  t.equal(load(files, { files: ['/p/compose.yaml'], env: { PG: '14' } }).services.db!.image, 'postgres:14', 'the project\'s variables before the included .env');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ '/p/compose.yaml': 'include: [gone/compose.yaml]\nservices:\n  web: {image: x}\n' }, /^\/p\/compose\.yaml:1: \/include\/0: \/p\/gone\/compose\.yaml: No such file or directory$/],
    [{ '/p/compose.yaml': 'include: [b/compose.yaml]\nservices:\n  web: {image: x}\n', '/p/b/compose.yaml': 'services:\n  web: {image: y}\n' }, /^\/p\/compose\.yaml:1: \/include\/0: services\.web conflicts with imported resource \(\/p\/b\/compose\.yaml defines it too\)$/],
    [{ '/p/compose.yaml': 'include: [b/compose.yaml]\nservices:\n  web: {image: x}\n', '/p/b/compose.yaml': 'include: [../compose.yaml]\nservices:\n  b: {image: y}\n' }, /^\/p\/b\/compose\.yaml:1: \/include\/0: the files include each other in a cycle: \/p\/compose\.yaml -> \/p\/b\/compose\.yaml -> \/p\/compose\.yaml$/],
    [{ '/p/compose.yaml': 'include: [{path: b.yaml, env_file: nope.env}]\nservices:\n  web: {image: x}\n', '/p/b.yaml': 'services:\n  b: {image: y}\n' }, /\/include\/0\/env_file: \/p\/nope\.env: No such file or directory/],
  ];
  for (const [fs, re] of bad) t.throws(() => load(fs, { files: ['/p/compose.yaml'] }), re, Object.values(fs)[0]!.split('\n')[0]);
});

t.test('profiles: which services a command acts on', async (t) => {
  const p = load({
    '/p/compose.yaml': [
      'services:',
      '  web: {image: x, depends_on: [db]}',
      '  db: {image: x}',
      '  debug: {image: x, profiles: [debug], depends_on: [tools]}',
      '  tools: {image: x, profiles: [tools]}',
      '  lonely: {image: x, profiles: [debug], depends_on: [web]}',
    ].join('\n'),
  });
  t.same(selectServices(p, [], []).sort(), ['db', 'web']);
  t.throws(() => selectServices(p, [], ['debug']), /service debug depends on tools, whose profiles \(tools\) are not enabled: add --profile/);
  t.same(selectServices(p, [], ['debug', 'tools']).sort(), ['db', 'debug', 'lonely', 'tools', 'web']);
  t.same(selectServices(p, ['debug'], []).sort(), ['debug', 'tools'], 'a named service brings its dependencies');
  t.same(selectServices(p, [], ['*']).length, 5);
  t.throws(() => selectServices(p, ['nope'], []), /no such service: nope/);
});

t.test('up decides per container: create, recreate, start, keep; orphans', async (t) => {
  const labels = { [LABELS.configHash]: 'h1', [LABELS.service]: 'web', [LABELS.oneoff]: 'False' };
  const c = { id: 'i', name: 'p-web-1', labels, imageId: 'img', running: true };
  const d = { service: 'web', configHash: 'h1', imageId: 'img' };
  t.equal(decide(d, undefined), 'create');
  t.equal(decide(d, c), 'keep');
  t.equal(decide(d, { ...c, running: false }), 'start');
  t.equal(decide({ ...d, configHash: 'h2' }, c), 'recreate');
  t.equal(decide({ ...d, imageId: 'new' }, c), 'recreate', 'a rebuilt or pulled image');
  t.equal(decide(d, c, { forceRecreate: true }), 'recreate');
  t.equal(decide({ ...d, configHash: 'h2' }, c, { noRecreate: true }), 'keep');
  const one = { ...c, labels: { ...labels, [LABELS.oneoff]: 'True', [LABELS.service]: 'gone' } };
  t.same(orphans([c, { ...c, labels: { ...labels, [LABELS.service]: 'gone' } }, one], ['web']).length, 1);
});

t.test('replicas: deploy.replicas, scale and --scale; numbered containers with one config hash; what --scale refuses', async (t) => {
  const p = load({
    '/p/compose.yaml': [
      'services:',
      '  web: {image: x, deploy: {replicas: 3}, ports: ["80"]}',
      '  job: {image: x, scale: "0"}',
      '  one: {image: x, ports: ["8080:80"], container_name: the-one}',
      '  db: {image: x, networks: {back: {ipv4_address: 10.9.0.5}}}',
      'networks:',
      '  back: {ipam: {config: [{subnet: 10.9.0.0/24}]}}',
    ].join('\n'),
    '/p/override.yaml': 'services:\n  web: {scale: 2}\n',
  });
  t.same([serviceScale(p.services.web!), serviceScale(p.services.job!), serviceScale(p.services.one!)], [2, 0, 1], 'a later file\'s scale over deploy.replicas; 1 by default');
  t.match(projectYaml(p), /\n {2}web:\n(?: {4}.*\n)*? {4}deploy:\n {6}replicas: 2\n/, 'config prints the number as deploy.replicas');
  const ctx = { readFile: () => '', lookup: () => undefined, version: 'test' };
  const [a, b] = [planContainer(p, 'web', ctx, 1), planContainer(p, 'web', ctx, 2)];
  t.same([a.name, b.name], ['p-web-1', 'p-web-2']);
  t.ok(b.flags.labels.includes(`${LABELS.number}=2`), 'numbered');
  t.equal(a.configHash, b.configHash, 'one hash for all the service\'s containers');
  t.same(b.overrides.networks, [{ network: 'p_default', aliases: ['web'] }], 'each answers to the service name on its networks');
  applyScale(p, ['web=5', 'job=1']);
  t.same([serviceScale(p.services.web!), serviceScale(p.services.job!)], [5, 1]);
  t.throws(() => applyScale(p, ['one=2']), /^--scale one=2: compose\.yaml, override\.yaml: \/services\/one\/container_name: can't set container_name "the-one": the service has 2 containers/);
  delete p.services.one!.containerName;
  t.throws(() => applyScale(p, ['one=2']), /--scale one=2: .*\/services\/one\/ports\/0: the host port 8080 can be published by one container only/);
  t.throws(() => applyScale(p, ['db=2']), /--scale db=2: .*\/services\/db\/networks\/back\/ipv4_address: the address 10\.9\.0\.5 is one container's/);
  t.throws(() => applyScale(p, ['nope=2']), /^--scale nope=2: no such service: nope$/);
  t.throws(() => applyScale(p, ['web=-1']), /^invalid --scale option "web=-1": should be SERVICE=NUM$/);
  t.throws(() => applyScale(p, ['web']), /^invalid --scale option "web"/);
  t.throws(() => applyScale(p, ['web']), /^invalid --scale option "web"/);
  t.throws(() => applyScale(p, ['x'], 'scale'), /^invalid scale option "x"/);
});

t.test('converge: keep the lowest numbers, remove the outdated and the highest, number new ones on', async (t) => {
  const d = { service: 'web', configHash: 'h1', imageId: 'img' };
  const c = (n: number, hash = 'h1', running = true): ExistingContainer => ({ id: `id${n}`, name: `p-web-${n}`, labels: { [LABELS.configHash]: hash, [LABELS.number]: String(n) }, imageId: 'img', running });
  const summary = (r: ReturnType<typeof converge>) => ({ kept: r.kept.map((k) => `${k.container.name}:${k.action}`), removed: r.removed.map((x) => x.name), created: r.created });
  t.same(summary(converge(d, [], 3)), { kept: [], removed: [], created: [1, 2, 3] }, 'from nothing');
  t.same(summary(converge(d, [c(1), c(2)], 3)), { kept: ['p-web-1:keep', 'p-web-2:keep'], removed: [], created: [3] }, 'scale up');
  t.same(summary(converge(d, [c(3), c(1), c(2)], 1)), { kept: ['p-web-1:keep'], removed: ['p-web-2', 'p-web-3'], created: [] }, 'scale down: the highest go');
  t.same(summary(converge(d, [c(1, 'old'), c(2), c(3)], 2)), { kept: ['p-web-2:keep', 'p-web-3:keep'], removed: ['p-web-1'], created: [] }, 'the outdated go first');
  t.same(summary(converge(d, [c(1, 'old'), c(2, 'h1', false)], 2)), { kept: ['p-web-1:recreate', 'p-web-2:start'], removed: [], created: [] });
  t.same(summary(converge(d, [c(2), c(5)], 4)), { kept: ['p-web-2:keep', 'p-web-5:keep'], removed: [], created: [6, 7] }, 'numbered on from the highest, as compose');
  t.same(summary(converge(d, [c(1), c(2)], 0)), { kept: [], removed: ['p-web-1', 'p-web-2'], created: [] }, 'scale 0');
});

t.test('--abort-on-container-exit and --exit-code-from: who stops the others, and up\'s status', async (t) => {
  const run = (c: ExitCascade, exits: Array<[string, number]>) => ({ triggers: exits.map(([s, code]) => c.ended(s, code)), status: c.status });
  t.same(run(new ExitCascade(undefined), [['a', 3]]), { triggers: [false], status: 0 }, 'without: nothing stops, status 0');
  t.same(run(new ExitCascade('exit'), [['job', 3], ['web', 143], ['job', 0]]), { triggers: [true, false, false], status: 3 }, 'the first to end stops the rest; its status');
  t.same(run(new ExitCascade('exit', 'web'), [['job', 0], ['web', 143], ['web', 137]]), { triggers: [true, false, false], status: 143 }, '--exit-code-from: the first of that service to end, even when stopped');
  t.same(run(new ExitCascade('exit', 'web'), [['web', 5], ['job', 143]]), { triggers: [true, false], status: 5 });
  t.same(run(new ExitCascade('failure'), [['job', 0], ['web', 2], ['db', 143]]), { triggers: [false, true, false], status: 2 }, 'failure: only a non-zero exit stops the rest');
  t.same(run(new ExitCascade('failure'), [['job', 0]]), { triggers: [false], status: 0 });
  t.same(run(new ExitCascade('exit', undefined, ['web']), [['db', 1], ['web', 4]]), { triggers: [false, true], status: 4 }, 'up web: only web\'s containers count, as compose watches the services named');
});

t.test('build: platforms and ssh as poc build takes them', async (t) => {
  const p = load({
    '/p/compose.yaml': [
      'services:',
      '  a:',
      '    platform: linux/${ARCH}',
      '    build: {context: ., platforms: ["linux/${ARCH}"], ssh: [default, "keys=./id_a,/abs/id_b"]}',
      '  b:',
      '    build:',
      '      context: .',
      '      ssh: {default: null, other: ../sock}',
    ].join('\n'),
  }, { env: { ARCH: process.arch === 'arm64' ? 'arm64' : 'amd64' } });
  t.same(p.services.a!.build!.ssh, ['default', 'keys=/p/id_a,/abs/id_b'], 'relative paths are the project directory\'s');
  t.same(p.services.a!.build!.platforms, [`linux/${process.arch === 'arm64' ? 'arm64' : 'amd64'}`]);
  t.same(p.services.b!.build!.ssh, ['default', 'other=/sock']);
  t.equal(p.services.b!.build!.platforms, undefined);
  const again = load({ '/p/compose.yaml': projectYaml(p) });
  t.same([again.services.a!.build, again.services.a!.platform, again.services.b!.build], [p.services.a!.build, p.services.a!.platform, p.services.b!.build], 'config prints them as they load again');
});
