import t from 'tap';
import {
  defaultRoot, firstResourceField, isPermissionError, outsideId, ownerName, parseRootlessFlag, rootlessMode, uidMapIsUserNs,
} from '../../src/runtime/rootless.js';
import { idMapMethod, ownMaps } from '../../src/runtime/userns.js';
import { defaultSpec, rootlessSpec } from '../../src/spec/default.js';
import { compileExecPlan } from '../../src/plan/exec-plan.js';
import { PocrunError, wrapError } from '../../src/errors.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';
import { userBusProblem } from '../../src/common/systemd.js';

t.test('--rootless: true, false, auto and the spellings Go accepts', async (t) => {
  for (const v of ['true', '1', 't', 'TRUE', 'True']) t.equal(parseRootlessFlag(v), true, v);
  for (const v of ['false', '0', 'f', 'FALSE', 'False']) t.equal(parseRootlessFlag(v), false, v);
  t.equal(parseRootlessFlag(undefined), 'auto');
  t.equal(parseRootlessFlag('auto'), 'auto');
  t.throws(() => parseRootlessFlag('yes'), /invalid --rootless "yes": use true, false or auto/);
});

t.test('auto is rootless for a user, and for root in a user namespace (runc shouldUseRootlessCgroupManager)', async (t) => {
  const never = () => t.fail('the user namespace is read only for root') as never;
  t.equal(rootlessMode('auto', 1000, never), true);
  t.equal(rootlessMode('auto', 0, () => false), false);
  t.equal(rootlessMode('auto', 0, () => true), true);
  t.equal(rootlessMode(false, 1000, never), false);
  t.equal(rootlessMode(true, 0, never), true);
});

t.test('the default root: $XDG_RUNTIME_DIR/pocrun for a user, /run/pocrun for root', async (t) => {
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, () => false), '/run/user/1000/pocrun');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1000/' }, 1000, () => false), '/run/user/1000/pocrun');
  t.equal(defaultRoot({}, 1000, () => false), '/run/pocrun', 'no XDG_RUNTIME_DIR: as runc');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/0' }, 0, () => false), '/run/pocrun');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1000', USER: 'me' }, 0, () => true), '/run/user/1000/pocrun', 'root in a user namespace');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/0', USER: 'root' }, 0, () => true), '/run/pocrun');
});

t.test('uid_map: the initial namespace is the identity map alone', async (t) => {
  t.equal(uidMapIsUserNs('         0          0 4294967295\n'), false);
  t.equal(uidMapIsUserNs('         0       1000          1\n'), true);
  t.equal(uidMapIsUserNs('0 0 1000\n1000 1000 4294966295\n'), true);
});

t.test('the first resource asked for, as a JSON pointer; device rules are not one', async (t) => {
  t.equal(firstResourceField(undefined), undefined);
  t.equal(firstResourceField({}), undefined);
  t.equal(firstResourceField({ devices: [{ allow: false, access: 'rwm' }] }), undefined);
  t.equal(firstResourceField({ memory: {} }), undefined);
  t.equal(firstResourceField({ memory: { limit: 1 } }), '/linux/resources/memory/limit');
  t.equal(firstResourceField({ devices: [], cpu: { shares: 0 } }), '/linux/resources/cpu/shares');
  t.equal(firstResourceField({ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }), '/linux/resources/hugepageLimits');
  t.equal(firstResourceField({ unified: { 'memory.max': '1' } }), '/linux/resources/unified/memory.max');
  t.equal(firstResourceField({ unified: { 'a/b': '1' } }), '/linux/resources/unified/a~1b');
});

t.test('permission errors are found through the causes that wrap them', async (t) => {
  const eacces = Object.assign(new Error('x'), { code: 'EACCES' });
  t.ok(isPermissionError(wrapError('cgroup', eacces)));
  t.ok(isPermissionError(new PocrunError('a', 1, { cause: wrapError('b', Object.assign(new Error(), { code: 'EROFS' })) })));
  t.notOk(isPermissionError(wrapError('cgroup', Object.assign(new Error('x'), { code: 'ENOENT' }))));
  t.notOk(isPermissionError(new PocrunError('plain')));
});

t.test('id maps: root and the one-id map of the caller are written directly, the rest by newuidmap', async (t) => {
  const own = [{ containerID: 0, hostID: 1000, size: 1 }];
  t.equal(idMapMethod(own, 1000, false), 'direct');
  t.equal(idMapMethod(own, 1001, false), 'helper', 'someone else\'s id');
  t.equal(idMapMethod([{ containerID: 0, hostID: 1000, size: 2 }], 1000, false), 'helper');
  t.equal(idMapMethod([...own, { containerID: 1, hostID: 100000, size: 65536 }], 1000, false), 'helper');
  t.equal(idMapMethod([{ containerID: 0, hostID: 100000, size: 65536 }], 0, true), 'direct', 'root');
});

t.test('--own-maps: the helper writes its maps itself only when each is the user\'s own id', async (t) => {
  const spec = rootlessSpec(defaultSpec(), 1000, 1001);
  t.same(ownMaps(spec, 1000, 1001), ['0 1000 1\n', '0 1001 1\n'], 'runc\'s rootless spec');
  t.equal(ownMaps(spec, 1000, 1002), undefined, 'another gid: newgidmap');
  t.equal(ownMaps({ ...spec, linux: { ...spec.linux, uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }] } }, 1000, 1001), undefined, 'subordinate ids: newuidmap');
  t.equal(ownMaps({ ...spec, linux: { ...spec.linux, gidMappings: undefined } }, 1000, 1001), undefined, 'no gid map');
  t.equal(ownMaps(spec, 0, 0), undefined, 'root writes from outside, at its sync point');
});

t.test('spec --rootless: runc specconv.ToRootless applied to the default spec', async (t) => {
  const base = defaultSpec();
  const s = rootlessSpec(base, 1000, 1001);
  t.same(s.linux!.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  t.same(s.linux!.gidMappings, [{ containerID: 0, hostID: 1001, size: 1 }]);
  t.same(s.linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'cgroup', 'user']);
  t.same(s.mounts!.find((m) => m.destination === '/sys'), { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  t.same(s.mounts!.find((m) => m.destination === '/dev/pts')!.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'], 'gid=5 goes');
  t.equal(s.linux!.resources, undefined);
  t.equal(JSON.stringify(s).includes('"resources"'), false, 'written without resources');
  t.same(base, defaultSpec(), 'the default spec is not changed');
});

t.test("the state's owner: the name in /etc/passwd, or #UID", async (t) => {
  const passwd = () => 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n';
  t.equal(ownerName(1000, passwd), 'alice');
  t.equal(ownerName(0, passwd), 'root');
  t.equal(ownerName(4242, passwd), '#4242');
  t.equal(ownerName(7, () => { throw new Error('no file'); }), '#7');
});

t.test('exec: a rootless caller joins the user namespace first; root after the others', async (t) => {
  const ns: [string, string][] = [['net', '/n'], ['user', '/u'], ['mnt', '/m'], ['ipc', '/i']];
  const order = (userNamespaceFirst: boolean) =>
    compileExecPlan(defaultSpec(), { cwd: '/', args: ['true'], user: { uid: 0, gid: 0 } }, {
      namespaces: ns, preserveFds: 0, mode: 'wait', userNamespaceFirst, host: PLAIN_HOST,
    }).filter((s) => s[0] === 'setns').map((s) => s[2]);
  t.same(order(true), ['user', 'ipc', 'net', 'mnt']);
  t.same(order(false), ['ipc', 'net', 'user', 'mnt']);
});

t.test("an id as the parent user namespace sees it (a rootless runtime in podman's or poc's asks the user's systemd)", async (t) => {
  const map = '         0       1001          1\n         1     100000      65536\n';
  t.equal(outsideId(map, 0), 1001, 'root is the user');
  t.equal(outsideId(map, 1000), 100999, 'then the range');
  t.equal(outsideId(map, 65537), undefined, 'unmapped');
  t.equal(outsideId('0 0 4294967295', 1001), 1001, 'the initial namespace: itself');
});

t.test("the user's bus, by rootless podman's rule: the address's unix:path= socket, else $XDG_RUNTIME_DIR/bus", async (t) => {
  const have = new Set(['/run/user/1000/bus', '/tmp/my bus']);
  const exists = (p: string) => have.has(p);
  const cases: Array<[NodeJS.ProcessEnv, string | undefined]> = [
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus' }, undefined],
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus,guid=0123abcd' }, undefined],
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/tmp/my%20bus' }, undefined],
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus', XDG_RUNTIME_DIR: '/run/user/1000' }, 'DBUS_SESSION_BUS_ADDRESS names /nonexistent/bus, which does not exist'],
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/gone;unix:path=/run/user/1000/bus' }, undefined],
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/gone;unix:path=/gone2' }, 'DBUS_SESSION_BUS_ADDRESS names /gone, /gone2, none of which exists'],
    // What cannot be checked without connecting is taken on trust, as podman takes it.
    [{ DBUS_SESSION_BUS_ADDRESS: 'unix:abstract=/tmp/dbus-x' }, undefined],
    [{ DBUS_SESSION_BUS_ADDRESS: 'tcp:host=localhost,port=1' }, undefined],
    // Empty is unset: then the runtime directory's bus.
    [{ DBUS_SESSION_BUS_ADDRESS: '', XDG_RUNTIME_DIR: '/run/user/1000' }, undefined],
    [{ XDG_RUNTIME_DIR: '/run/user/1001' }, 'no /run/user/1001/bus'],
    [{}, 'XDG_RUNTIME_DIR is not set'],
  ];
  for (const [env, want] of cases) t.equal(userBusProblem(env, exists), want, JSON.stringify(env));
});
