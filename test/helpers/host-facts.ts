import type { HostFacts } from '../../src/plan/process-attrs.js';

/**
 * The host a plan test gives when the host does not matter: no LSM, no /proc/kcore, not in a user namespace, and
 * no namespace file the runtime's own. Plans never probe the host (src/runtime/host-probes.ts does, for pocrun).
 */
export const PLAIN_HOST: HostFacts = Object.freeze({
  security: () => ({ apparmor: false, selinux: false }),
  isHostNamespace: () => false,
  hasKcore: false,
  runtimeInUserNamespace: false,
});
