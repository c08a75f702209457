/**
 * Which platform a build is for (pure). poc runs no emulation: a RUN step runs on this machine, so a build is for
 * this machine's platform (registry/manifest.ts's hostPlatform, which pull uses to choose from an index), and
 * `--platform` or `FROM --platform` naming another is refused before anything is pulled or made. What BuildKit
 * sets for a Dockerfile is kept: the automatic platform ARGs, in the global scope (FROM lines, and a stage's
 * `ARG NAME` without a value).
 */
import { PocError } from '../errors.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, type Platform } from '../registry/manifest.js';

/**
 * The platform `text` names (an --platform value, or FROM --platform's after expansion), which must be this
 * machine's; `what` names it in the error.
 */
export function buildPlatform(text: string, what: string, host: Platform = hostPlatform()): Platform {
  const p = parsePlatform(text, host);
  if (p === null) throw new PocError(`${what}: ${JSON.stringify(text)} is not a platform (os/arch[/variant], as linux/amd64)`);
  const mine = normalizePlatform(host);
  if (formatPlatform(p) !== formatPlatform(mine)) {
    throw new PocError(`${what}: poc builds only for this machine's platform, ${formatPlatform(mine)}, not ${formatPlatform(p)} (it runs no emulation)`);
  }
  return p;
}

/** BuildKit's automatic platform ARGs: BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT and the same for TARGET. */
export function platformArgs(build: Platform, target: Platform): Array<[string, string]> {
  const args = (prefix: string, p: Platform): Array<[string, string]> => {
    const n = normalizePlatform(p);
    return [
      [`${prefix}PLATFORM`, formatPlatform(n)],
      [`${prefix}OS`, n.os],
      [`${prefix}ARCH`, n.architecture],
      [`${prefix}VARIANT`, n.variant ?? ''],
    ];
  };
  return [...args('BUILD', build), ...args('TARGET', target)];
}
