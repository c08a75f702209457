/**
 * Health checks (pure): the image's HEALTHCHECK (Config.Healthcheck, as docker writes it) merged with
 * `--health-cmd/--health-interval/--health-timeout/--health-retries/--health-start-period` and `--no-healthcheck`,
 * and the monitor's flags for the result. The monitor (src/native/poc-monitor.c) runs the command through
 * `pocrun exec` on its schedule and keeps State.Health (health.json) as docker shapes it.
 */
import { PocError } from '../errors.js';
import { goDurationNs } from '../../common/duration.js';

/** docker's Config.Healthcheck: durations in nanoseconds; 0 or absent means the default. */
export interface HealthConfig {
  /** ["NONE"], ["CMD", argv...], ["CMD-SHELL", command]; [] inherits the image's. */
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** docker's defaults. */
export const HEALTH_DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, retries: 3 } as const;

export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  noHealthcheck?: boolean;
}

/** A Go duration ("30s", "1m30s", "500ms") → nanoseconds. */
export function parseDuration(text: string, flag: string): number {
  const ns = goDurationNs(text);
  if (ns === undefined) throw new PocError(`invalid ${flag} ${JSON.stringify(text)}: use a duration such as 30s, 1m30s or 500ms`);
  return ns;
}

/** The flags' part of the health check (undefined: none given; the image's applies). */
export function parseHealthFlags(f: HealthFlags): HealthConfig | undefined {
  const given = f.healthCmd !== undefined || f.healthInterval !== undefined || f.healthTimeout !== undefined || f.healthRetries !== undefined || f.healthStartPeriod !== undefined;
  if (f.noHealthcheck) {
    if (given) throw new PocError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!given) return undefined;
  const hc: HealthConfig = { Test: f.healthCmd !== undefined ? ['CMD-SHELL', f.healthCmd] : [] };
  if (f.healthCmd !== undefined && f.healthCmd.trim() === '') throw new PocError('invalid --health-cmd: the command is empty');
  const duration = (text: string | undefined, flag: string) => {
    if (text === undefined) return undefined;
    const ns = parseDuration(text, flag);
    if (ns !== 0 && ns < 1e6) throw new PocError(`invalid ${flag} ${text}: at least 1ms`);
    return ns;
  };
  const interval = duration(f.healthInterval, '--health-interval');
  const timeout = duration(f.healthTimeout, '--health-timeout');
  const start = duration(f.healthStartPeriod, '--health-start-period');
  if (interval !== undefined) hc.Interval = interval;
  if (timeout !== undefined) hc.Timeout = timeout;
  if (start !== undefined) hc.StartPeriod = start;
  if (f.healthRetries !== undefined) {
    if (!/^\d+$/.test(f.healthRetries)) throw new PocError(`invalid --health-retries ${JSON.stringify(f.healthRetries)}: use a whole number`);
    hc.Retries = Number(f.healthRetries);
  }
  return hc;
}

/** The image's health check with the container's over it, as docker merges them; undefined: no check. */
export function effectiveHealthcheck(image: HealthConfig | undefined, flags: HealthConfig | undefined): HealthConfig | undefined {
  if (!image && !flags) return undefined;
  const merged: HealthConfig = { ...(image ?? { Test: [] }), ...(flags ?? {}) };
  merged.Test = flags && flags.Test.length > 0 ? flags.Test : (image?.Test ?? []);
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) {
    if (flags?.[k] === undefined && image?.[k] !== undefined) merged[k] = image[k];
  }
  if (merged.Test.length === 0 || merged.Test[0] === 'NONE') return undefined;
  if (merged.Test[0] !== 'CMD' && merged.Test[0] !== 'CMD-SHELL') throw new PocError(`the image's healthcheck test ${JSON.stringify(merged.Test)} starts with neither CMD nor CMD-SHELL`);
  if (merged.Test.length < 2) throw new PocError(`the healthcheck test ${JSON.stringify(merged.Test)} has no command`);
  return merged;
}

/** The argv run in the container for a check. */
export function healthArgv(hc: HealthConfig): string[] {
  return hc.Test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', hc.Test[1]!] : hc.Test.slice(1);
}

const ms = (ns: number | undefined, fallback: number) => (ns ? Math.max(1, Math.round(ns / 1e6)) : fallback);

/** The monitor's flags: the schedule in milliseconds, then the command, one --health-arg each. */
export function healthMonitorArgs(hc: HealthConfig | undefined, healthFile: string): string[] {
  if (!hc) return [];
  return [
    '--health-file', healthFile,
    '--health-interval', String(ms(hc.Interval, HEALTH_DEFAULTS.interval)),
    '--health-timeout', String(ms(hc.Timeout, HEALTH_DEFAULTS.timeout)),
    '--health-start-period', String(ms(hc.StartPeriod, HEALTH_DEFAULTS.startPeriod)),
    '--health-retries', String(hc.Retries || HEALTH_DEFAULTS.retries),
    ...healthArgv(hc).flatMap((a) => ['--health-arg', a]),
  ];
}
