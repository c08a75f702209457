/**
 * poc build's BuildKit features beyond the classic builder, as root, in a temporary POC_ROOT with the busybox image:
 * RUN --mount=type=tmpfs and a writable bind (what the command saw, and that nothing of either stays), cache mount
 * sharing between concurrent builds (private gets its own while another holds it; locked waits its turn, seen
 * through what each command found in the cache, not through timing), --platform and the automatic platform ARGs,
 * RUN --mount=type=ssh through a real ssh-agent, and the bad inputs (one error, nothing left behind).
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { hostPlatform } from '../../src/poc/registry/manifest.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'builds need root');
  process.exit(0);
}

const top = join(import.meta.dirname, '../..');
const POC = join(top, 'dist/poc');
const work = mkdtempSync('/tmp/poc-buildkit-it-');
const root = join(work, 'root');
const env: NodeJS.ProcessEnv = { ...process.env, POC_ROOT: root };
delete env.POC_PROGRAM;
t.teardown(() => rmSync(work, { recursive: true, force: true }));

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function poc(args: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(POC, args, { encoding: 'utf8', timeout: 120_000, env, ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** A build run in the background: its end, and its standard error so far. */
function pocAsync(args: string[]): { done: Promise<Result>; stderr: () => string } {
  const p = spawn(POC, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
  return {
    done: new Promise((resolve) => p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: out, stderr: err });
    })),
    stderr: () => err,
  };
}

/** Polls `cond` every 50 ms (up to 60 s): a step the test waits for, never a duration it assumes. */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function ok(t: Test, args: string[]): string {
  const r = poc(args);
  t.equal(r.status, 0, `poc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** What a build or a failed one may leave: mounts under the root, scratch directories, pocrun containers. */
function residue(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(root)) out.push(`mount ${line.split(' ')[4]}`);
  for (const d of ['layers', 'images']) {
    const dir = join(root, d);
    if (existsSync(dir)) for (const n of readdirSync(dir)) if (n.startsWith('.')) out.push(`${d}/${n}`);
  }
  const runtime = join(root, 'runtime');
  if (existsSync(runtime)) for (const n of readdirSync(runtime)) if (n.startsWith('poc-build-')) out.push(`runtime/${n}`);
  const caches = join(root, 'build-cache-mounts');
  if (existsSync(caches)) for (const n of readdirSync(caches)) if (/\.(lock|tmp-.*)$/.test(n) || (n.endsWith('.users') && readdirSync(join(caches, n)).length)) out.push(`build-cache-mounts/${n}`);
  return out;
}

const layers = () => (existsSync(join(root, 'layers')) ? readdirSync(join(root, 'layers')).sort() : []);

const ctx = join(work, 'ctx');
mkdirSync(join(ctx, 'src/sub'), { recursive: true });
writeFileSync(join(ctx, 'src/a.txt'), 'alpha\n');
writeFileSync(join(ctx, 'src/sub/b.txt'), 'beta\n');

const build = (name: string, dockerfile: string, extra: string[] = []) => {
  const file = join(ctx, `Dockerfile.${name}`);
  writeFileSync(file, dockerfile);
  return poc(['build', '--network', 'none', '-t', name, '-f', file, ...extra, ctx]);
};

t.test('RUN --mount=type=tmpfs and a writable bind: what the command saw, and nothing of either kept', async (t) => {
  const b = build('mounts', [
    'FROM busybox',
    'RUN --mount=type=tmpfs,target=/scratch,size=1m --mount=type=bind,source=src,target=/mnt/src,rw \\',
    "    grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4 | sed 's/,.*size=/ size=/; s/,.*//' > /seen \\",
    '    && echo data > /scratch/file && cat /scratch/file >> /seen \\',
    '    && (dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; echo "dd: $?" >> /seen) \\',
    '    && echo changed > /mnt/src/a.txt && rm /mnt/src/sub/b.txt && cat /mnt/src/a.txt >> /seen && ls /mnt/src/sub | wc -l >> /seen',
    // The next step's bind shows the context again: the writes went with the step that made them.
    'RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt /mnt/src/sub/b.txt > /again; ls /scratch 2>> /again; true',
  ].join('\n') + '\n');
  t.equal(b.status, 0, b.stderr);
  const r = poc(['run', '--rm', '--network', 'none', 'mounts', 'sh', '-c', 'cat /seen /again; ls -d /scratch /mnt 2>&1']);
  t.equal(
    r.stdout,
    'tmpfs rw size=1024k\ndata\ndd: 1\nchanged\n0\nalpha\nbeta\nls: /scratch: No such file or directory\n' +
      'ls: /scratch: No such file or directory\nls: /mnt: No such file or directory\n',
    `a tmpfs of 1m (a 2m write fails), a writable bind, the writes gone by the next step, no mount point kept: ${r.stderr}`,
  );
  t.equal(readFileSync(join(ctx, 'src/a.txt'), 'utf8'), 'alpha\n', "the context's file is untouched");
  t.ok(existsSync(join(ctx, 'src/sub/b.txt')), "and the context's deleted file is still there");
  t.equal(residue().join(', '), '', 'nothing left');
});

t.test('cache mount sharing between concurrent builds: private gets its own, locked waits its turn', async (t) => {
  const cache = 'id=shr,target=/c';
  t.equal(build('seed', `FROM busybox\nRUN --mount=type=cache,${cache} echo seed > /c/seed\n`).status, 0, 'the cache seeded');
  // A holder keeps the cache until the test releases it: a file the test writes into the cache's directory.
  const hold = (name: string) =>
    `touch /c/${name}-holding && i=0; while [ ! -e /c/release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; rm -f /c/${name}-holding /c/release`;
  const holders = () => {
    const dir = join(root, 'build-cache-mounts');
    return existsSync(dir) ? readdirSync(dir).flatMap((d) => ['a', 'b'].map((n) => join(dir, d, `${n}-holding`))).filter((f) => existsSync(f)) : [];
  };
  const start = (name: string, dockerfile: string) => {
    writeFileSync(join(ctx, `Dockerfile.${name}`), dockerfile);
    return pocAsync(['build', '--network', 'none', '-t', name, '-f', join(ctx, `Dockerfile.${name}`), ctx]);
  };
  const a = start('holder', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=locked ls /c > /a-saw; ${hold('a')}\n`);
  await until('the first build to hold the cache', () => holders().length === 1);
  // private, while A holds it: a fresh, empty instance at once, which it holds in turn.
  const b = start('private', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=private ls -A /c > /b-saw; ${hold('b')}\n`);
  await until('the private build to hold an instance of its own', () => holders().length === 2);
  // locked, while both are held: it waits (and says so), then runs on the first one freed.
  const c = start('locked', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=locked ls /c > /c-saw\n`);
  await until('the locked build to wait', () => /waiting for the cache mount shr \(sharing=locked\)/.test(c.stderr()));
  t.equal(holders().length, 2, 'both holders still hold their instance while it waits');
  for (const f of holders()) writeFileSync(join(f, '../release'), '');
  const results = await Promise.all([a.done, b.done, c.done]);
  for (const r of results) t.equal(r.status, 0, r.stderr);
  const seen = ['holder', 'private', 'locked'].map((n) => ok(t, ['run', '--rm', '--network', 'none', n, 'sh', '-c', 'cat /*-saw']));
  t.equal(seen[0], 'seed\n', 'the first build had the seeded cache');
  t.equal(seen[1], '', 'the private one an empty one of its own');
  t.notMatch(seen[2], /holding/, `the locked one ran after a holder was done: ${JSON.stringify(seen[2])}`);
  t.equal(residue().join(', '), '', 'no lock or use left');
});
