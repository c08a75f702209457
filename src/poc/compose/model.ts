/**
 * A compose project as poc runs it: every service, network and volume with the file's short forms made long
 * (ports, volumes, depends_on, environment, ...), relative paths resolved, and the names the host will see
 * (`<project>_<network>`, `<project>_<volume>`, `<project>-<service>-<n>`). Built by normalize.ts and merge.ts,
 * turned into containers by plan.ts.
 */

export interface BuildSpec {
  /** Absolute. */
  context: string;
  dockerfile?: string;
  args: Record<string, string | null>;
  target?: string;
  /** build.platforms: each checked at load to be this machine's (poc runs no emulation); absent: none given. */
  platforms?: string[];
  /** build.ssh: `default` or `ID=PATH[,PATH...]`, as poc build --ssh takes them (paths made absolute). */
  ssh?: string[];
}

export interface PortSpec {
  target: number;
  /** EPHEMERAL (0): none given, poc picks one at create. */
  published: number;
  hostIp?: string;
  protocol: 'tcp' | 'udp';
}

export interface MountSpec {
  type: 'bind' | 'volume' | 'tmpfs';
  /** bind: an absolute host path; volume: the key of a top-level volume (absent: an anonymous volume). */
  source?: string;
  target: string;
  readOnly: boolean;
  nocopy?: boolean;
  propagation?: string;
  /** A missing bind source is made as a directory (the short syntax's rule, and `bind.create_host_path`). */
  createHostPath?: boolean;
  tmpfsSize?: string;
  tmpfsMode?: number;
}

export interface ServiceNetwork {
  aliases: string[];
  ipv4Address?: string;
}

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface DependsOn {
  condition: DependsCondition;
  required: boolean;
  restart: boolean;
}

export interface HealthSpec {
  /** ["NONE"], ["CMD", ...], ["CMD-SHELL", command]. */
  test?: string[];
  interval?: string;
  timeout?: string;
  startPeriod?: string;
  retries?: number;
  disable?: boolean;
}

export interface Limits {
  cpus?: string;
  memory?: string;
  pids?: number;
}

export interface Ulimit {
  soft: number;
  hard: number;
}

/**
 * A top-level secret or config: where its value comes from, exactly one of a host file, an environment
 * variable (of the process or .env) or, for a config, inline content.
 */
export interface SharedFileSpec {
  /** Absolute. */
  file?: string;
  environment?: string;
  content?: string;
  /** "FILE:LINE: /secrets/KEY/file" (or environment, content): the source's key, for the errors found at plan. */
  at: string;
}

/** A service's use of a secret or config (the short syntax made long, the target made absolute). */
export interface FileGrant {
  source: string;
  /** Absolute: a secret's default is /run/secrets/SOURCE (a relative target goes there too), a config's /SOURCE. */
  target: string;
  uid?: number;
  gid?: number;
  mode?: number;
}

/** One service; a field absent means the image's or poc's default. Lists and maps are empty rather than absent. */
export interface ServiceSpec {
  image?: string;
  build?: BuildSpec;
  pullPolicy?: string;
  command?: string[];
  entrypoint?: string[];
  /** null: the value of the variable where poc runs (left out when it has none). */
  environment: Record<string, string | null>;
  envFiles: Array<{ path: string; required: boolean }>;
  workingDir?: string;
  user?: string;
  ports: PortSpec[];
  expose: string[];
  networks: Record<string, ServiceNetwork>;
  /** host or none (bridge: the default network); absent: the project's networks. */
  networkMode?: string;
  volumes: MountSpec[];
  dependsOn: Record<string, DependsOn>;
  healthcheck?: HealthSpec;
  restart?: string;
  limits: Limits;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  privileged?: boolean;
  devices: string[];
  ulimits: Record<string, Ulimit>;
  sysctls: Record<string, string>;
  tmpfs: string[];
  init?: boolean;
  labels: Record<string, string>;
  hostname?: string;
  extraHosts: string[];
  dns: string[];
  stopSignal?: string;
  stopGracePeriod?: string;
  profiles: string[];
  /** deploy.replicas or scale (or --scale): how many containers; absent: 1. */
  scale?: number;
  /** platform: this machine's (checked at load). */
  platform?: string;
  containerName?: string;
  readOnly?: boolean;
  shmSize?: string;
  groupAdd: string[];
  stdinOpen?: boolean;
  tty?: boolean;
  secrets: FileGrant[];
  configs: FileGrant[];
}

export interface NetworkSpec {
  /** The name on the host: `name:`, else `<project>_<key>` (external: `name:`, else the key). */
  name: string;
  external: boolean;
  internal: boolean;
  enableIpv6: boolean;
  subnets: string[];
  gateways: string[];
  labels: Record<string, string>;
}

export interface VolumeSpec {
  name: string;
  external: boolean;
  labels: Record<string, string>;
}

export interface Project {
  name: string;
  workingDir: string;
  files: string[];
  services: Record<string, ServiceSpec>;
  networks: Record<string, NetworkSpec>;
  volumes: Record<string, VolumeSpec>;
  secrets: Record<string, SharedFileSpec>;
  configs: Record<string, SharedFileSpec>;
}

/** The network every service without `networks:` joins, as compose's. */
export const DEFAULT_NETWORK_KEY = 'default';

export function emptyService(): ServiceSpec {
  return {
    environment: {},
    envFiles: [],
    ports: [],
    expose: [],
    networks: {},
    volumes: [],
    dependsOn: {},
    limits: {},
    capAdd: [],
    capDrop: [],
    securityOpt: [],
    devices: [],
    ulimits: {},
    sysctls: {},
    tmpfs: [],
    labels: {},
    extraHosts: [],
    dns: [],
    profiles: [],
    groupAdd: [],
    secrets: [],
    configs: [],
  };
}

/** The name of a service's container number N: container_name, else `<project>-<service>-<N>` (compose v2's). */
export function containerName(project: string, service: string, spec: Pick<ServiceSpec, 'containerName'>, number = 1): string {
  return spec.containerName ?? `${project}-${service}-${number}`;
}

/** How many containers a service has: deploy.replicas, scale or --scale, else 1. */
export function serviceScale(spec: Pick<ServiceSpec, 'scale'>): number {
  return spec.scale ?? 1;
}

/** The image a service runs: `image:`, else the one its build makes, `<project>-<service>` (compose v2's). */
export function serviceImage(project: string, service: string, spec: Pick<ServiceSpec, 'image'>): string {
  return spec.image ?? `${project}-${service}`;
}
