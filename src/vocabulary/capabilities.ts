/**
 * Linux's capabilities by number (<linux/capability.h>): the index is the number. The one list of their names:
 * the plan turns names into the masks of the `caps` step with it, `features` lists it, poc checks --cap-add with it,
 * and the helper's messages name a capability with the C array scripts/gen-native.ts writes from it (checked
 * against the kernel header's numbers at compile time).
 */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

export type CapabilityName = (typeof CAPABILITIES)[number];

/** Accepts "CAP_NET_ADMIN" and, as docker does, "NET_ADMIN" or "net_admin". */
export function capabilityNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const index = CAPABILITIES.indexOf((upper.startsWith('CAP_') ? upper : `CAP_${upper}`) as (typeof CAPABILITIES)[number]);
  return index < 0 ? undefined : index;
}
