import { PocrunError } from '../errors.js';

/** Capability numbers from <linux/capability.h>, in order: the index is the number. */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

export type CapabilitySet = 'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient';
export const CAPABILITY_SETS: readonly CapabilitySet[] = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'];

/** Accepts "CAP_NET_ADMIN" and, as docker does, "NET_ADMIN" or "net_admin". */
export function capabilityNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const index = CAPABILITIES.indexOf((upper.startsWith('CAP_') ? upper : `CAP_${upper}`) as (typeof CAPABILITIES)[number]);
  return index < 0 ? undefined : index;
}

/** A set of names as a 64-bit mask in hex, the form the helper's `caps` step takes. */
export function capabilityMask(names: readonly string[] = [], where: string): string {
  let mask = 0n;
  for (const name of names) {
    const n = capabilityNumber(name);
    if (n === undefined) throw new PocrunError(`${where}: unknown capability ${JSON.stringify(name)}`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16);
}
