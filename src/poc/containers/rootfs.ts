/**
 * A container's rootfs: an overlayfs with the image's rootfs as the lower layer and the container's own diff/
 * and work/ directories: nothing is copied, and writes land in diff/. The monitor mounts it at start (mount(2) in
 * C: Bun has no mount call, and an exec of mount(8) costs milliseconds) and unmounts it when the init exits; poc
 * unmounts what a monitor that died or failed left mounted.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { PocError } from '../errors.js';
import { runProgram } from '../spawn.js';

async function run(argv: string[]): Promise<void> {
  const r = await runProgram(argv);
  if (r.code !== 0) throw new PocError(`${argv.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/**
 * Where poc sees a running container's files from outside: its overlay mount. Rootless, the monitor mounted it in
 * a mount namespace of its own; poc reaches it through the monitor's /proc/PID/root, below which the path is the
 * same (the namespace is a copy of the host's).
 */
export function runningRootfs(rootfs: string, rootless: boolean, monitorPid: number): string {
  return rootless ? `/proc/${monitorPid}/root${rootfs}` : rootfs;
}

/** Whether `path` is a mount point in our mount namespace. */
export function isMounted(path: string): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  return text.split('\n').some((line) => line.split(' ')[4] !== undefined && unescape(line.split(' ')[4]!) === path);
}

/** The mount options (pure); overlayfs splits lowerdir on ":" and options on ",". */
export function overlayOptions(lower: string, upper: string, work: string, rootless = false): string {
  for (const p of [lower, upper, work]) {
    if (/[,:\\]/.test(p)) throw new PocError(`overlay path ${p} contains one of , : \\ which overlayfs cannot take`);
  }
  // In a user namespace overlayfs cannot write trusted.* attributes: userxattr keeps its own in user.overlay.*.
  return `lowerdir=${lower},upperdir=${upper},workdir=${work}${rootless ? ',userxattr' : ''}`;
}

/**
 * Readies the directories of the monitor's mount and returns its options. A mount an interrupted start left
 * behind goes first: the monitor mounts afresh, never on top of it.
 */
export async function prepareRootfs(o: { lower: string; upper: string; work: string; target: string; rootless?: boolean }): Promise<string> {
  const options = overlayOptions(o.lower, o.upper, o.work, o.rootless);
  await unmountRootfs(o.target);
  for (const d of [o.upper, o.work, o.target]) mkdirSync(d, { recursive: true });
  return options;
}

/** No error if not mounted; a busy mount is detached (its last user is a process about to die). */
export async function unmountRootfs(target: string): Promise<void> {
  if (!isMounted(target)) return;
  try {
    await run(['umount', target]);
  } catch {
    if (isMounted(target)) await run(['umount', '-l', target]);
  }
}
