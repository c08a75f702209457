/**
 * A private containerd with its CRI plugin, driven as kubelet drives it: for conformance/cri.test.ts and
 * bench/cri.mjs.
 *
 * Everything is under one temporary directory (root, state, sockets, config, CNI configuration and IP
 * allocations, pod network namespaces, pod logs), offline: the pause image holds the host's catatonit (run with
 * -P, as podman's pod infra containers run it), the busybox image the busybox rootfs, both imported with
 * `ctr -n k8s.io images import`. containerd
 * itself runs in a network namespace of its own (`unshare --net`, lo up), so the CNI bridge, the pods' veths and
 * the CRI streaming server (127.0.0.1:10010) exist only there and the host's network is untouched. Two runtime
 * handlers: `runc` (/usr/sbin/runc) and `pocrun` (the runtime under test), each with its own --root.
 *
 * CriClient speaks the CRI v1 gRPC API (test/helpers/cri/api.proto, a subset written for this repository with
 * the published field numbers) over containerd's socket, with @grpc/grpc-js and @grpc/proto-loader.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { busyboxRootfs } from './runtime.js';
import { ociImageArchive } from './oci-image.js';
import { commandExists, mountsUnder, must, processesMentioning, removeCgroupTree, sh, type Result } from './engines.js';

const here = join(import.meta.dirname, 'cri');
export const PAUSE_IMAGE = 'localhost/pause:latest';
export const BUSYBOX_IMAGE = 'localhost/busybox:latest';
export const HANDLERS = ['runc', 'pocrun'] as const;
export type Handler = (typeof HANDLERS)[number];
/** The CRI streaming server, inside containerd's network namespace. */
const STREAM_PORT = '10010';

/** What the CRI test and bench need on the machine (scripts/setup.sh installs them). */
export function missingTools(): string[] {
  const tools = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'umoci', 'runc', 'catatonit', 'unshare', 'nsenter', 'ip'];
  const missing = tools.filter((c) => !commandExists(c));
  for (const plugin of ['bridge', 'host-local', 'loopback']) if (!existsSync(join(CNI_BIN, plugin))) missing.push(`CNI ${plugin} plugin`);
  return missing;
}

/** Debian's containernetworking-plugins. */
const CNI_BIN = '/usr/lib/cni';

type Call = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/** The CRI v1 RuntimeService and ImageService over a unix socket; fields are the proto's (snake_case). */
export class CriClient {
  private readonly runtime: grpc.Client & Record<string, Call>;
  private readonly images: grpc.Client & Record<string, Call>;

  constructor(socket: string) {
    const def = protoLoader.loadSync(join(here, 'api.proto'), { keepCase: true, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      runtime: { v1: Record<string, new (address: string, creds: grpc.ChannelCredentials) => grpc.Client> };
    };
    const v1 = pkg.runtime.v1;
    this.runtime = new v1.RuntimeService!(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Call>;
    this.images = new v1.ImageService!(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Call>;
  }

  /** One RuntimeService call (ImageStatus goes to the ImageService); rejects with the gRPC error. */
  call<T = Record<string, any>>(method: string, req: object = {}, timeoutMs = 60_000): Promise<T> {
    const client = method === 'ImageStatus' ? this.images : this.runtime;
    return new Promise((resolve, reject) => {
      client[method]!.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(new Error(`CRI ${method}: ${err.details || err.message}`)) : resolve(res as T),
      );
    });
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }
}

/**
 * Whether the handlers use systemd's cgroup driver (SystemdCgroup = true, the runtime's --systemd-cgroup): where
 * systemd is PID 1 (the test guest), as a Kubernetes node with systemd runs it; POC_CRI_CGROUPFS=1 turns it off.
 */
export const SYSTEMD_CGROUP = existsSync('/run/systemd/system') && process.env.POC_CRI_CGROUPFS !== '1';

export interface PrivateContainerd {
  work: string;
  socket: string;
  pid: number;
  cri: CriClient;
  systemdCgroup: boolean;
  /**
   * The cgroup every pod's cgroup is under, one per run, relative to the cgroup root: /pocrun-cri-<pid>
   * (cgroupfs), or the slice /pocruncri<pid>.slice (systemd).
   */
  cgroupParent: string;
  /** A pod's LinuxPodSandboxConfig.cgroup_parent: a path under cgroupParent, or a slice name under its slice. */
  podCgroupParent(pod: string): string;
  /** Where that pod's cgroup is, relative to the cgroup root. */
  podCgroupDir(pod: string): string;
  /** The runtime --root each handler's shim passes (containerd's namespace k8s.io below it). */
  handlerRoot: Record<Handler, string>;
  logDir: string;
  ctr(args: string[]): Result;
  /** A command in containerd's network namespace. */
  inNetns(cmd: string, args: string[], timeoutMs?: number): Result;
  /** Stops containerd and its shims, removes what it made; returns what could not be removed. */
  stop(): Promise<Leftovers>;
}

export interface Leftovers {
  processes: string[];
  mounts: string[];
  cgroups: string[];
}

/** Polls an async check until it returns a value other than undefined. */
export async function poll<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The sandbox image's one file: catatonit, static, in pause mode (-P), as podman runs it for its pods' infra
 * containers. It holds the pod's namespaces, reaps the orphans of a shared pid namespace (it is their pid 1) and
 * exits 0 on SIGTERM or SIGINT: what kubelet's pause does.
 */
function fillPause(rootfs: string): void {
  copyFileSync(commandPath('catatonit'), join(rootfs, 'catatonit'));
  chmodSync(join(rootfs, 'catatonit'), 0o755);
}

function commandPath(name: string): string {
  return must('sh', ['-c', 'command -v "$1"', 'sh', name]).trim();
}

function configToml(w: string, pocrun: string, systemdCgroup: boolean): string {
  const handler = (name: Handler, binary: string) => `
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}.options]
        BinaryName = "${binary}"
        Root = "${join(w, `handler-${name}`)}"
        SystemdCgroup = ${systemdCgroup}`;
  return `version = 2
root = "${join(w, 'root')}"
state = "${join(w, 'state')}"

[grpc]
  address = "${join(w, 'containerd.sock')}"

[ttrpc]
  address = "${join(w, 'containerd.sock.ttrpc')}"

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # The sandbox cannot start otherwise where CAP_SYS_RESOURCE is missing (oom_score_adj below the runtime's own).
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "${STREAM_PORT}"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${join(w, 'cni')}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"${handler('runc', sh('sh', ['-c', 'command -v runc']).stdout.trim())}${handler('pocrun', pocrun)}
`;
}

/** The pod network: a bridge with host-local addresses, in containerd's network namespace only. */
function cniConfig(w: string): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: 'pocrun-cri',
    plugins: [
      {
        type: 'bridge', bridge: 'cri0', isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.99.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(w, 'cni-ipam') },
      },
    ],
  }, null, 2);
}

/** /run/containerd holds the shims' sockets (a fixed path in containerd 1.6): removed at the end if we made it. */
const runContainerdExisted = existsSync('/run/containerd');

export async function startContainerd(pocrun: string, systemdCgroup = SYSTEMD_CGROUP): Promise<PrivateContainerd> {
  const w = mkdtempSync(join(tmpdir(), 'pocrun-cri-'));
  const socket = join(w, 'containerd.sock');
  // A slice's name is its path: "a-b.slice" is b under a.slice; so the pods' slices are named without dashes.
  const slice = `pocruncri${process.pid}`;
  const cgroupParent = systemdCgroup ? `/${slice}.slice` : `/pocrun-cri-${process.pid}`;
  const podSlice = (pod: string) => `${slice}-${pod.replace(/[^A-Za-z0-9]/g, '')}.slice`;
  for (const dir of ['cni', 'cni-ipam', 'logs']) mkdirSync(join(w, dir));
  writeFileSync(join(w, 'cni', '10-pocrun-cri.conflist'), cniConfig(w));
  writeFileSync(join(w, 'config.toml'), configToml(w, pocrun, systemdCgroup));
  const log = openSync(join(w, 'containerd.log'), 'w');
  const daemon = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec containerd --config "$1"', 'sh', join(w, 'config.toml')], {
    stdio: ['ignore', log, log], detached: true,
  });
  closeSync(log);
  daemon.unref();
  const pid = daemon.pid!;
  const ctr = (args: string[]) => sh('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { timeout: 120_000 });
  const cri = new CriClient(socket);
  const handle: PrivateContainerd = {
    work: w, socket, pid, cri, cgroupParent, systemdCgroup, logDir: join(w, 'logs'),
    podCgroupParent: (pod) => (systemdCgroup ? podSlice(pod) : `${cgroupParent}/${pod}`),
    podCgroupDir: (pod) => (systemdCgroup ? `${cgroupParent}/${podSlice(pod)}` : `${cgroupParent}/${pod}`),
    handlerRoot: { runc: join(w, 'handler-runc', 'k8s.io'), pocrun: join(w, 'handler-pocrun', 'k8s.io') },
    ctr,
    inNetns: (cmd, args, timeoutMs = 60_000) => sh('nsenter', [`--net=/proc/${pid}/ns/net`, '--', cmd, ...args], { timeout: timeoutMs }),
    stop: () => stopContainerd(handle),
  };
  removeAllOnSigterm(handle);
  // And if this process dies without a word (SIGKILL), a watchdog cleans up after it.
  spawn(process.execPath, ['--import', 'tsx', join(here, 'reaper.ts'), String(process.pid), w, String(pid), cgroupParent, String(!runContainerdExisted)], {
    stdio: 'ignore', detached: true, cwd: join(here, '../../..'),
  }).unref();
  try {
    await poll('containerd\'s CRI to answer', async () => (await cri.call('Version', {}, 2_000).catch(() => undefined)), 30_000);
    const images = join(w, 'images');
    mkdirSync(images);
    const pause = ociImageArchive(images, 'pause', { fill: fillPause, config: ['--config.entrypoint', '/catatonit', '--config.cmd', '-P'] });
    const busybox = ociImageArchive(images, 'busybox', {
      fill: (rootfs) => busyboxRootfs(rootfs),
      config: ['--config.cmd', 'sh', '--config.env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    });
    for (const [archive, name] of [[pause, 'localhost/pause'], [busybox, 'localhost/busybox']] as const) {
      const r = ctr(['images', 'import', '--base-name', name, archive]);
      if (r.status !== 0) throw new Error(`ctr images import ${name}: ${r.stderr}${r.stdout}`);
    }
    rmSync(images, { recursive: true, force: true });
    for (const image of [PAUSE_IMAGE, BUSYBOX_IMAGE]) {
      await poll(`the CRI to see ${image}`, async () => ((await cri.call('ImageStatus', { image: { image } })).image?.id ? true : undefined));
    }
    await poll('the CRI network to be ready', async () => {
      const conditions = (await cri.call('Status', {})).status?.conditions ?? [];
      return conditions.some((c: { type: string; status: boolean }) => c.type === 'NetworkReady' && c.status) ? true : undefined;
    });
  } catch (err) {
    const left = await handle.stop();
    throw new Error(`${(err as Error).message} (containerd's log was in ${w}; left: ${JSON.stringify(left)})`);
  }
  return handle;
}

async function stopContainerd(h: PrivateContainerd): Promise<Leftovers> {
  // Pods first, as kubelet would: whatever the caller left is stopped and removed through the CRI (containerd's
  // own exit leaves shims and containers running).
  try {
    const pods = (await h.cri.call('ListPodSandbox', {}, 10_000)).items as { id: string }[];
    for (const pod of pods) {
      await h.cri.call('StopPodSandbox', { pod_sandbox_id: pod.id }).catch(() => undefined);
      await h.cri.call('RemovePodSandbox', { pod_sandbox_id: pod.id }).catch(() => undefined);
    }
  } catch {
    /* containerd is not answering: what it left is reported below */
  }
  h.cri.close();
  try {
    process.kill(h.pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && daemonsOf(h.work).length) await new Promise((r) => setTimeout(r, 100));
  const left: Leftovers = {
    processes: daemonsOf(h.work),
    mounts: mountsUnder(h.work),
    cgroups: cgroupsWithProcesses(h.cgroupParent),
  };
  left.cgroups.push(...removeAll(h));
  return left;
}

/** Cgroups under the pods' parent that still hold a process (in any hierarchy), with their pids. */
function cgroupsWithProcesses(parent: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    const procs = existsSync(join(dir, 'cgroup.procs')) ? readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() : '';
    if (procs) found.push(`${dir}: ${procs.split('\n').join(' ')}`);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
  };
  for (const controller of readdirSync('/sys/fs/cgroup')) walk(join('/sys/fs/cgroup', controller, parent));
  return found;
}

/**
 * containerd and the shims it started (their command lines name the work directory); not the watchdog, nor a
 * cleanup script given the directory as an argument.
 */
export function daemonsOf(work: string): string[] {
  return processesMentioning(work).filter((p) => /containerd/.test(p.split(' ')[1] ?? ''));
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Removes everything the private containerd made, whatever state a run left it in (synchronous, so that it can
 * run on SIGTERM too): containerd, the shims it started and their sockets under /run/containerd/s (containerd
 * 1.6 names them sha256("<address>/<namespace>/<id>")), every process in the pods' cgroups, mounts under the
 * work directory, the cgroups, the work directory. Returns the cgroups it could not remove.
 */
function removeAll(h: Pick<PrivateContainerd, 'work' | 'socket' | 'pid' | 'cgroupParent'>, madeRunContainerd = !runContainerdExisted): string[] {
  killQuietly(h.pid);
  // systemd's: stopping the slice stops every scope in it (and the processes), and removes the cgroups.
  if (h.cgroupParent.endsWith('.slice') && existsSync('/run/systemd/system')) sh('systemctl', ['stop', h.cgroupParent.slice(1)]);
  for (const line of daemonsOf(h.work)) {
    killQuietly(Number(line.split(' ')[0]));
    const id = /-id (\S+)/.exec(line)?.[1];
    if (id) rmSync(join('/run/containerd/s', createHash('sha256').update(`${h.socket}/k8s.io/${id}`).digest('hex')), { force: true });
  }
  for (let i = 0; i < 50; i++) {
    const busy = cgroupsWithProcesses(h.cgroupParent);
    if (!busy.length) break;
    for (const entry of busy) for (const pid of entry.split(': ')[1]!.split(' ')) killQuietly(Number(pid));
    spawnSync('sleep', ['0.1']);
  }
  for (const m of mountsUnder(h.work).reverse()) sh('umount', ['-l', m]);
  const left = removeCgroupTree(h.cgroupParent.slice(1));
  rmSync(h.work, { recursive: true, force: true });
  if (madeRunContainerd) {
    for (const dir of ['/run/containerd/s', '/run/containerd/fifo', '/run/containerd']) {
      try {
        if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
      } catch {
        /* someone else's now */
      }
    }
  }
  return left;
}

/** For a run that is being killed (a test runner's timeout, ^C): remove everything, then exit. */
function removeAllOnSigterm(h: PrivateContainerd): void {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGALRM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      removeAll(h);
      process.exit(1);
    });
  }
}

/** Removes what a private containerd whose test process died left behind (its work directory and pid). */
export function removeLeftovers(work: string, pid: number, cgroupParent: string, madeRunContainerd: boolean): string[] {
  // cgroupParent: as PrivateContainerd's (a /…slice for systemd's driver).
  return removeAll({ work, socket: join(work, 'containerd.sock'), pid, cgroupParent }, madeRunContainerd);
}

export interface StreamedExec {
  stdout: string;
  stderr: string;
  /** The v4 error channel's status: {status: "Success"} or a Failure with the exit code in details.causes. */
  status: { status?: string; reason?: string; details?: { causes?: { reason: string; message: string }[] } };
}

/**
 * Streaming exec through the URL Exec returned, over WebSocket (subprotocol v4.channel.k8s.io: each message
 * starts with its channel, 1 stdout, 2 stderr, 3 the final status). The streaming server listens in containerd's
 * network namespace, so the client (test/helpers/cri/ws-exec.mjs, with the ws package) runs there.
 */
export function streamExec(h: PrivateContainerd, url: string): StreamedExec {
  const r = h.inNetns(process.execPath, [join(here, 'ws-exec.mjs'), url]);
  if (r.status !== 0) throw new Error(`ws-exec ${url}: exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StreamedExec;
}

