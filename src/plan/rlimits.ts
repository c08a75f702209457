import { ConfigFieldError } from '../errors.js';

/** RLIMIT_* numbers from <asm-generic/resource.h>. */
export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

/** 2^64-1 in config.json means unlimited; the helper takes -1 for RLIM_INFINITY. */
export function rlimitValue(value: number): string {
  return value >= Number.MAX_SAFE_INTEGER ? '-1' : String(value);
}

export function rlimitNumber(type: string, pointer: string): number {
  const n = RLIMITS[type];
  if (n === undefined) throw new ConfigFieldError(pointer, `unknown rlimit type ${JSON.stringify(type)}`);
  return n;
}
