/**
 * `poc create`: checks everything first (flags, image, volume paths, user, command), then makes the container
 * directory, reserves the name, the address and the published ports, and writes the /etc files and config.json.
 * A failure at any step removes what the earlier ones made. The runtime is not called yet: `poc start` does.
 */
import { systemdRunning } from '../../common/systemd.js';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname as osHostname, release as osRelease } from 'node:os';
import { UserError, PocError, errnoCode, wrapError } from '../errors.js';
import { imageRootfs, resolveImage, type ImageRecord } from '../images/image-store.js';
import { unpackImage } from '../images/unpack.js';
import { writeContainerEtcFiles } from '../network/etc-files.js';
import { EPHEMERAL, pickHostPorts } from '../network/publish.js';
import { pastaPlan } from '../network/pasta.js';
import { newId, readTextOr, shortId, withLock, writeJsonAtomic, type RootOptions } from '../poc-root.js';
import { containerArgs, planBundle, resolveGroups, resolveUser } from './bundle.js';
import { containerDevices } from './devices.js';
import { CAPABILITIES } from '../../vocabulary/capabilities.js';
import { checkUlimits, parseStopSignal, UNLIMITED } from './docker-options.js';
import { randomName } from './names.js';
import { resolveRunFlags, type ContainerOptions, type RunFlags } from './options.js';
import { goArch } from './seccomp-profile.js';
import { binaries } from './runtime.js';
import { containerPaths, listContainers, type ContainerRecord } from './container-store.js';
import { pocRoot } from '../poc-root.js';
import { idFilesIn } from '../root-path.js';
import { imageVolumes, volumeType } from '../volumes/spec.js';
import { anonymousVolumeName, prepareContainerVolumes, releaseVolumes, volumeDataPath } from '../volumes/volume-store.js';
import { effectiveHealthcheck } from './health.js';
import { isRootless } from '../rootless.js';
import { fileMounts, writeContainerFiles, type ContainerFile } from './container-files.js';

/**
 * An image by reference, with its files: `busybox` is built from the host's busybox-static on first use; any other
 * image that is not in the store is pulled, as docker does (registry/pull.ts: pullMissing); a pulled image is
 * unpacked the first time it is used (images/unpack.ts).
 */
export async function findImage(ref: string, opts: RootOptions): Promise<ImageRecord> {
  let image: ImageRecord;
  try {
    image = resolveImage(ref, opts);
  } catch (err) {
    const { buildBusyboxImage, BUSYBOX_IMAGE } = await import('../images/busybox.js'); // the builder, when needed
    if (ref === BUSYBOX_IMAGE || ref === `${BUSYBOX_IMAGE}:latest`) return buildBusyboxImage(opts);
    if (!(err instanceof UserError && /^no such image/.test(err.message))) throw err;
    image = await (await import('../registry/pull.js')).pullMissing(ref, opts);
  }
  return unpackImage(image, opts);
}

/**
 * `overrides`: what a flag cannot say, laid over the checked flags (poc compose: an entrypoint of several words,
 * a health check's CMD list, per-network aliases and addresses).
 */
/** `files`: given whole and bound read-only (container-files.ts); kept out of the record, which has only their paths. */
export async function createContainer(flags: RunFlags, opts: RootOptions = {}, overrides: Partial<ContainerOptions> = {}, files: readonly ContainerFile[] = []): Promise<ContainerRecord> {
  const rootless = isRootless(process.env, process.geteuid?.() ?? 0);
  const options: ContainerOptions = {
    ...resolveRunFlags(flags, {
      readFile: (p) => readFileSync(p, 'utf8'),
      hostEnv: process.env,
      cpuCount: cpus().length,
      systemdRunning: systemdRunning(),
      rootless,
      ...(rootless ? { userDelegation: (await import('../userns.js')).userDelegation() } : {}),
    }),
    ...overrides,
  };
  if (options.rootless) {
    const { cgroupParentProblem, userIdentity } = await import('../userns.js'); // rootless only
    const who = userIdentity();
    if (who.subuids.length === 0 || who.subgids.length === 0) options.rootless.singleId = true;
    const parent = options.cgroup?.manager === 'cgroupfs' ? options.cgroup.parent : undefined;
    const problem = parent && cgroupParentProblem(parent);
    if (problem) {
      throw new PocError(`--cgroup-parent ${parent}: this user cannot make cgroups there (${problem}): a rootless container's cgroup parent must be delegated to the user (a cgroup it owns)`);
    }
  }
  for (const v of options.volumes) {
    if (volumeType(v) !== 'bind') continue;
    let st;
    try {
      st = statSync(v.source);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new PocError(`-v ${v.source}:${v.destination}: the host path ${v.source} does not exist`);
      throw wrapError(`-v ${v.source}`, err);
    }
    if (!st.isDirectory() && !st.isFile()) throw new PocError(`-v ${v.source}:${v.destination}: the host path is neither a file nor a directory`);
  }
  if (options.ulimits) checkUlimits(options.ulimits, hostLimits());
  const devices = options.privileged || options.devices ? containerDevices(options.privileged ?? false, options.devices ?? []) : [];
  const initBinary = options.init ? findInit() : undefined;
  const image = await findImage(flags.image, opts);
  const lower = imageRootfs(image, opts);
  const ids = idFilesIn(lower);
  const user = resolveUser(options.user ?? image.config.User ?? '', ids.passwd, ids.group);
  if (options.groupAdd) user.additionalGids = resolveGroups(options.groupAdd, ids.group);
  const args = containerArgs(image.config, options);
  const healthcheck = effectiveHealthcheck(image.config.Healthcheck, options.healthcheck);
  // The image's VOLUMEs get anonymous volumes, and every anonymous volume its name now: the record keeps it.
  options.volumes = [...options.volumes, ...imageVolumes(image.config.Volumes, options.volumes)].map((v) =>
    v.anonymous && v.source === '' ? { ...v, source: anonymousVolumeName() } : v,
  );
  if (options.stopSignal === undefined && image.config.StopSignal) {
    try {
      options.stopSignal = parseStopSignal(image.config.StopSignal);
    } catch {
      throw new PocError(`image ${flags.image}: its StopSignal ${JSON.stringify(image.config.StopSignal)} is not a signal; give --stop-signal`);
    }
  }

  const id = newId();
  const paths = containerPaths(id, opts);
  options.volumes = [...options.volumes, ...fileMounts(paths.dir, files)];
  const hostname = options.hostname ?? (options.network === 'host' ? osHostname() : shortId(id));
  const root = pocRoot(opts);
  const { poc } = binaries();
  // Rootless ephemeral ports (`-p 80`): picked as root's are (pickHostPorts: the lowest port of ip_local_port_range
  // that is free), around the host's sockets, read here (a rootless container's published ports are sockets of
  // the host's, slirp4netns's or pasta's), and the ports the user's other containers keep in their records (read
  // under the lock below, so that two creates cannot pick the same one).
  const hostPorts =
    options.rootless && options.publish.some((p) => p.hostPort === EPHEMERAL) ? await (await import('../network/system.js')).hostPortUse(undefined) : undefined;

  // Name reserved and directory made under one lock, so that two creates of one name cannot both succeed.
  const record = await withLock(
    'containers',
    () => {
      const others = listContainers(opts);
      const taken = new Set(others.map((c) => c.name));
      let name = options.name;
      if (name !== undefined && taken.has(name)) {
        const other = others.find((c) => c.name === name)!;
        throw new PocError(`the container name "${name}" is already in use by container ${shortId(other.id)}: remove it or pick another name`);
      }
      for (let i = 0; name === undefined || taken.has(name); i++) name = i < 20 ? randomName() : `${randomName()}_${i}`;
      if (hostPorts) {
        const kept = others.flatMap((c) => c.options.publish.map((p) => `${p.hostPort}/${p.protocol}`));
        options.publish = pickHostPorts(options.publish, { range: hostPorts.range, taken: new Set([...hostPorts.bound, ...kept]) });
      }
      const rec: ContainerRecord = {
        id,
        name,
        created: new Date().toISOString(),
        image: { id: image.id, name: image.name },
        hostname,
        args,
        user,
        options,
        ...(healthcheck ? { healthcheck } : {}),
      };
      mkdirSync(paths.dir, { recursive: true, mode: 0o711 });
      writeJsonAtomic(paths.record, rec);
      return rec;
    },
    opts,
  );

  let allocated = false;
  let madeVolumes: string[] = [];
  try {
    writeContainerFiles(paths.dir, files, Boolean(options.rootless));
    madeVolumes = await prepareContainerVolumes(id, options.volumes, lower, opts);
    let ip: string | undefined;
    let gateway: string | undefined;
    let networkDns: string | undefined;
    if (options.network === 'bridge') {
      allocated = true;
      // The bridge's code (IPAM, veths, nftables) loads only for a container on it: --network none need not wait.
      const { allocateContainerNetwork, listContainerNetworks } = await import('../network/container.js');
      const net = await allocateContainerNetwork({ ...opts, containerId: id, hostname, name: record.name, publish: options.publish, ...(options.networks ? { networks: options.networks } : {}) });
      ip = net.ip;
      gateway = net.gateway;
      // Ephemeral ports (`-p 80`) were picked now: the record keeps them, for ps, inspect and the next start.
      if (options.publish.some((p) => p.hostPort === EPHEMERAL)) {
        options.publish = net.publish;
        writeJsonAtomic(paths.record, record);
      }
      networkDns = listContainerNetworks(id, opts).find((n) => n.network !== 'bridge')?.gateway;
    }
    const extraHosts = options.extraHosts?.map((h) => {
      if (h.ip !== 'host-gateway') return h;
      if (!gateway) throw new PocError(`--add-host ${h.names[0]}:host-gateway needs a bridge or user network (the network is ${options.network})`);
      return { ...h, ip: gateway };
    });
    writeContainerEtcFiles(paths.etc, {
      hostname,
      mode: options.network,
      ...(ip ? { ip } : {}),
      ...(extraHosts ? { extraHosts } : {}),
      ...(options.dns ? { dns: options.dns } : {}),
      ...(networkDns ? { networkDns } : {}),
      ...(options.rootless?.pastaOptions ? { pastaDns: pastaPlan(options.rootless.pastaOptions, []).dns } : {}),
    });
    for (const d of [paths.rootfs, paths.upper, paths.work]) mkdirSync(d, { recursive: true, mode: 0o755 });
    const spec = planBundle(image.config, options, {
      containerId: id,
      name: record.name,
      hostname,
      rootfs: paths.rootfs,
      etcDir: paths.etc,
      user,
      hook: {
        path: poc,
        env: [
          `POC_ROOT=${root}`,
          'POC_PROGRAM=poc',
          `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
          ...(process.env.POC_RESOLV_CONF ? [`POC_RESOLV_CONF=${process.env.POC_RESOLV_CONF}`] : []),
        ],
      },
      arch: goArch(process.arch),
      kernel: osRelease(),
      volumePath: (name) => volumeDataPath(name, opts),
      devices,
      capabilities: boundingCapabilities(),
      ...(initBinary ? { initBinary } : {}),
    });
    writeFileSync(paths.config, `${JSON.stringify(spec, null, 2)}\n`);
    return record;
  } catch (err) {
    if (allocated) {
      const { releaseContainerNetwork } = await import('../network/container.js');
      await releaseContainerNetwork({ ...opts, containerId: id }).catch(() => {});
    }
    rmSync(paths.dir, { recursive: true, force: true });
    await releaseVolumes(madeVolumes, opts).catch(() => {});
    throw err;
  }
}

/** The hard limits poc runs under (the container's can go no higher without CAP_SYS_RESOURCE), and that capability. */
function hostLimits(): { hard: (type: string) => number; sysResource: boolean } {
  const names: Record<string, string> = {
    'Max cpu time': 'RLIMIT_CPU', 'Max file size': 'RLIMIT_FSIZE', 'Max data size': 'RLIMIT_DATA', 'Max stack size': 'RLIMIT_STACK',
    'Max core file size': 'RLIMIT_CORE', 'Max resident set': 'RLIMIT_RSS', 'Max processes': 'RLIMIT_NPROC', 'Max open files': 'RLIMIT_NOFILE',
    'Max locked memory': 'RLIMIT_MEMLOCK', 'Max address space': 'RLIMIT_AS', 'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING',
    'Max msgqueue size': 'RLIMIT_MSGQUEUE', 'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO', 'Max realtime timeout': 'RLIMIT_RTTIME',
  };
  const hard = new Map<string, number>();
  for (const line of readTextOr('/proc/self/limits').split('\n')) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    const type = m && names[m[1]!];
    if (type) hard.set(type, m[3] === 'unlimited' ? UNLIMITED : Number(m[3]));
  }
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(readTextOr('/proc/self/status'))?.[1] ?? '0';
  const CAP_SYS_RESOURCE = 24n;
  return { hard: (type) => hard.get(type) ?? UNLIMITED, sysResource: ((BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) === 1n };
}

/** poc's bounding set (CAP_SYS_RESOURCE is missing on some hosts): what --cap-add ALL and --privileged can give. */
function boundingCapabilities(): string[] {
  const bnd = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)/m.exec(readTextOr('/proc/self/status'))?.[1] ?? '0'}`);
  return CAPABILITIES.filter((_, i) => ((bnd >> BigInt(i)) & 1n) === 1n);
}

/** --init's reaper: catatonit, static, where Debian and podman install it (scripts/setup.sh installs it). */
function findInit(): string {
  const candidates = ['/usr/bin/catatonit', '/usr/libexec/catatonit/catatonit', '/usr/libexec/podman/catatonit'];
  const found = candidates.find((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
  if (!found) throw new PocError(`--init needs catatonit, found in none of ${candidates.join(', ')} (apt-get install catatonit)`);
  return found;
}
