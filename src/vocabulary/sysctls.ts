/**
 * Which sysctls a container may set: only those of a namespace it has its own of (runc's rule), for pocrun's
 * linux.sysctl and poc's --sysctl alike. Pure: whether a joined namespace is the host's is asked of the caller.
 */
import { UserError } from '../errors.js';

/** IPC-namespaced sysctls (runc's list), besides fs.mqueue.*. */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

export interface SysctlContext {
  /** Namespace names (`ipc`, `net`, `uts`) the container has, new or joined. */
  has: (ns: string) => boolean;
  /** The path it joins for a namespace, if any. */
  joinPath: (ns: string) => string | undefined;
  /** Whether a namespace file is the runtime's own (the host's) namespace of that type. */
  isHostNamespace: (ns: string, path: string) => boolean;
  /** spec.hostname is set. */
  hostnameSet: boolean;
  /** How errors name the setting (poc: `--sysctl KEY`); config.json's JSON pointer by default. */
  where?: string;
}

/**
 * Only sysctls of a namespace the container has its own of may be set: anything else would change the host.
 * Keys may use `/` instead of `.` (for names with dots, such as an interface eth0.100).
 */
export function checkSysctl(key: string, ctx: SysctlContext): void {
  const where = ctx.where ?? `config.json /linux/sysctl/${key}`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.\/:@+-]*$/.test(key) || key.split(/[./]/).some((part) => part === '' || part === '..')) {
    throw new UserError(`${where}: ${JSON.stringify(key)} is not a sysctl name`);
  }
  const dotted = key.includes('/') ? key.replaceAll('/', '.') : key;
  const own = (ns: string, what: string) => {
    if (!ctx.has(ns)) throw new UserError(`${where}: sysctl ${key} belongs to the ${what} namespace, and the container has none of its own`);
    const path = ctx.joinPath(ns);
    if (path && ctx.isHostNamespace(ns, path)) {
      throw new UserError(`${where}: sysctl ${key} would change the host: the container joins the host's ${what} namespace (${path})`);
    }
  };
  if (IPC_SYSCTLS.has(dotted) || dotted.startsWith('fs.mqueue.')) return own('ipc', 'IPC');
  if (dotted.startsWith('net.')) return own('net', 'network');
  if (dotted === 'kernel.hostname' || dotted === 'kernel.domainname') {
    own('uts', 'UTS');
    if (dotted === 'kernel.hostname' && ctx.hostnameSet) {
      throw new UserError(`${where}: conflicts with /hostname: set the hostname there`);
    }
    return;
  }
  throw new UserError(`${where}: sysctl ${key} is not namespaced: setting it would change the host (allowed: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*, kernel.hostname, kernel.domainname)`);
}
