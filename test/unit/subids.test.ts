import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { highestMappedId, hostIdOf, parseSubids, readSubids, rootlessMappings } from '../../src/subids.js';

const FILE = [
  '# comment',
  'alice:100000:65536',
  '',
  '1001:200000:1000',
  'bob:165536:65536',
  'alice:300000:10',
  'broken line',
  'alice:x:10',
  'alice:400000:0',
  'alice:4294967290:100',
].join('\n');

t.test('the ranges of a user, by name or by uid, in file order; bad lines skipped', async (t) => {
  const table: Array<[string, { name?: string; id: number }, Array<{ start: number; count: number }>]> = [
    ['by name', { name: 'alice', id: 1000 }, [{ start: 100000, count: 65536 }, { start: 300000, count: 10 }]],
    ['by uid', { name: 'carol', id: 1001 }, [{ start: 200000, count: 1000 }]],
    ['none', { name: 'dave', id: 1002 }, []],
    ['no name given', { id: 1001 }, [{ start: 200000, count: 1000 }]],
  ];
  for (const [what, owner, want] of table) t.same(parseSubids(FILE, owner), want, what);
});

t.test('mappings as rootless podman makes them: root is the user, then the ranges', async (t) => {
  t.same(rootlessMappings(1000, [{ start: 100000, count: 65536 }, { start: 300000, count: 10 }]), [
    { containerID: 0, hostID: 1000, size: 1 },
    { containerID: 1, hostID: 100000, size: 65536 },
    { containerID: 65537, hostID: 300000, size: 10 },
  ]);
  const single = rootlessMappings(1000, []);
  t.same(single, [{ containerID: 0, hostID: 1000, size: 1 }], 'no ranges: the single-id mapping');
  t.equal(highestMappedId(single), 0);
  const maps = rootlessMappings(1000, [{ start: 100000, count: 65536 }]);
  t.equal(highestMappedId(maps), 65536);
  t.equal(hostIdOf(maps, 0), 1000);
  t.equal(hostIdOf(maps, 1), 100000);
  t.equal(hostIdOf(maps, 1000), 100999);
  t.equal(hostIdOf(maps, 65537), undefined);
});

t.test('reading the files: a missing file means no ranges', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'subids-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'subuid'), 'alice:100000:65536\n');
  t.same(readSubids(join(dir, 'subuid'), { name: 'alice', id: 1000 }), [{ start: 100000, count: 65536 }]);
  t.same(readSubids(join(dir, 'missing'), { name: 'alice', id: 1000 }), []);
});
