/**
 * Kubernetes pods through containerd's CRI plugin, driven as kubelet drives them, with two runtime handlers:
 * `runc` and `pocrun` (a containerd runtime of type io.containerd.runc.v2 whose BinaryName is the runtime under
 * test: POC_CONFORMANCE_RUNTIME, dist/pocrun by default). Every scenario runs with both handlers; what each
 * observed is compared at the end, and pocrun must match runc.
 *
 * The containerd is private (test/helpers/cri.ts): its own root, state, sockets and config under a temporary
 * directory, offline images, the CNI bridge in a network namespace of its own. Pods' cgroups are under
 * /pocrun-cri-<pid> (cgroupfs); where systemd is PID 1 (the cgroup v2 test guest) the handlers use systemd's
 * cgroup driver (SystemdCgroup = true, the runtime's --systemd-cgroup) and the pods are slices under
 * pocruncri<pid>.slice, as on a Kubernetes node with systemd.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME, hostCgroupDir, mountsUnder } from '../test/helpers/engines.js';
import {
  BUSYBOX_IMAGE, HANDLERS, daemonsOf, missingTools, poll, startContainerd, streamExec, type Handler, type PrivateContainerd,
} from '../test/helpers/cri.js';

const missing = missingTools();
const ready = missing.length === 0 && process.getuid?.() === 0;
let h: PrivateContainerd;
/** What each handler saw, scenario by scenario: compared at the end. */
const seen: Record<Handler, Record<string, unknown>> = { runc: {}, pocrun: {} };
let uid = 0;

interface Pod {
  id: string;
  config: Record<string, unknown>;
  handler: Handler;
}

const MiB = 1024 * 1024;
/** A pure cgroup v2 host (the test guest). */
const V2 = existsSync('/sys/fs/cgroup/cgroup.controllers');

async function runPod(handler: Handler, name: string, pid: 'POD' | 'CONTAINER' = 'CONTAINER'): Promise<Pod> {
  const podName = `${name}-${handler}`;
  const config = {
    metadata: { name: podName, uid: `uid-${process.pid}-${uid++}`, namespace: 'cri-test' },
    hostname: podName,
    log_directory: join(h.logDir, podName),
    linux: {
      cgroup_parent: h.podCgroupParent(podName),
      security_context: { namespace_options: { network: 'POD', pid, ipc: 'POD' } },
    },
  };
  const { pod_sandbox_id } = await h.cri.call('RunPodSandbox', { config, runtime_handler: handler });
  return { id: pod_sandbox_id, config, handler };
}

async function createContainer(pod: Pod, name: string, command: string[], linux: Record<string, unknown> = {}): Promise<string> {
  const pid = ((pod.config.linux as { security_context: { namespace_options: { pid: string } } }).security_context.namespace_options.pid);
  const config = {
    metadata: { name },
    image: { image: BUSYBOX_IMAGE },
    command,
    log_path: `${name}.log`,
    linux: { ...linux, security_context: { namespace_options: { network: 'POD', pid, ipc: 'POD' } } },
  };
  const { container_id } = await h.cri.call('CreateContainer', { pod_sandbox_id: pod.id, config, sandbox_config: pod.config });
  return container_id;
}

async function startContainer(pod: Pod, name: string, command: string[], linux: Record<string, unknown> = {}): Promise<string> {
  const id = await createContainer(pod, name, command, linux);
  await h.cri.call('StartContainer', { container_id: id });
  return id;
}

async function status(id: string): Promise<{ state: string; exit_code: number; reason: string; log_path: string; pid: number }> {
  const r = await h.cri.call('ContainerStatus', { container_id: id, verbose: true });
  const info = r.info?.info ? JSON.parse(r.info.info) : {};
  return { ...r.status, pid: info.pid ?? 0 };
}

async function waitState(id: string, state: string, timeoutMs = 30_000) {
  return poll(`container ${id.slice(0, 12)} to be ${state}`, async () => {
    const s = await status(id);
    return s.state === state ? s : undefined;
  }, timeoutMs);
}

/** The sandbox's (pause) pid on the host. */
async function sandboxPid(pod: Pod): Promise<number> {
  const r = await h.cri.call('PodSandboxStatus', { pod_sandbox_id: pod.id, verbose: true });
  return JSON.parse(r.info.info).pid;
}

async function execSync(id: string, cmd: string[]) {
  const r = await h.cri.call('ExecSync', { container_id: id, cmd, timeout: 30 });
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exit_code: r.exit_code };
}

/** The namespace a process is in, as /proc/<pid>/ns/<type> names it ("net:[4026532...]"). */
function nsLink(pid: number, type: string): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/${type}`);
  } catch {
    return '';
  }
}

async function removePod(pod: Pod): Promise<void> {
  await h.cri.call('StopPodSandbox', { pod_sandbox_id: pod.id });
  await h.cri.call('RemovePodSandbox', { pod_sandbox_id: pod.id });
}

/** Container state directories the handler's runtime still keeps. */
function runtimeState(handler: Handler): string[] {
  const root = h.handlerRoot[handler];
  return existsSync(root) ? readdirSync(root).filter((name) => !name.startsWith('.')) : [];
}

function record(t: Test, handler: Handler, scenario: string, value: unknown): void {
  seen[handler][scenario] = value;
  t.comment(`${handler} ${scenario}: ${JSON.stringify(value)}`);
}

t.before(async () => {
  if (ready) h = await startContainerd(RUNTIME);
});

t.test('engine, CNI plugins and runtime', async (t) => {
  t.same(missing, [], 'containerd, its runc shim, ctr, umoci, runc, catatonit and the CNI plugins are installed (scripts/setup.sh)');
  t.equal(process.getuid?.(), 0, 'root');
  if (!ready) return;
  const v = await h.cri.call('Version', {});
  t.comment(`CRI: ${v.runtime_name} ${v.runtime_version} (API ${v.runtime_api_version}); pocrun handler: ${RUNTIME}; cgroups: ${V2 ? 'v2' : 'v1'}, ${h.systemdCgroup ? "systemd's driver (SystemdCgroup = true)" : 'cgroupfs'}`);
  t.equal(v.runtime_api_version, 'v1');
});

for (const handler of HANDLERS) {
  t.test(`handler ${handler}`, { skip: !ready }, async (t) => {
    t.test('two containers share the pod network namespace', async (t) => {
      const pod = await runPod(handler, 'net');
      const web = await startContainer(pod, 'web', ['sh', '-c', 'echo served > /tmp/index.html && exec httpd -f -p 8080 -h /tmp']);
      const client = await startContainer(pod, 'client', ['sleep', '1000']);
      const [webStatus, clientStatus] = [await waitState(web, 'CONTAINER_RUNNING'), await waitState(client, 'CONTAINER_RUNNING')];
      const pause = await sandboxPid(pod);
      const nets = [pause, webStatus.pid, clientStatus.pid].map((pid) => nsLink(pid, 'net'));
      t.ok(nets[0] && nets.every((n) => n === nets[0]), `one network namespace: ${nets.join(' ')}`);
      t.not(nsLink(pause, 'net'), nsLink(process.pid, 'net'), "not the host's");
      const fetched = await poll('the web server to answer', async () => {
        const r = await execSync(client, ['wget', '-qO-', 'http://127.0.0.1:8080/index.html']);
        return r.exit_code === 0 ? r.stdout : undefined;
      });
      t.equal(fetched, 'served\n', 'the client reaches the web container on localhost');
      const ip = (await h.cri.call('PodSandboxStatus', { pod_sandbox_id: pod.id })).status.network.ip;
      t.match(ip, /^10\.99\.0\.\d+$/, 'the pod has an address from the CNI bridge');
      const addr = await execSync(client, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
      t.match(addr.stdout, ` ${ip}/24 `, 'eth0 in the container has it');
      record(t, handler, 'shared network', { sameNetns: nets.every((n) => n === nets[0]), fetched, eth0HasPodIp: addr.stdout.includes(` ${ip}/24 `) });
      await removePod(pod);
    });

    t.test('a pod with a shared pid namespace', async (t) => {
      const pod = await runPod(handler, 'pid', 'POD');
      const a = await startContainer(pod, 'a', ['sleep', '1001']);
      const b = await startContainer(pod, 'b', ['sleep', '1002']);
      const [sa, sb] = [await waitState(a, 'CONTAINER_RUNNING'), await waitState(b, 'CONTAINER_RUNNING')];
      const pause = await sandboxPid(pod);
      const pids = [pause, sa.pid, sb.pid].map((pid) => nsLink(pid, 'pid'));
      t.ok(pids[0] && pids.every((p) => p === pids[0]), `one pid namespace: ${pids.join(' ')}`);
      const pid1 = (await execSync(a, ['cat', '/proc/1/cmdline'])).stdout;
      t.equal(pid1, '/catatonit\0-P\0', "pid 1 is the sandbox's (catatonit -P)");
      const ps = (await execSync(a, ['ps', '-o', 'args'])).stdout;
      t.match(ps, /sleep 1002/, "a sees b's process");
      // The init of c exits and leaves a child in the pod's pid namespace: the shim kills what is left in c's
      // cgroup (kill --all of the stopped container), as it does for every container without its own pid
      // namespace.
      const c = await startContainer(pod, 'c', ['sh', '-c', 'sleep 1003 & exit 5']);
      const sc = await waitState(c, 'CONTAINER_EXITED');
      t.equal(sc.exit_code, 5, "c's exit code");
      const orphan = await poll("c's leftover process to be killed", async () => {
        const out = (await execSync(a, ['ps', '-o', 'args'])).stdout;
        return out.includes('sleep 1003') ? undefined : out;
      }, 15_000).then(() => false, () => true);
      t.notOk(orphan, "c's leftover process was killed with it");
      record(t, handler, 'shared pid', { samePidns: pids.every((p) => p === pids[0]), pid1, seesOther: /sleep 1002/.test(ps), cExit: sc.exit_code, orphanLeft: orphan });
      await removePod(pod);
    });

    t.test('exec: ExecSync and streaming Exec (WebSocket)', async (t) => {
      const pod = await runPod(handler, 'exec');
      const id = await startContainer(pod, 'sh', ['sleep', '1000']);
      await waitState(id, 'CONTAINER_RUNNING');
      const sync = await execSync(id, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
      t.same(sync, { stdout: 'out\n', stderr: 'err\n', exit_code: 3 }, 'ExecSync: both streams and the exit code');
      const ok = await execSync(id, ['sh', '-c', 'cat /proc/1/cmdline; echo; id -u']);
      t.same(ok, { stdout: 'sleep\u00001000\u0000\n0\n', stderr: '', exit_code: 0 }, "ExecSync runs in the container's pid namespace as root");
      const { url } = await h.cri.call('Exec', { container_id: id, cmd: ['sh', '-c', 'echo streamed; echo oops >&2; exit 4'], stdout: true, stderr: true });
      t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//, 'Exec returns the streaming URL');
      const streamed = streamExec(h, url);
      t.equal(streamed.stdout, 'streamed\n');
      t.equal(streamed.stderr, 'oops\n');
      t.equal(streamed.status.status, 'Failure');
      t.same(streamed.status.details?.causes, [{ reason: 'ExitCode', message: '4' }], 'the exit code on the status channel');
      const { url: url2 } = await h.cri.call('Exec', { container_id: id, cmd: ['true'], stdout: true, stderr: true });
      t.equal(streamExec(h, url2).status.status, 'Success');
      record(t, handler, 'exec', { sync, ok, streamed: { stdout: streamed.stdout, stderr: streamed.stderr, causes: streamed.status.details?.causes } });
      await removePod(pod);
    });

    t.test('logs: the CRI log file', async (t) => {
      const pod = await runPod(handler, 'logs');
      const id = await startContainer(pod, 'talk', ['sh', '-c', 'echo line one; echo line two >&2; exec sleep 1000']);
      const s = await waitState(id, 'CONTAINER_RUNNING');
      t.equal(s.log_path, join(h.logDir, `logs-${handler}`, 'talk.log'), 'log_directory/log_path');
      const text = await poll('both lines in the log', async () => {
        const text = existsSync(s.log_path) ? readFileSync(s.log_path, 'utf8') : '';
        return text.split('\n').filter(Boolean).length >= 2 ? text : undefined;
      });
      const lines = text.trim().split('\n').map((l) => l.replace(/^\S+ /, ''));
      t.same(lines.sort(), ['stderr F line two', 'stdout F line one'], 'time, stream, F, text');
      t.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) /, 'an RFC 3339 time first');
      record(t, handler, 'logs', lines.sort());
      await removePod(pod);
    });

    t.test('resources and UpdateContainerResources', async (t) => {
      const pod = await runPod(handler, 'res');
      const id = await startContainer(pod, 'limited', ['sleep', '1000'], {
        resources: { memory_limit_in_bytes: 64 * MiB, cpu_period: 100000, cpu_quota: 50000, cpu_shares: 512 },
      });
      const s = await waitState(id, 'CONTAINER_RUNNING');
      const read = (controller: string, file: string) => readFileSync(join(hostCgroupDir(s.pid, controller), file), 'utf8').trim();
      // cgroup v1: the limit, the quota and the shares; v2: memory.max and cpu.max. (cpu.weight is left out on
      // v2: runc 1.1 and pocrun convert shares with different formulas, 1.1's and runc 1.3's.)
      const files = () => (V2
        ? { memory: Number(read('memory', 'memory.max')), quota: Number(read('cpu', 'cpu.max').split(' ')[0]) }
        : { memory: Number(read('memory', 'memory.limit_in_bytes')), quota: Number(read('cpu', 'cpu.cfs_quota_us')), shares: Number(read('cpu', 'cpu.shares')) });
      t.match(hostCgroupDir(s.pid, 'memory'), `${h.podCgroupDir(`res-${handler}`)}/`, "the container's cgroup is under the pod's");
      const before = files();
      t.same(before, { memory: 64 * MiB, quota: 50000, ...(V2 ? {} : { shares: 512 }) }, 'the limits on the host');
      await h.cri.call('UpdateContainerResources', {
        container_id: id, linux: { memory_limit_in_bytes: 128 * MiB, cpu_period: 100000, cpu_quota: 25000, cpu_shares: 256 },
      });
      const after = files();
      t.same(after, { memory: 128 * MiB, quota: 25000, ...(V2 ? {} : { shares: 256 }) }, 'updated in place');
      t.equal((await status(id)).state, 'CONTAINER_RUNNING', 'still running');
      record(t, handler, 'resources', { before, after });
      await removePod(pod);
    });

    t.test('a container that exits by itself is seen exited, with its code', async (t) => {
      const pod = await runPod(handler, 'exit');
      const failing = await startContainer(pod, 'failing', ['sh', '-c', 'exit 7']);
      const done = await startContainer(pod, 'done', ['true']);
      const [f, d] = [await waitState(failing, 'CONTAINER_EXITED'), await waitState(done, 'CONTAINER_EXITED')];
      t.equal(f.exit_code, 7);
      t.equal(f.reason, 'Error');
      t.equal(d.exit_code, 0);
      t.equal(d.reason, 'Completed');
      t.same(runtimeState(handler).filter((n) => n === failing || n === done), [], "the runtime's state of both is gone (the shim deleted them)");
      await h.cri.call('RemoveContainer', { container_id: failing });
      await t.rejects(h.cri.call('ContainerStatus', { container_id: failing }), /not found|does not exist/, 'RemoveContainer removed it');
      record(t, handler, 'exit by itself', { failing: [f.exit_code, f.reason], done: [d.exit_code, d.reason] });
      await removePod(pod);
    });

    t.test('graceful stop, and stop past the timeout (137)', async (t) => {
      const pod = await runPod(handler, 'stop');
      const graceful = await startContainer(pod, 'graceful', ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']);
      const stubborn = await startContainer(pod, 'stubborn', ['sleep', '1000']);
      await waitState(graceful, 'CONTAINER_RUNNING');
      await waitState(stubborn, 'CONTAINER_RUNNING');
      await h.cri.call('StopContainer', { container_id: graceful, timeout: 30 });
      const g = await status(graceful);
      t.equal(g.state, 'CONTAINER_EXITED', 'StopContainer returns once the container exited');
      t.equal(g.exit_code, 0, 'its TERM trap ran: exit 0');
      // sleep is pid 1 of its pid namespace: SIGTERM, which it does not handle, is ignored; SIGKILL follows.
      await h.cri.call('StopContainer', { container_id: stubborn, timeout: 1 });
      const s = await status(stubborn);
      t.equal(s.state, 'CONTAINER_EXITED');
      t.equal(s.exit_code, 137, 'killed after the timeout: 128 + 9');
      await h.cri.call('StopContainer', { container_id: stubborn, timeout: 1 });
      t.pass('stopping a stopped container again succeeds');
      record(t, handler, 'stop', { graceful: g.exit_code, stubborn: s.exit_code });
      await removePod(pod);
    });

    t.test('pod stop and remove, with a container running', async (t) => {
      const pod = await runPod(handler, 'teardown');
      const id = await startContainer(pod, 'running', ['sleep', '1000']);
      const s = await waitState(id, 'CONTAINER_RUNNING');
      const pause = await sandboxPid(pod);
      await h.cri.call('StopPodSandbox', { pod_sandbox_id: pod.id });
      const stopped = await status(id);
      t.equal(stopped.state, 'CONTAINER_EXITED', 'the container was stopped with the pod');
      t.equal(stopped.exit_code, 137);
      t.equal((await h.cri.call('PodSandboxStatus', { pod_sandbox_id: pod.id })).status.state, 'SANDBOX_NOTREADY');
      t.notOk(existsSync(`/proc/${pause}`) && existsSync(`/proc/${s.pid}`), 'the processes are gone');
      await h.cri.call('StopPodSandbox', { pod_sandbox_id: pod.id });
      t.pass('StopPodSandbox again succeeds');
      await h.cri.call('RemovePodSandbox', { pod_sandbox_id: pod.id });
      await t.rejects(h.cri.call('PodSandboxStatus', { pod_sandbox_id: pod.id }), /not found|does not exist/, 'the pod is gone');
      await t.rejects(h.cri.call('ContainerStatus', { container_id: id }), /not found|does not exist/, 'its container too');
      record(t, handler, 'pod teardown', { container: [stopped.state, stopped.exit_code] });
    });

    t.test('nothing left behind by this handler', async (t) => {
      t.same(runtimeState(handler), [], `no container state under the handler's --root (${h.handlerRoot[handler]})`);
      const shims = daemonsOf(h.work).filter((p) => !p.startsWith(`${h.pid} `));
      t.same(shims, [], 'no shim left');
      t.same(mountsUnder(h.work), [], 'no rootfs, shm or netns mount left');
      const netnsDir = join(h.work, 'state', 'netns');
      t.same(existsSync(netnsDir) ? readdirSync(netnsDir) : [], [], 'no pod network namespace left');
      const veths = h.inNetns('ip', ['-o', 'link', 'show', 'type', 'veth']);
      t.equal(veths.status, 0, veths.stderr);
      t.equal(veths.stdout, '', 'no veth left on the bridge');
      const ipam = join(h.work, 'cni-ipam', 'pocrun-cri');
      t.same(existsSync(ipam) ? readdirSync(ipam).filter((f) => /^\d/.test(f)) : [], [], 'no address still allocated');
    });
  });
}

t.test('pocrun matches runc, scenario by scenario', { skip: !ready }, async (t) => {
  for (const scenario of Object.keys(seen.runc)) t.same(seen.pocrun[scenario], seen.runc[scenario], scenario);
  t.equal(Object.keys(seen.pocrun).length, Object.keys(seen.runc).length, 'the same scenarios ran');
});

t.test('nothing left behind: containerd, shims, mounts, cgroups', { skip: !ready }, async (t) => {
  const work = h.work;
  const left = await h.stop();
  t.same(left, { processes: [], mounts: [], cgroups: [] });
  t.notOk(existsSync(work), 'work directory removed');
});
