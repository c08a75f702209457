/**
 * `--security-opt seccomp=FILE`: a profile in Docker's format (moby's profiles/seccomp/default.json and those
 * written for it) or plain OCI linux.seccomp, turned into the linux.seccomp of config.json (pure). Docker's
 * additions are resolved here, for this container, as dockerd resolves them: `archMap` gives the native
 * architecture and its sub-architectures; a rule's `includes` (all of its capabilities, one of its
 * architectures, at least its minKernel) and `excludes` (any of its capabilities or architectures) decide
 * whether the rule applies. pocrun checks everything else (names, actions, operators) and says which field
 * is wrong.
 */
import type { Spec } from '../../spec/generated/config.js';
import { PocError } from '../errors.js';

type Seccomp = NonNullable<NonNullable<Spec['linux']>['seccomp']>;
type Rule = NonNullable<Seccomp['syscalls']>[number];

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface DockerRule extends Rule {
  includes?: Filter;
  excludes?: Filter;
  comment?: string;
}

export interface DockerProfile extends Omit<Seccomp, 'syscalls'> {
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls?: DockerRule[];
}

export interface ProfileContext {
  /** The container's capabilities (CAP_*). */
  caps: readonly string[];
  /** Go's name of this machine's architecture, as Docker profiles write it: amd64, arm64, ... */
  arch: string;
  /** The host kernel's release (4.8.0-...), for minKernel. */
  kernel: string;
}

/** `--security-opt seccomp=FILE`'s text → the profile, when it looks like one. */
export function parseProfile(text: string, file: string): unknown {
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch (err) {
    throw new PocError(`--security-opt seccomp=${file}: not JSON (${(err as Error).message})`);
  }
  if (!profile || typeof profile !== 'object' || Array.isArray(profile) || typeof (profile as DockerProfile).defaultAction !== 'string') {
    throw new PocError(`--security-opt seccomp=${file}: not a seccomp profile (it needs a defaultAction)`);
  }
  // The lists this module walks; pocrun checks the rest of the profile, field by field.
  for (const key of ['archMap', 'syscalls'] as const) {
    const value = (profile as DockerProfile)[key];
    if (value !== undefined && (!Array.isArray(value) || value.some((x) => !x || typeof x !== 'object'))) {
      throw new PocError(`--security-opt seccomp=${file}: ${key} must be a list of objects`);
    }
  }
  return profile;
}

/** SCMP_ARCH_* of each Go architecture name. */
const NATIVE_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', '386': 'SCMP_ARCH_X86',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
};

/** Node's process.arch → Go's name. */
export function goArch(nodeArch: string): string {
  return ({ x64: 'amd64', ia32: '386' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

function kernelAtLeast(release: string, min: string): boolean {
  const parts = (v: string) => v.split(/[.-]/).slice(0, 2).map((n) => Number.parseInt(n, 10) || 0);
  const [a = 0, b = 0] = parts(release);
  const [c = 0, d = 0] = parts(min);
  return a !== c ? a > c : b >= d;
}

function applies(rule: DockerRule, ctx: ProfileContext): boolean {
  const inc = rule.includes ?? {};
  const exc = rule.excludes ?? {};
  if (inc.caps?.length && !inc.caps.every((c) => ctx.caps.includes(c))) return false;
  if (inc.arches?.length && !inc.arches.includes(ctx.arch)) return false;
  if (inc.minKernel && !kernelAtLeast(ctx.kernel, inc.minKernel)) return false;
  if (exc.caps?.some((c) => ctx.caps.includes(c))) return false;
  if (exc.arches?.includes(ctx.arch)) return false;
  return true;
}

/** The profile as parseProfile read it → linux.seccomp for this container. */
export function seccompFromProfile(profile: unknown, ctx: ProfileContext): Seccomp {
  const { archMap, syscalls, ...rest } = profile as DockerProfile;
  const out: Seccomp = { ...rest };
  if (archMap) {
    const native = archMap.find((a) => a.architecture === NATIVE_ARCH[ctx.arch]);
    out.architectures = native ? [native.architecture, ...(native.subArchitectures ?? [])] as Seccomp['architectures'] : [];
  }
  if (syscalls) {
    out.syscalls = syscalls.filter((r) => applies(r, ctx)).map(({ includes: _i, excludes: _e, comment: _c, ...rule }) => rule);
  }
  return out;
}
