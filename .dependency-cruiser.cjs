/**
 * The layers of README's Architecture ("Layers"), checked by test/unit/layers.test.ts (npx depcruise src).
 *   bottom   src/errors.ts, src/subids.ts, src/common/, src/vocabulary/, src/spec/: what both programs share
 *   pocrun   src/plan/ (pure) <- src/cgroups/ <- src/runtime/
 *   poc      src/poc/: drives pocrun through its commands, as an engine drives runc
 *   top      src/cli/: the two command lines, which hand the runtime its output
 */
const BOTTOM = '^src/(errors\\.ts|subids\\.ts|common/|vocabulary/|spec/)';
const SYSTEM_MODULES = '^(node:)?(fs|fs/promises|child_process|os|net|dgram|dns|http|https|tls|tty|worker_threads|cluster)$|^bun$';

module.exports = {
  forbidden: [
    {
      name: 'bottom-depends-on-nothing-above',
      comment: 'The shared bottom layer is neither pocrun\'s nor poc\'s: it imports only itself.',
      severity: 'error',
      from: { path: BOTTOM },
      to: { path: '^src/', pathNot: BOTTOM },
    },
    {
      name: 'plan-is-pure',
      comment: 'src/plan turns config.json into a plan without looking at the host: host facts are its input (HostFacts).',
      severity: 'error',
      from: { path: '^src/plan/' },
      to: { path: ['^src/(cgroups|runtime|poc|cli)/', SYSTEM_MODULES] },
    },
    {
      name: 'cgroups-below-runtime',
      severity: 'error',
      from: { path: '^src/cgroups/' },
      to: { path: '^src/(runtime|poc|cli)/' },
    },
    {
      name: 'runtime-below-cli',
      comment: 'The runtime prints through the output the command line hands in (RuntimeContext.output), never its writers.',
      severity: 'error',
      from: { path: '^src/runtime/' },
      to: { path: ['^src/(poc|cli)/', '^src/common/output\\.ts$'] },
    },
    {
      name: 'poc-drives-pocrun-through-its-commands',
      comment: 'poc runs pocrun as an engine runs runc: no runtime, cgroup or plan module, no look into its state.',
      severity: 'error',
      from: { path: '^src/poc/' },
      to: { path: '^src/(runtime|cgroups|plan|cli)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import the checker cannot resolve would hide a crossing.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true, path: '^[.]' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/(spec|runtime/checkpoint)/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
