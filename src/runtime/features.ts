import { CAPABILITIES } from '../plan/capabilities.js';
import { knownMountOptions } from '../plan/mount-options.js';
import { NAMESPACE_NAMES } from '../plan/namespaces.js';
import { OCI_VERSION } from '../spec/default.js';
import { COMMIT, VERSION } from '../spec/generated/version.js';

/** What the seccomp support of this build recognises; `undefined` while the seccomp step is not implemented. */
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
export function features(seccomp?: SeccompFeatures): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: knownMountOptions(),
    linux: {
      namespaces: Object.keys(NAMESPACE_NAMES).sort(),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true },
      seccomp: seccomp ? { enabled: true, ...seccomp } : { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
      netDevices: { enabled: false },
    },
    annotations: {
      'io.github.pocrun.version': VERSION,
      'io.github.pocrun.commit': COMMIT,
    },
  };
}
