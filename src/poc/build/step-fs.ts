/**
 * A build step that changes files: an overlayfs whose lower layers are the image so far (its base rootfs and the
 * layers built on it) and whose upper directory, once the step is done, is the step's layer. RUN runs its
 * command there with pocrun; COPY, ADD and WORKDIR write into the mount. Everything the step made (the mount,
 * the container, the scratch directory) is gone when it returns or throws; only a stored layer stays.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import type { Spec } from '../../spec/generated/config.js';
import { defaultSpec, OCI_VERSION } from '../../spec/default.js';
import { CONTAINER_ID_ANNOTATION, DEFAULT_CAPABILITIES, type ProcessUser } from '../containers/bundle.js';
import { unmountRootfs } from '../containers/rootfs.js';
import { binaries, childEnv } from '../containers/runtime.js';
import { runtimeRoot } from '../containers/container-store.js';
import { layerScratch, storeLayer, type LayerRef } from '../images/layers.js';
import { runProgram, spawnProgram } from '../spawn.js';
import { pocRoot, randomHex, type RootOptions } from '../poc-root.js';
import { existsInRoot } from '../root-path.js';

/** What a step's overlay stacks: the lower directories, the topmost first. */
export type Lowers = string[];

/** overlayfs options: metacopy and redirect_dir off, so that the upper directory holds whole files and real renames. */
export function overlayMountOptions(lowers: Lowers, upper?: { upper: string; work: string }): string {
  for (const p of [...lowers, upper?.upper ?? '', upper?.work ?? '']) {
    if (/[,:\\]/.test(p)) throw new PocError(`overlay path ${p} contains one of , : \\ which overlayfs cannot take`);
  }
  const base = `lowerdir=${lowers.join(':')}`;
  if (!upper) return base;
  return `${base},upperdir=${upper.upper},workdir=${upper.work},redirect_dir=off,index=off,metacopy=off`;
}

export async function mountOverlay(target: string, options: string): Promise<void> {
  if (options.length > 4000) throw new PocError('too many layers for one overlayfs mount (the options exceed a page); squash some steps');
  const r = await runProgram(['mount', '-t', 'overlay', 'overlay', '-o', options, target]);
  if (r.code !== 0) throw new PocError(`mount the build's overlay at ${target}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/**
 * Runs `fn` on a writable view of the image so far (at `merged`) and stores what it changed as a layer. Null when
 * it changed nothing (a step with an empty layer).
 */
export async function fsStep(lowers: Lowers, fn: (merged: string, scratch: string) => Promise<void>, opts: RootOptions = {}): Promise<LayerRef | null> {
  const scratch = layerScratch(opts);
  const upper = join(scratch, 'diff');
  const work = join(scratch, 'work');
  const merged = join(scratch, 'merged');
  const empty = join(scratch, 'empty');
  for (const d of [upper, work, merged, empty]) mkdirSync(d, { mode: 0o755 });
  try {
    await mountOverlay(merged, overlayMountOptions(lowers.length ? lowers : [empty], { upper, work }));
    try {
      await fn(merged, scratch);
    } finally {
      await unmountRootfs(merged);
    }
    if (readdirSync(upper).length === 0) return null;
    return await storeLayer(upper, opts);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A read-only view of an image so far (a stage that COPY --from reads), unmounted by the returned function. */
export async function readOnlyView(lowers: Lowers, opts: RootOptions = {}): Promise<{ path: string; close: () => Promise<void> }> {
  if (lowers.length === 1) return { path: lowers[0]!, close: async () => {} };
  const scratch = layerScratch(opts);
  const path = join(scratch, 'merged');
  mkdirSync(path);
  try {
    await mountOverlay(path, overlayMountOptions(lowers.length ? lowers : [scratch]));
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  return {
    path,
    close: async () => {
      await unmountRootfs(path);
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

export interface RunCommand {
  args: string[];
  env: string[];
  cwd: string;
  user: ProcessUser;
  network: 'none' | 'host' | 'bridge';
  /** `Dockerfile:7`, for the error. */
  where: string;
  /** The instruction as written, for the error. */
  source: string;
  /** More mounts for the command (RUN --mount, a heredoc script), after the default ones. */
  mounts?: NonNullable<Spec['mounts']>;
}

/** On the bridge: poc's network hooks (as a container's), and the files the image has to hold /etc/resolv.conf. */
export interface BridgeHooks {
  poc: string;
  env: string[];
  /** Host files to bind over the image's (only where the image has the file: a mount point made would be in the layer). */
  binds: Array<{ source: string; destination: string }>;
}

/** The config.json of a RUN step (pure): docker's capabilities for a build, no terminal, its own cgroup. */
export function runSpec(rootfs: string, id: string, c: RunCommand, bridge?: BridgeHooks): Spec {
  const base = defaultSpec();
  const hook = (action: string) => ({ path: bridge!.poc, args: ['poc', 'hook', 'network', action], env: bridge!.env, timeout: 60 });
  return {
    ...base,
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: c.user,
      args: c.args,
      env: c.env,
      cwd: c.cwd,
      capabilities: { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES },
      rlimits: base.process!.rlimits!,
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: 'poc-build',
    mounts: [
      ...base.mounts!,
      ...(bridge?.binds ?? []).map((b) => ({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', 'ro'] })),
      ...(c.mounts ?? []),
    ],
    ...(bridge
      ? {
          // No teardown hook: the veth goes with the step's network namespace, and the address is released after.
          hooks: { createRuntime: [hook('setup')] },
          annotations: { [CONTAINER_ID_ANNOTATION]: id },
        }
      : {}),
    linux: {
      ...base.linux!,
      cgroupsPath: `/poc/${id}`, // beside the containers, in poc's own cgroup
      namespaces: base.linux!.namespaces!.filter((ns) => !(ns.type === 'network' && c.network === 'host')),
    },
  };
}

/** Runs a RUN step's command in `merged` with `pocrun run`; its output goes to ours. */
export async function runCommand(merged: string, scratch: string, c: RunCommand, opts: RootOptions = {}): Promise<void> {
  const id = `poc-build-${randomHex(8)}`;
  const bundle = join(scratch, 'bundle');
  mkdirSync(bundle);
  const { pocrun, poc } = binaries();
  let bridge: BridgeHooks | undefined;
  let code: number;
  if (c.network === 'bridge') {
    // An address on poc's default network for the step's life, wired by the same hooks as a container's.
    const { allocateContainerNetwork, writeContainerEtcFiles } = await import('../network/index.js');
    await allocateContainerNetwork({ ...opts, containerId: id, hostname: 'poc-build' });
    const etc = join(scratch, 'etc');
    mkdirSync(etc);
    writeContainerEtcFiles(etc, { hostname: 'poc-build', mode: 'bridge' });
    bridge = {
      poc,
      env: [`POC_ROOT=${pocRoot(opts)}`, 'POC_PROGRAM=poc', `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`],
      // The image's files, its links resolved within it (root-path.ts): an /etc/hosts linking out names no host file.
      binds: ['resolv.conf', 'hosts'].filter((f) => existsInRoot(merged, `/etc/${f}`)).map((f) => ({ source: join(etc, f), destination: `/etc/${f}` })),
    };
  }
  try {
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(runSpec(merged, id, c, bridge)));
    const p = spawnProgram([pocrun, '--root', runtimeRoot(opts), 'run', '--bundle', bundle, id], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: childEnv(opts),
    });
    code = await p.exited;
  } finally {
    // As a removed container's: its nftables chain too (the veth went with the step's network namespace).
    if (bridge) await (await import('../network/index.js')).teardownContainerNetwork({ ...opts, containerId: id, release: true });
  }
  if (code !== 0) {
    // pocrun run deletes its container as it exits; a pocrun that was killed may not have.
    await runProgram([pocrun, '--root', runtimeRoot(opts), 'delete', '--force', id], childEnv(opts)).catch(() => undefined);
    throw new PocError(`${c.where}: ${c.source.length > 80 ? `${c.source.slice(0, 77)}...` : c.source}: the command exited with status ${code}`);
  }
}
