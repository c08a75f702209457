/**
 * The host facts a plan needs (src/plan/process-attrs.ts HostFacts), gathered here so that src/plan never looks at
 * the host: pocrun's create and exec hand them in, the tests give their own.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { HostFacts, HostSecurity } from '../plan/process-attrs.js';
import { runningInUserNs } from './rootless.js';

/** Which Linux security modules the host has enabled. */
export function detectHostSecurity(): HostSecurity {
  let apparmor = false;
  try {
    apparmor = existsSync('/sys/kernel/security/apparmor') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  } catch {
    apparmor = false;
  }
  const selinux = existsSync('/sys/fs/selinux/enforce');
  return { apparmor, selinux };
}

/** By device and inode, as /proc/self/ns/<type> of the runtime. */
export function isHostNamespace(ns: string, path: string): boolean {
  try {
    const a = statSync(path);
    const b = statSync(`/proc/self/ns/${ns}`);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/**
 * The facts for create. The LSM probe and the namespace comparison stay functions, run only for a config that
 * sets a label or joins a namespace with sysctls; the two booleans cost a stat and a read of /proc/self/uid_map.
 */
export function probeHostFacts(): HostFacts {
  return {
    security: detectHostSecurity,
    isHostNamespace,
    hasKcore: existsSync('/proc/kcore'),
    runtimeInUserNamespace: runningInUserNs(),
  };
}
