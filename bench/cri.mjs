#!/usr/bin/env node
// Pod start latency and teardown through containerd's CRI, with the pocrun handler against the runc handler in one
// run (one private containerd, test/helpers/cri.ts, the handlers alternating which goes first). Prints medians and
// the ratios pocrun/runc, and writes them to bench/results/cri-<date>.txt (or --out FILE).
//
// usage: node bench/cri.mjs [--reps N] [--out FILE]
//
// start: RunPodSandbox, then CreateContainer and StartContainer (busybox `sleep`), until ContainerStatus says
// RUNNING; with each part on its own. teardown: StopPodSandbox (the container is killed with it), then
// RemovePodSandbox, as kubelet removes a pod.
import { register } from 'tsx/esm/api';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

register();
const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const { BUSYBOX_IMAGE, startContainerd } = await import('../test/helpers/cri.ts');

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || 20;
const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : join(top, 'bench/results', `cri-${new Date().toISOString().slice(0, 10)}.txt`);
const HANDLERS = ['runc', 'pocrun'];

const h = await startContainerd(join(top, 'dist/pocrun'));
const ms = () => Number(process.hrtime.bigint()) / 1e6;
let n = 0;

/** One pod, timed: its parts of start, and its teardown. */
async function onePod(handler) {
  const name = `bench-${handler}-${n++}`;
  const config = {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench' },
    hostname: name,
    log_directory: join(h.logDir, name),
    linux: { cgroup_parent: `${h.cgroupParent}/${name}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const t0 = ms();
  const { pod_sandbox_id } = await h.cri.call('RunPodSandbox', { config, runtime_handler: handler });
  const t1 = ms();
  const { container_id } = await h.cri.call('CreateContainer', {
    pod_sandbox_id, sandbox_config: config,
    config: { metadata: { name: 'app' }, image: { image: BUSYBOX_IMAGE }, command: ['sleep', '1000'], log_path: 'app.log' },
  });
  const t2 = ms();
  await h.cri.call('StartContainer', { container_id });
  while ((await h.cri.call('ContainerStatus', { container_id })).status.state !== 'CONTAINER_RUNNING');
  const t3 = ms();
  await h.cri.call('StopPodSandbox', { pod_sandbox_id });
  await h.cri.call('RemovePodSandbox', { pod_sandbox_id });
  const t4 = ms();
  return { sandbox: t1 - t0, create: t2 - t1, start: t3 - t2, total: t3 - t0, teardown: t4 - t3 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const samples = { runc: [], pocrun: [] };
try {
  for (const handler of HANDLERS) await onePod(handler); // warm-up: images unpacked, caches filled
  for (let i = 0; i < reps; i++) {
    const order = i % 2 ? HANDLERS : [...HANDLERS].reverse();
    for (const handler of order) samples[handler].push(await onePod(handler));
  }
} finally {
  const left = await h.stop();
  if (left.processes.length || left.mounts.length || left.cgroups.length) console.error(`left behind: ${JSON.stringify(left)}`);
}

const metrics = [
  ['pod start (RunPodSandbox + CreateContainer + StartContainer, until RUNNING)', 'total'],
  ['  RunPodSandbox', 'sandbox'],
  ['  CreateContainer', 'create'],
  ['  StartContainer until RUNNING', 'start'],
  ['pod teardown (StopPodSandbox + RemovePodSandbox)', 'teardown'],
];
const lines = [
  `CRI pod latency, containerd ${(await import('node:child_process')).execFileSync('containerd', ['--version']).toString().split(' ')[2]}, ${reps} pods per handler (alternating), medians in ms`,
  '',
  '| metric | pocrun | runc | pocrun/runc |',
  '|---|---:|---:|---:|',
];
for (const [label, key] of metrics) {
  const p = median(samples.pocrun.map((s) => s[key]));
  const r = median(samples.runc.map((s) => s[key]));
  lines.push(`| ${label} | ${p.toFixed(1)} | ${r.toFixed(1)} | ${(p / r).toFixed(2)} |`);
}
const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, text);
process.exit(0);
