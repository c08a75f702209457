/**
 * A container's rootfs: an overlayfs with the image's rootfs as the lower layer and the container's own diff/
 * and work/ directories: nothing is copied, and writes land in diff/. Mounted at start, unmounted when the
 * container stops or is removed.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { PocError } from '../../errors.js';

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (err) reject(new PocError(`${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve();
    });
  });
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

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
export function overlayOptions(lower: string, upper: string, work: string): string {
  for (const p of [lower, upper, work]) {
    if (/[,:\\]/.test(p)) throw new PocError(`overlay path ${p} contains one of , : \\ which overlayfs cannot take`);
  }
  return `lowerdir=${lower},upperdir=${upper},workdir=${work}`;
}

export async function mountRootfs(o: { lower: string; upper: string; work: string; target: string }): Promise<void> {
  if (isMounted(o.target)) return;
  for (const d of [o.upper, o.work, o.target]) mkdirSync(d, { recursive: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', overlayOptions(o.lower, o.upper, o.work), o.target]);
}

/** No error if not mounted; a busy mount is detached (its last user is a process about to die). */
export async function unmountRootfs(target: string): Promise<void> {
  if (!isMounted(target)) return;
  try {
    await run('umount', [target]);
  } catch {
    if (isMounted(target)) await run('umount', ['-l', target]);
  }
}
