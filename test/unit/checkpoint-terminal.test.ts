import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTerminalKey, ttyKey, writeTerminalKey, TERMINAL_FILE } from '../../src/runtime/checkpoint/terminal.js';

t.test("criu's key of a tty: tty[RDEV:DEV] in hex, as criu's tty.c prints it", async (t) => {
  t.equal(ttyKey(0x8800, 0x2a), 'tty[8800:2a]', '/dev/pts/0 (136:0) of a devpts with dev 0:42');
  t.equal(ttyKey(0x8803, 0x16), 'tty[8803:16]');
});

t.test('the key beside the images: written, read back; none, or a bad one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pocrun-unit-tty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(readTerminalKey(dir), undefined, 'a checkpoint without a terminal');
  writeTerminalKey(dir, 'tty[8800:2a]');
  t.equal(readTerminalKey(dir), 'tty[8800:2a]');
  writeFileSync(join(dir, TERMINAL_FILE), '{"key":"pipe:[1]"}');
  t.throws(() => readTerminalKey(dir), /terminal\.json holds no tty key/);
  writeFileSync(join(dir, TERMINAL_FILE), '{');
  t.throws(() => readTerminalKey(dir), /terminal\.json \(written by checkpoint\)/);
});
