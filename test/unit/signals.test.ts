import t from 'tap';
import { parseSignal, signalName } from '../../src/vocabulary/signals.js';

t.test('signals are accepted as runc accepts them', async (t) => {
  const cases: [string, number][] = [
    ['TERM', 15], ['SIGTERM', 15], ['term', 15], ['15', 15], ['9', 9], ['KILL', 9], ['SIGKILL', 9],
    ['HUP', 1], ['USR1', 10], ['WINCH', 28], ['RTMIN', 34], ['RTMIN+3', 37], ['RTMAX', 64], ['64', 64],
  ];
  for (const [text, n] of cases) t.equal(parseSignal(text), n, text);
});

t.test('a signal that does not exist is refused with its name', async (t) => {
  for (const text of ['SIGFOO', 'FOO', '0', '65', '-1', '', 'RTMIN+40', '1.5']) {
    t.throws(() => parseSignal(text), { name: 'UserError' }, JSON.stringify(text));
  }
  t.throws(() => parseSignal('SIGFOO'), /unknown signal "SIGFOO"/);
});

t.test('numbers are named back', async (t) => {
  t.equal(signalName(15), 'SIGTERM');
  t.equal(signalName(9), 'SIGKILL');
});

t.test("every name Node knows on Linux is parsed to Node's number, and shared numbers are named by the first name", async (t) => {
  for (const [name, n] of Object.entries((await import('node:os')).constants.signals)) {
    t.equal(parseSignal(name), n, name);
    t.equal(parseSignal(name.slice(3).toLowerCase()), n, name);
  }
  t.equal(signalName(6), 'SIGABRT');
  t.equal(signalName(29), 'SIGIO');
  t.equal(signalName(40), '40');
});
