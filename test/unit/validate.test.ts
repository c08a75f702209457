import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, validateConfig } from '../../src/spec/validate.js';
import { defaultSpec } from '../../src/spec/default.js';

const dir = join(import.meta.dirname, '../../schema/test/config');

t.test('every good example of the spec validates', async (t) => {
  for (const f of readdirSync(join(dir, 'good'))) {
    t.doesNotThrow(() => parseConfig(readFileSync(join(dir, 'good', f))), f);
  }
});

t.test('every bad example of the spec is refused with a JSON pointer', async (t) => {
  const expected: Record<string, RegExp> = {
    'freebsd-vnet-disable.json': /^config\.json (\/\S*|is not valid JSON)/,
    'invalid-json.json': /^config\.json (\/\S*|is not valid JSON)/,
    'linux-hugepage.json': /^config\.json \/linux\/resources\/hugepageLimits\/0\/\S*: /,
    'linux-netdevice.json': /^config\.json \/linux\/netDevices\/\S*: /,
    'linux-rdma.json': /^config\.json \/linux\/resources\/rdma\/mlx5_1\/hcaHandles: must be an integer/,
  };
  for (const f of readdirSync(join(dir, 'bad'))) {
    t.throws(() => parseConfig(readFileSync(join(dir, 'bad', f))), { name: 'PocrunError', message: expected[f] ?? /^config\.json / }, f);
  }
});

t.test('messages name the pointer and the rule', async (t) => {
  const base = defaultSpec();
  const cases: [string, unknown, RegExp][] = [
    ['missing ociVersion', { ...base, ociVersion: undefined }, /^config\.json \/ociVersion: required$/],
    ['args not an array', { ...base, process: { ...base.process, args: 'sh' } }, /^config\.json \/process\/args: must be an array$/],
    ['uid a string', { ...base, process: { ...base.process, user: { uid: 'root', gid: 0 } } }, /^config\.json \/process\/user\/uid: must be an integer$/],
    ['root not an object', { ...base, root: 'rootfs' }, /^config\.json \/root: must be an object$/],
    ['namespace type unknown', { ...base, linux: { namespaces: [{ type: 'pidd' }] } }, /^config\.json \/linux\/namespaces\/0\/type: must be one of /],
  ];
  for (const [name, doc, re] of cases) t.throws(() => validateConfig(doc), { message: re }, name);
});

t.test('bytes that are not a config are refused before parsing', async (t) => {
  t.throws(() => parseConfig(Buffer.from('{"ociVersion": "1.0.0",')), /not valid JSON/);
  t.throws(() => parseConfig(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/);
  t.throws(() => parseConfig(Buffer.from('['.repeat(200000) + ']'.repeat(200000))), /config\.json/);
  t.throws(() => parseConfig(Buffer.alloc(17 * 1024 * 1024, 0x20)), /too large/);
  t.throws(() => parseConfig(Buffer.from('[]')), /config\.json \/: must be an object/);
});

t.test('the default spec is valid', async (t) => {
  t.doesNotThrow(() => validateConfig(defaultSpec()));
});
