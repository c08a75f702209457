/** `poc inspect CONTAINER...`: a JSON array, one object per container, in docker's shape where it has one. */
import { readFileSync } from 'node:fs';
import { stdout } from '../../common/output.js';
import type { Spec } from '../../spec/generated/config.js';
import { listContainerNetworks } from '../network/index.js';
import { CPU_PERIOD, DEFAULT_SHM_SIZE } from '../containers/bundle.js';
import type { ContainerOptions } from '../containers/options.js';
import { containerPaths, containerStatus, readHealth, resolveContainer, type ContainerRecord } from '../containers/container-store.js';
import { runtimeRoot } from '../containers/container-store.js';
import { pocrun } from '../containers/runtime.js';
import type { RootOptions } from '../poc-root.js';
import { describeMount, volumeType } from '../volumes/spec.js';
import { volumeDataPath } from '../volumes/volume-store.js';

export interface InspectOptions extends RootOptions {
  refs: string[];
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** docker's HostConfig.SecurityOpt: what was asked for; the default profile shows as nothing, as with docker. */
function securityOpt(o: ContainerOptions): string[] {
  const out: string[] = [];
  if (o.seccomp === 'unconfined' || (o.seccomp === undefined && o.seccompProfile === undefined)) out.push('seccomp=unconfined');
  if (o.seccompProfile !== undefined) out.push(`seccomp=${JSON.stringify(o.seccompProfile)}`); // the profile's text, as docker shows it
  if (o.noNewPrivileges) out.push('no-new-privileges');
  return out;
}

export async function inspectContainer(c: ContainerRecord, o: RootOptions): Promise<Record<string, unknown>> {
  const paths = containerPaths(c.id, o);
  const s = containerStatus(c.id, o);
  let spec: Spec | undefined;
  try {
    spec = JSON.parse(readFileSync(paths.config, 'utf8')) as Spec;
  } catch {
    spec = undefined;
  }
  const nets = c.options.network === 'bridge' ? listContainerNetworks(c.id, o) : [];
  const net = nets[0];
  // The runtime's own view, as an engine asks for it.
  let runtime: unknown = null;
  if (s.status === 'running') {
    const r = await pocrun(['state', c.id], o);
    if (r.code === 0) runtime = JSON.parse(r.stdout);
  }
  const ports = c.options.publish.map((p) => ({ ContainerPort: p.containerPort, Protocol: p.protocol, HostIp: p.hostIp ?? '0.0.0.0', HostPort: p.hostPort }));
  return {
    Id: c.id,
    Name: c.name,
    Created: c.created,
    Path: c.args[0],
    Args: c.args.slice(1),
    State: {
      Status: s.status,
      Running: s.status === 'running',
      Restarting: s.status === 'restarting',
      Pid: s.pid ?? 0,
      ExitCode: s.exit?.exitCode ?? (s.exitUnknown ? -1 : 0),
      StartedAt: s.run?.startedAt ?? ZERO_TIME,
      FinishedAt: s.exit?.finishedAt ?? ZERO_TIME,
      // docker's State.Error: here the rootless network helper's death while the container ran (the monitor's words).
      Error: s.run?.networkError ?? '',
      MonitorPid: s.monitorAlive ? s.run!.monitorPid : 0,
      ...(c.healthcheck && s.run ? { Health: readHealth(c.id, o) ?? { Status: 'starting', FailingStreak: 0, Log: [] } } : {}),
    },
    RestartCount: s.run?.restartCount ?? 0,
    Image: c.image.id,
    ImageName: c.image.name,
    Config: {
      Hostname: c.hostname,
      User: c.options.user ?? '',
      Env: spec?.process?.env ?? [],
      Cmd: c.options.command.length > 0 ? c.options.command : null,
      Entrypoint: c.options.entrypoint,
      WorkingDir: spec?.process?.cwd ?? '/',
      Tty: c.options.tty,
      OpenStdin: c.options.interactive,
      Image: c.image.name ?? c.image.id,
      Labels: c.options.labels ?? {},
      StopSignal: c.options.stopSignal ?? 'SIGTERM',
      ...(c.options.stopTimeout !== undefined ? { StopTimeout: c.options.stopTimeout } : {}),
      ...(c.healthcheck ? { Healthcheck: c.healthcheck } : {}),
    },
    HostConfig: {
      NetworkMode: c.options.network,
      Binds: c.options.volumes.filter((v) => volumeType(v) !== 'tmpfs').map((v) => `${v.source}:${v.destination}${v.readOnly ? ':ro' : ''}`),
      Memory: c.options.resources.memory ?? 0,
      NanoCpus: c.options.resources.cpus !== undefined ? Math.round(c.options.resources.cpus * 1e9) : 0,
      CpuQuota: c.options.resources.cpus !== undefined ? Math.round(c.options.resources.cpus * CPU_PERIOD) : 0,
      CpuPeriod: c.options.resources.cpus !== undefined ? CPU_PERIOD : 0,
      PidsLimit: c.options.resources.pidsLimit ?? 0,
      ReadonlyRootfs: c.options.readOnly,
      CapAdd: c.options.capAdd,
      CapDrop: c.options.capDrop,
      AutoRemove: c.options.autoRemove,
      RestartPolicy: c.options.restart ?? { Name: 'no', MaximumRetryCount: 0 },
      PortBindings: ports,
      Privileged: c.options.privileged ?? false,
      SecurityOpt: securityOpt(c.options),
      Devices: (c.options.devices ?? []).map((d) => ({ PathOnHost: d.host, PathInContainer: d.container, CgroupPermissions: d.access })),
      GroupAdd: c.options.groupAdd ?? [],
      Ulimits: (c.options.ulimits ?? []).map((u) => ({ Name: u.type.slice('RLIMIT_'.length).toLowerCase(), Soft: u.soft, Hard: u.hard })),
      Sysctls: c.options.sysctls ?? {},
      Tmpfs: Object.fromEntries((c.options.tmpfs ?? []).map((t) => [t.destination, t.options.join(',')])),
      ShmSize: c.options.shmSize ?? DEFAULT_SHM_SIZE,
      Init: c.options.init ?? false,
    },
    Mounts: c.options.volumes.map((v) => describeMount(v, (name) => volumeDataPath(name, o))),
    NetworkSettings: {
      Bridge: net?.bridge ?? '',
      IPAddress: net?.ip ?? '',
      IPPrefixLen: net?.prefix ?? 0,
      Gateway: net?.gateway ?? '',
      Ports: ports,
      // As docker's: one entry per network the container is on (eth0 first).
      Networks: Object.fromEntries(
        nets.map((n) => [
          n.network,
          {
            NetworkID: n.networkId ?? '',
            Interface: n.ifname ?? 'eth0',
            IPAddress: n.ip,
            IPPrefixLen: n.prefix,
            Gateway: n.gateway,
            GlobalIPv6Address: n.ip6 ?? '',
            IPv6Gateway: n.gateway6 ?? '',
            DNSNames: n.names ?? [],
          },
        ]),
      ),
    },
    User: c.user,
    LogPath: paths.log,
    Bundle: paths.dir,
    Rootfs: paths.rootfs,
    RuntimeRoot: runtimeRoot(o),
    CgroupsPath: spec?.linux?.cgroupsPath ?? '',
    RuntimeState: runtime,
  };
}

export async function inspectCommand(o: InspectOptions): Promise<number> {
  const records = o.refs.map((ref) => resolveContainer(ref, o));
  const out = await Promise.all(records.map((c) => inspectContainer(c, o)));
  stdout(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}
