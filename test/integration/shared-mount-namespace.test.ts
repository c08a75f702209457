// A config whose linux.namespaces has no "mount": the container shares the runtime's mount namespace
// (config-linux.md). pocrun runs it as runc does (chroot into the rootfs, the config's mounts made under it), but
// changes no propagation and unmounts at delete what it mounted; runc makes "/" private here and leaves its
// mounts behind. Both run inside a throwaway mount namespace (unshare -m) whose "/" is made shared first, as a
// systemd host's is: it stands for the host, so runc's changes never reach the real one.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeBundle, POCRUN, setup } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, rt, residue } = setup();

function sharedConfig(s: Spec, args: string[]): void {
  s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount');
  s.linux!.maskedPaths = [];
  s.linux!.readonlyPaths = [];
  s.root!.readonly = false;
  s.process!.args = args;
}

const inside = ['sh', '-c', 'cat /marker; ls /proc/1/ns >/dev/null && echo proc-mounted; test -c /dev/null && echo dev-null; id -u'];

/**
 * Runs a script in a fresh mount namespace whose "/" is rshared; prints the propagation of "/" before and after
 * and the mount points under the bundle, as KEY=VALUE lines.
 */
function inMountNamespace(script: string, bundle: string): Record<string, string> {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `
    mount --make-rshared /
    prop() { awk '$5 == "/" { for (i = 7; $i != "-"; i++) printf "%s ", $i; print "" }' /proc/self/mountinfo; }
    echo "before=$(prop)"
    ${script}
    echo "after=$(prop)"
    echo "left=$(awk -v b="${bundle}/" 'index($5, b) == 1 { n++ } END { print n + 0 }' /proc/self/mountinfo)"
  `], { encoding: 'utf8', timeout: 60_000 });
  const out: Record<string, string> = { status: String(r.status), stderr: r.stderr };
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = (out[line.slice(0, eq)] ?? '') + line.slice(eq + 1).trim();
    else if (line) out.output = `${out.output ?? ''}${line}\n`;
  }
  return out;
}

t.test('pocrun runs it in the rootfs, with its mounts, and leaves the mount namespace as it was', async (t) => {
  const b = makeBundle(work, (s) => sharedConfig(s, inside));
  writeFileSync(join(b.rootfs, 'marker'), 'in the rootfs\n');
  const r = inMountNamespace(`${POCRUN} --root ${rt.root} run --bundle ${b.dir} sm1; echo "rc=$?"`, b.dir);
  t.equal(r.rc, '0', r.stderr);
  t.equal(r.output, 'in the rootfs\nproc-mounted\ndev-null\n0\n', "chrooted into the rootfs, with the config's /proc and /dev");
  t.equal(r.after, r.before, `"/" keeps its propagation (${r.before})`);
  t.equal(r.left, '0', 'nothing left mounted under the bundle');
});

t.test('exec enters the same root; delete unmounts what create mounted', async (t) => {
  const b = makeBundle(work, (s) => sharedConfig(s, ['sleep', '1000']));
  writeFileSync(join(b.rootfs, 'marker'), 'exec sees the rootfs\n');
  const r = inMountNamespace(`
    ${POCRUN} --root ${rt.root} run --detach --bundle ${b.dir} sm2 </dev/null >/dev/null 2>&1
    echo "mounted=$(awk -v b="${b.dir}/" 'index($5, b) == 1 { n++ } END { print n + 0 }' /proc/self/mountinfo)"
    ${POCRUN} --root ${rt.root} exec sm2 sh -c 'cat /marker; ls /proc/1/ns >/dev/null && echo proc-mounted'
    ${POCRUN} --root ${rt.root} delete --force sm2; echo "rc=$?"
  `, b.dir);
  t.equal(r.rc, '0', r.stderr);
  t.ok(Number(r.mounted) > 0, `the config's mounts were made under the rootfs (${r.mounted})`);
  t.equal(r.output, 'exec sees the rootfs\nproc-mounted\n', 'the exec\'d process is in the container\'s root');
  t.equal(r.left, '0', 'delete unmounted them all');
  t.equal(r.after, r.before);
});

t.test('runc runs the same config with the same view, but changes "/" and leaves its mounts', async (t) => {
  const b = makeBundle(work, (s) => sharedConfig(s, inside));
  writeFileSync(join(b.rootfs, 'marker'), 'in the rootfs\n');
  const r = inMountNamespace(`runc --root ${join(work, 'runc-root')} run --bundle ${b.dir} sm3 </dev/null; echo "rc=$?"`, b.dir);
  // runc's own deletes the container's cgroup and state; only its mounts stay, in the throwaway namespace.
  t.equal(r.rc, '0', r.stderr);
  t.equal(r.output, 'in the rootfs\nproc-mounted\ndev-null\n0\n', 'what the container sees is the same with both');
  t.comment(`runc: "/" before: ${r.before}; after: ${r.after || '(private)'}; mounts left under the bundle: ${r.left}`);
  t.ok(Number(r.left) > 0, 'runc leaves its mounts behind (what pocrun avoids)');
});

t.test('what would change the host is refused, naming the field', async (t) => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['masked paths', (s) => { s.linux!.maskedPaths = ['/proc/kcore']; }, /config\.json \/linux\/maskedPaths: masking paths needs a mount namespace/],
    ['read-only paths', (s) => { s.linux!.readonlyPaths = ['/proc/sys']; }, /config\.json \/linux\/readonlyPaths: read-only paths needs a mount namespace/],
    ['a read-only root', (s) => { s.root!.readonly = true; }, /config\.json \/root\/readonly: a read-only root needs a mount namespace/],
    ['root propagation', (s) => { s.linux!.rootfsPropagation = 'private'; }, /config\.json \/linux\/rootfsPropagation: needs a mount namespace/],
  ];
  for (const [name, change] of cases) {
    const b = makeBundle(work, (s) => {
      sharedConfig(s, ['true']);
      change(s);
    });
    const r = rt.run(['run', '--bundle', b.dir, 'refused']);
    t.equal(r.status, 1, name);
    t.match(r.stderr, cases.find((c) => c[0] === name)![2], name);
  }
  // The host's own root as the rootfs: every mount would cover a host directory.
  const b = makeBundle(work, (s) => sharedConfig(s, ['true']));
  const config = JSON.parse(spawnSync('cat', [join(b.dir, 'config.json')], { encoding: 'utf8' }).stdout) as Spec;
  config.root!.path = '/';
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify(config));
  const r = rt.run(['run', '--bundle', b.dir, 'hostroot']);
  t.equal(r.status, 1);
  t.match(r.stderr, /config\.json \/mounts\/0: the rootfs is the host's own root/);
});

t.test('nothing left behind', async (t) => residue(t));
