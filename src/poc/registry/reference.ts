/**
 * Image references as docker and the containers tools write them (distribution's reference grammar):
 * `[REGISTRY[:PORT]/]PATH[:TAG][@DIGEST]`. Pure: no configuration, no network.
 *
 * A first component is a registry host when it has a "." or a ":" or is "localhost", as docker decides; otherwise
 * the name is short and registries.conf says where to look (config.ts).
 */
import { PocError } from '../errors.js';

export interface Reference {
  /** The registry host (and port), as written; undefined for a short name. */
  registry?: string;
  /** The repository path inside the registry: `library/debian`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** A fully qualified reference: where to fetch from. */
export interface Qualified extends Reference {
  registry: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

export const DOCKER_HUB = 'docker.io';

/** Parses and checks a reference; the error names what is wrong with it. */
export function parseReference(text: string): Reference {
  const bad = (why: string) => new PocError(`invalid image reference ${JSON.stringify(text)}: ${why}`);
  if (text === '') throw bad('it is empty');
  if (text.length > 512) throw bad('it is too long');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`);
  }
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!HOST.test(first)) throw bad(`${JSON.stringify(first)} is not a registry host`);
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`${JSON.stringify(tag)} is not a tag (letters, digits, _ . -, at most 128)`);
  }
  const parts = rest.split('/');
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw bad(`${JSON.stringify(p)}: a repository name is lower-case letters, digits and separators . _ -`);
  }
  const ref: Reference = { repository: rest };
  if (registry !== undefined) ref.registry = registry;
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Docker Hub's official images live under library/: `docker.io/debian` is `docker.io/library/debian`. */
export function qualify(ref: Reference, registry: string): Qualified {
  const host = registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? DOCKER_HUB : registry;
  const repository = host === DOCKER_HUB && !ref.repository.includes('/') ? `library/${ref.repository}` : ref.repository;
  return { ...ref, registry: host, repository };
}

/** What the manifest is asked for: the digest if there is one, else the tag (latest by default). */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** `host/repo:tag` or `host/repo@digest`: the full text, for messages and for skopeo-like tools. */
export function formatReference(ref: Reference): string {
  const name = ref.registry ? `${ref.registry}/${ref.repository}` : ref.repository;
  if (ref.digest) return `${name}${ref.tag ? `:${ref.tag}` : ''}@${ref.digest}`;
  return `${name}:${ref.tag ?? 'latest'}`;
}

/**
 * The name an image gets in poc's store, as docker names a pulled image: Docker Hub's host and library/ dropped,
 * `:latest` dropped (poc's names mean latest without a tag), a digest kept when pulled by digest.
 */
export function storeName(ref: Qualified): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DOCKER_HUB) name = ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
  if (ref.digest) return `${name}@${ref.digest}`;
  if (ref.tag && ref.tag !== 'latest') name += `:${ref.tag}`;
  return name;
}
