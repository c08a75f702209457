import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { readProcStat } from '../../src/common/proc.js';
import { checkName, newId, pocPaths, readJson, readRecords, readTextOr, readdirOr, resolveRef, shortId, withLock, writeJsonAtomic } from '../../src/poc/poc-root.js';
import { listVolumes } from '../../src/poc/volumes/volume-store.js';
import { isStaleHolder } from '../../src/common/lock-file.js';

const work = mkdtempSync(join(tmpdir(), 'poc-store-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

t.test('layout under POC_ROOT', async (t) => {
  t.equal(pocPaths({ root: '/r' }).images, '/r/images');
  const saved = process.env.POC_ROOT;
  process.env.POC_ROOT = '/from/env';
  t.equal(pocPaths().network, '/from/env/network');
  delete process.env.POC_ROOT;
  t.equal(pocPaths().root, '/var/lib/poc');
  if (saved !== undefined) process.env.POC_ROOT = saved;
});

t.test('ids', async (t) => {
  const id = newId();
  t.match(id, /^[0-9a-f]{64}$/);
  t.not(newId(), id);
  t.equal(shortId(id), id.slice(0, 12));
});

t.test('names are checked before they become paths', async (t) => {
  const ok: Array<['container' | 'image', string]> = [
    ['container', 'web-1'],
    ['container', 'My_App.2'],
    ['image', 'busybox'],
    ['image', 'library/debian:bookworm'],
    ['image', 'my-app:v1.2_rc'],
  ];
  for (const [kind, name] of ok) t.equal(checkName(kind, name), name, `${kind} ${name}`);
  const bad: Array<['container' | 'image', string, RegExp]> = [
    ['container', '', /container name cannot be empty/],
    ['container', '../x', /invalid container name "\.\.\/x"/],
    ['container', '-x', /invalid container name/],
    ['container', 'a/b', /invalid container name/],
    ['image', 'Busybox', /invalid image name "Busybox": use lower-case/],
    ['image', '../etc', /invalid image name/],
    ['image', 'a//b', /invalid image name/],
    ['image', 'x'.repeat(300), /too long/],
  ];
  for (const [kind, name, message] of bad) t.throws(() => checkName(kind, name), { name: 'PocError', message }, `${kind} ${name}`);
});

t.test('references: name, then id, then unique id prefix', async (t) => {
  const recs = [
    { id: 'abc123' + '0'.repeat(58), name: 'web' },
    { id: 'abd456' + '0'.repeat(58), name: 'db' },
    { id: 'ffff00' + '0'.repeat(58), name: 'abc' },
  ];
  t.equal(resolveRef('container', recs, 'db').name, 'db');
  t.equal(resolveRef('container', recs, 'abc').name, 'abc', 'a name wins over an id prefix');
  t.equal(resolveRef('container', recs, 'abc1').name, 'web');
  t.throws(() => resolveRef('container', recs, 'ab'), /container id prefix "ab" is ambiguous: it matches 2 containers/);
  t.throws(() => resolveRef('image', recs, 'zzz'), /no such image: zzz/);
});

t.test('JSON files are written whole', async (t) => {
  const p = join(work, 'x.json');
  writeJsonAtomic(p, { a: 1 });
  t.same(readJson(p), { a: 1 });
  t.same(readJson(join(work, 'missing.json'), { d: 1 }), { d: 1 });
  writeFileSync(p, '{broken');
  t.throws(() => readJson(p), /x\.json is not valid JSON/);
});

t.test("a store's records: one per entry, not those being made or removed, nor one not readable yet", async (t) => {
  const dir = join(work, 'records');
  t.same(readRecords(dir, 'r.json'), [], 'no directory yet: no records');
  for (const name of ['a', 'b', '.tmp-1', '.rm-2']) {
    mkdirSync(join(dir, name), { recursive: true });
    writeJsonAtomic(join(dir, name, 'r.json'), { name });
  }
  mkdirSync(join(dir, 'half'));
  writeFileSync(join(dir, 'half', 'r.json'), '{"na');
  mkdirSync(join(dir, 'empty'));
  t.same(readRecords<{ name: string }>(dir, 'r.json').map((r) => r.name).sort(), ['a', 'b']);
  // As a volume is while `poc volume rm` removes its tree: renamed .rm-<random>, its record still inside.
  const root = join(work, 'vol-root');
  for (const [entry, Name] of [['v1', 'v1'], ['.rm-0a1b2c', 'v2']]) {
    mkdirSync(join(root, 'volumes', entry!, '_data'), { recursive: true });
    writeJsonAtomic(join(root, 'volumes', entry!, 'volume.json'), { Name, Driver: 'local' });
  }
  t.same(listVolumes({ root }).map((v) => v.Name), ['v1'], 'a volume being removed is not listed');
  t.equal(readTextOr(join(dir, 'a', 'r.json')), '{\n  "name": "a"\n}\n');
  t.equal(readTextOr(join(dir, 'nope')), '');
  t.equal(readTextOr(join(dir, 'nope'), 'x'), 'x');
  t.same(readdirOr(join(dir, 'nope')), []);
  t.same(readdirOr(join(dir, 'a')), ['r.json']);
});

t.test('the lock serialises its holders', async (t) => {
  const root = join(work, 'lock1');
  let inside = 0;
  let most = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      withLock('x', async () => {
        inside++;
        most = Math.max(most, inside);
        await sleep(5);
        order.push(i);
        inside--;
      }, { root }),
    ),
  );
  t.equal(most, 1, 'never two holders at once');
  t.equal(order.length, 8);
  t.notOk(existsSync(join(root, 'locks/x.lock')), 'released');
  await t.rejects(withLock('x', () => { throw new Error('boom'); }, { root }), /boom/);
  t.notOk(existsSync(join(root, 'locks/x.lock')), 'released after an error too');
});

t.test('a lock left by a dead process is taken over; a live holder makes us wait', async (t) => {
  const root = join(work, 'lock2');
  mkdirSync(join(root, 'locks'), { recursive: true });
  const path = join(root, 'locks/y.lock');
  t.ok(isStaleHolder('999999999 1\n'), 'no such pid');
  t.ok(isStaleHolder(`${process.pid} 1\n`), 'pid reused: other start time');
  t.notOk(isStaleHolder(`${process.pid} ${readProcStat(process.pid)!.startTime}\n`));
  writeFileSync(path, '999999999 12345\n');
  t.equal(await withLock('y', () => 'got it', { root }), 'got it');
  writeFileSync(path, `${process.ppid} ${readProcStat(process.ppid)!.startTime}\n`);
  await t.rejects(withLock('y', () => 1, { root, timeoutMs: 100 }), new RegExp(`timed out waiting for lock .*y\\.lock \\(held by pid ${process.ppid}\\)`));
  t.equal(readFileSync(path, 'utf8').split(' ')[0], String(process.ppid), 'a live holder\'s lock is left alone');
});
