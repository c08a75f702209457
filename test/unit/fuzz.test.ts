import t from 'tap';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { validateConfig } from '../../src/spec/validate.js';
import { compileCreatePlan, type CreatePlanOptions } from '../../src/plan/compile.js';
import type { HostFacts } from '../../src/plan/process-attrs.js';
import { stepMisfit } from '../../src/vocabulary/steps.js';
import { encodePlan } from '../../src/plan/wire.js';
import { defaultSpec } from '../../src/spec/default.js';
import { parseFlags } from '../../src/cli/args.js';
import { RUN_FLAGS, joinNegativeValues, runFlags } from '../../src/cli/poc.js';
import { resolveRunFlags } from '../../src/poc/containers/options.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

/**
 * Bounded fuzzing: every input ends in a valid result or a UserError (a clean message), never another exception
 * (a crash with a stack trace). Seeds are fixed so that a failure is reproducible; POC_FUZZ_RUNS scales the run.
 */
const RUNS = Number(process.env.POC_FUZZ_RUNS ?? 1500);
const planOptions: CreatePlanOptions = {
  bundle: '/b', stateDir: '/run/pocrun/f', noPivot: false, preserveFds: 0, cgroupProcsFiles: [],
  cgroupMounts: [{ name: 'memory', controllers: 'memory', hostPath: '/sys/fs/cgroup/memory/x', links: [] }],
  cgroupVersion: 1, mode: 'detach', host: PLAIN_HOST,
};

const goodDir = join(import.meta.dirname, '../../schema/test/config/good');
const seeds: unknown[] = [defaultSpec(), ...readdirSync(goodDir).map((f) => JSON.parse(readFileSync(join(goodDir, f), 'utf8')))];

/** The host is an input of the plan too (it never probes): every combination of what it may say. */
const hostFacts = fc.record({
  apparmor: fc.boolean(), selinux: fc.boolean(), hasKcore: fc.boolean(), runtimeInUserNamespace: fc.boolean(), joinsHostNamespaces: fc.boolean(),
});

type Json = unknown;
/** A mutation at a random path: delete it, replace it with arbitrary JSON, or add a key next to it. */
const mutation = fc.record({
  path: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
  kind: fc.constantFrom('delete', 'replace', 'add'),
  value: fc.jsonValue({ maxDepth: 3 }),
  key: fc.constantFrom('args', 'path', 'type', 'options', 'destination', 'uid', 'cwd', 'namespaces', 'x', 'seccomp', 'rlimits', 'devices', 'hooks', 'timeout'),
});

function mutate(doc: Json, m: { path: number[]; kind: string; value: Json; key: string }): Json {
  const copy = structuredClone(doc) as Json;
  let node: Json = copy;
  for (let i = 0; i < m.path.length; i++) {
    if (node === null || typeof node !== 'object') return copy;
    const keys = Object.keys(node as object);
    if (keys.length === 0) break;
    const key = keys[m.path[i]! % keys.length]!;
    const last = i === m.path.length - 1;
    const container = node as Record<string, Json>;
    if (last || typeof container[key] !== 'object' || container[key] === null) {
      if (m.kind === 'delete') delete container[key];
      else if (m.kind === 'replace') container[key] = m.value;
      else container[m.key] = m.value;
      return copy;
    }
    node = container[key];
  }
  return copy;
}

function cleanOutcome(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof UserError) return true;
    throw err;
  }
}

t.test('config.json → validation → plan: a valid plan or a clean error, for mutated spec documents', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 }), hostFacts, (seed, ms, facts) => {
      const doc = ms.reduce(mutate, seed);
      const host: HostFacts = {
        security: () => ({ apparmor: facts.apparmor, selinux: facts.selinux }),
        isHostNamespace: () => facts.joinsHostNamespaces,
        hasKcore: facts.hasKcore,
        runtimeInUserNamespace: facts.runtimeInUserNamespace,
      };
      return cleanOutcome(() => {
        const { steps } = compileCreatePlan(validateConfig(doc), { ...planOptions, host });
        // Every step as pocrun-init's table (from the same definition) would take it.
        const misfits = steps.map(stepMisfit).filter(Boolean);
        if (misfits.length) throw new Error(`steps that do not fit src/vocabulary/steps.ts: ${misfits.join('; ')}`);
        encodePlan(steps);
      });
    }),
    { numRuns: RUNS, seed: 20261129 },
  );
  t.pass(`${RUNS} mutated configs`);
});

t.test('poc run flags → container options: clean errors for arbitrary argv', async (t) => {
  const flagWords = ['-d', '-i', '-t', '--rm', '--name', '-e', '--env-file', '-v', '-w', '-u', '-p', '--network', '-m', '--cpus', '--pids-limit', '--read-only', '--cap-add', '--cap-drop', '--entrypoint', '--hostname', '--bogus', '--', '-'];
  const word = fc.oneof(fc.constantFrom(...flagWords), fc.string({ maxLength: 12 }), fc.constantFrom('busybox', 'sh', '512m', '1.5', '-1', '80:80', '0:70000', '/tmp:/x:ro', 'ALL', 'NET_ADMIN', 'none', 'host', 'x=1', '12qb'));
  fc.assert(
    fc.property(fc.array(word, { maxLength: 10 }), (argv) =>
      cleanOutcome(() => {
        const parsed = parseFlags(joinNegativeValues(argv, RUN_FLAGS), RUN_FLAGS, 'run', true);
        if (parsed.args.length === 0) return;
        resolveRunFlags(runFlags(parsed), {
          readFile: () => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); },
          hostEnv: {},
          cpuCount: 2,
          systemdRunning: false,
        });
      }),
    ),
    { numRuns: RUNS, seed: 20261129 },
  );
  t.pass(`${RUNS} argument lists`);
});
