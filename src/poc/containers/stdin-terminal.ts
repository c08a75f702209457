/**
 * -i with -t relays poc's standard input into the container's terminal, which is a terminal's job: from a pipe or
 * a file the end of the input is not the end a shell on the pty sees (a line-editing shell reads the pty in raw
 * mode, where the EOF character the relay sends is one more keystroke), so the command hangs. Refused before
 * anything is made, as docker's CLI refuses it (cli/streams In.CheckTty: -i and -t, not detached, stdin not a
 * terminal; -t alone with a pipe is allowed), with its words.
 */
import { isatty } from 'node:tty';
import { PocError } from '../errors.js';

export function checkStdinTerminal(o: { interactive: boolean; tty: boolean; detach: boolean }, stdinIsTerminal = isatty(0)): void {
  if (o.interactive && o.tty && !o.detach && !stdinIsTerminal) {
    throw new PocError('the input device is not a TTY: -i with -t needs a terminal on standard input (without -t, piped input is passed on)');
  }
}
