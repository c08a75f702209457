/**
 * Checkpoint and restore of a container with a terminal (config.json process.terminal), through criu's command
 * line. The init's stdio is the slave of a pty whose master the engine holds (it came over the console socket at
 * create), outside the dumped tree. runc hands that case to criu's RPC (orphan-pts-master: criu makes a new pair
 * at restore and sends the master back over the RPC socket, which its command line cannot do); pocrun uses what
 * the command line has:
 * - checkpoint: the slave is an external tty (`--external tty[RDEV:DEV]`, its key written beside the images), and
 *   /dev/console, which create bound from that slave, an external mount;
 * - restore: the helper makes a new pair on the host's /dev/ptmx (`pocrun-init --console-pair SOCKET`), the
 *   runtime opens its slave and gives it to criu in place of the old one (`--inherit-fd fd[N]:tty[RDEV:DEV]`, and
 *   the slave bound on /dev/console), then the helper sends the master to --console-socket as create does.
 * Inside the container the terminal is then a pty of the host's devpts (as the engine's end always was); a new
 * `exec -t` gets one of the container's own /dev/pts as before.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocrunError, wrapError } from '../../errors.js';
import { bunRuntime, helperPath, parseHelperMessage } from '../init-helper.js';

/** Written beside criu's images when the init's stdio is a terminal: criu's key of the external tty. */
export const TERMINAL_FILE = 'terminal.json';

/** Unix98 pty slaves: majors 136-143 (UNIX98_PTY_SLAVE_MAJOR and the ones after it). */
const isPtySlave = (rdev: number) => {
  const major = Math.floor(rdev / 256) & 0xfff;
  return major >= 136 && major <= 143;
};

/**
 * criu's key of the pty slave that is the init's stdio (`tty[RDEV:DEV]` in hex, as criu's tty.c names it), or
 * undefined when none of its fds 0-2 is a pty slave.
 */
export function initTerminalKey(pid: number): string | undefined {
  for (const fd of [0, 1, 2]) {
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      if (st.isCharacterDevice() && isPtySlave(st.rdev)) return ttyKey(st.rdev, st.dev);
    } catch {
      /* closed */
    }
  }
  return undefined;
}

export function ttyKey(rdev: number, dev: number): string {
  return `tty[${rdev.toString(16)}:${dev.toString(16)}]`;
}

export function writeTerminalKey(imagePath: string, key: string): void {
  writeFileSync(join(imagePath, TERMINAL_FILE), JSON.stringify({ key }), { mode: 0o600 });
}

/** The external tty's key of a checkpoint, or undefined when it was taken without a terminal. */
export function readTerminalKey(imagePath: string): string | undefined {
  const file = join(imagePath, TERMINAL_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const key = (JSON.parse(readFileSync(file, 'utf8')) as { key?: unknown }).key;
    if (typeof key === 'string' && /^tty\[[0-9a-f]+:[0-9a-f]+\]$/.test(key)) return key;
  } catch (err) {
    throw wrapError(`restore: ${file} (written by checkpoint)`, err);
  }
  throw new PocrunError(`restore: ${file} holds no tty key (tty[RDEV:DEV])`);
}

interface PipedSubprocess {
  stdin: { end(): void };
  stdout: ReadableStream<Uint8Array>;
  exited: Promise<number>;
  kill(signal?: number | string): void;
}

/** The new terminal of a restored container: its slave, opened, and its path on the host. */
export interface NewConsole {
  fd: number;
  path: string;
}

/**
 * A new pty pair whose master goes to the engine's console socket (`pocrun-init --console-pair`): resolves once
 * the master is sent, with the slave opened here. A socket that does not answer is the helper's error, as
 * create reports it.
 */
export async function newConsole(socket: string): Promise<NewConsole> {
  const proc = bunRuntime().spawn([helperPath(), '--console-pair', socket], { stdio: ['pipe', 'pipe', 'inherit'] }) as unknown as PipedSubprocess;
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const readLine = async () => {
    while (!text.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const at = text.indexOf('\n');
    const line = (at < 0 ? text : text.slice(0, at)).trim();
    text = at < 0 ? '' : text.slice(at + 1);
    return line;
  };
  const failure = async (line: string) => {
    proc.kill('SIGKILL');
    await proc.exited;
    const message = parseHelperMessage(line);
    return message.kind === 'error' ? message.error : new PocrunError(`restore: --console-socket ${socket}: the helper made no terminal${line ? `: ${line}` : ''}`);
  };
  const first = await readLine();
  if (!first.startsWith('pts /dev/pts/')) throw await failure(first);
  const path = first.slice('pts '.length);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  } catch (err) {
    await failure('');
    throw wrapError(`restore: open the new terminal ${path}`, err);
  }
  proc.stdin.end();
  const last = await readLine();
  if ((await proc.exited) !== 0) {
    closeSync(fd);
    throw await failure(last);
  }
  return { fd, path };
}
