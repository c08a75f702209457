import { CAPABILITIES } from '../vocabulary/capabilities.js';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { helperPath } from './init-helper.js';
import { busProgram } from '../cgroups/systemd-bus.js';
import { systemdRunning } from '../common/systemd.js';
import { knownMountOptions } from '../plan/mount-options.js';
import { SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPERATORS } from '../plan/seccomp.js';
import { NAMESPACE_NAMES } from '../plan/namespaces.js';
import { MEMPOLICY_FLAGS, MEMPOLICY_MODES } from '../plan/process-attrs.js';
import { OCI_VERSION } from '../spec/default.js';
import { COMMIT, VERSION } from '../spec/generated/version.js';

/** What the seccomp support of this build recognises (the planner's own tables) and what this kernel supports. */
export interface SeccompFeatures {
  actions: string[];
  operators: string[];
  archs: string[];
  knownFlags: string[];
  supportedFlags: string[];
}

/**
 * pocrun features (features-schema.json): what this build recognises, derived from the tables the planner
 * itself uses, so that it cannot claim what config.json would refuse.
 */
export function features(
  seccomp: SeccompFeatures | undefined = seccompFeatures(),
  hostCgroups: Record<string, string> = {},
  systemd = systemdAvailable(),
): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: knownMountOptions(),
    linux: {
      namespaces: Object.keys(NAMESPACE_NAMES).sort(),
      capabilities: [...CAPABILITIES],
      // What pocrun can drive, whatever the host (as the spec says); the annotations say what this host has.
      // systemd: where --systemd-cgroup works (systemd is the init, pocrun-systemd is built); systemdUser: where
      // it works rootless too (the user's own systemd, in the subtree delegated to it, which only v2 has).
      cgroup: { v1: true, v2: true, systemd, systemdUser: systemd && hostCgroups['io.github.pocrun.cgroup.version'] === '2', rdma: true },
      seccomp: seccomp ? { enabled: true, ...seccomp } : { enabled: false },
      // Profiles and process labels are applied where the host has the LSM (config.json names one the host lacks:
      // a clear error); SELinux mount labels are refused.
      apparmor: { enabled: true },
      selinux: { enabled: true },
      memoryPolicy: { modes: Object.keys(MEMPOLICY_MODES).sort(), flags: Object.keys(MEMPOLICY_FLAGS).sort() },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
      netDevices: { enabled: true },
    },
    annotations: {
      'io.github.pocrun.version': VERSION,
      'io.github.pocrun.commit': COMMIT,
      ...hostCgroups,
    },
  };
}

/** Whether --systemd-cgroup can work on this host. */
export function systemdAvailable(): boolean {
  if (!systemdRunning()) return false;
  try {
    busProgram();
    return true;
  } catch {
    return false;
  }
}

/** The Linux version that brought each seccomp filter flag (the helper refuses a flag the kernel lacks). */
const FLAG_SINCE: Record<string, [number, number]> = {
  SECCOMP_FILTER_FLAG_TSYNC: [3, 17],
  SECCOMP_FILTER_FLAG_LOG: [4, 14],
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: [4, 17],
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: [5, 19],
};

/**
 * The architectures a filter on this machine can take, of those the spec names: the ones the helper's libseccomp
 * knows (2.5 lacks some that 2.6 has) and that go with the native one. The helper refuses the others, so they
 * are not claimed.
 */
export function knownSeccompArchs(): string[] {
  const names = Object.values(SECCOMP_ARCHES);
  const r = spawnSync(helperPath(), ['--seccomp-archs', ...names], { encoding: 'utf8' });
  const known = new Set(r.status === 0 ? r.stdout.split('\n').filter(Boolean) : []);
  return Object.keys(SECCOMP_ARCHES).filter((a) => known.has(SECCOMP_ARCHES[a]!)).sort();
}

export function seccompFeatures(kernel: string = release(), archs: string[] = Object.keys(SECCOMP_ARCHES).sort()): SeccompFeatures {
  const [major = 0, minor = 0] = kernel.split(/[.-]/).map(Number);
  const known = Object.keys(SECCOMP_FLAGS).sort();
  return {
    actions: Object.keys(SECCOMP_ACTIONS).sort(),
    operators: Object.keys(SECCOMP_OPERATORS).sort(),
    archs,
    knownFlags: known,
    supportedFlags: known.filter((f) => {
      const [a, b] = FLAG_SINCE[f] ?? [99, 0];
      return major > a || (major === a && minor >= b);
    }),
  };
}
