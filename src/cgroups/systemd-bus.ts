/**
 * The systemd cgroup driver's D-Bus calls, made by dist/pocrun-systemd (src/native/pocrun-systemd.c: sd-bus from
 * libsystemd, as crun uses it). Why a C program and not a JavaScript D-Bus library: measured in the compiled
 * binary, dbus-next took 7-8 ms to load (it pulls in node:crypto and an XML parser) and ~3 ms more to connect
 * and say Hello, against ~2 ms for the whole run of pocrun-systemd; and nothing of it is loaded by a container
 * that does not use systemd.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PocrunError } from '../errors.js';
import { encodeProperties, type UnitProperty } from './systemd-properties.js';


/** Where pocrun-systemd lives: beside the pocrun binary, or where POCRUN_SYSTEMD says (tests, development). */
export function busProgram(): string {
  const path = process.env.POCRUN_SYSTEMD ?? join(dirname(process.execPath), 'pocrun-systemd');
  if (!existsSync(path)) throw new PocrunError(`${path} is missing: run "npm run build" (or set POCRUN_SYSTEMD)`);
  return path;
}

interface SpawnSyncResult {
  exitCode: number | null;
  stderr: Uint8Array;
}

function runBus(args: string[]): void {
  const bun = (globalThis as { Bun?: { spawnSync(cmd: string[], opts: object): SpawnSyncResult } }).Bun;
  if (!bun) throw new PocrunError('the systemd driver runs in the compiled binary (dist/pocrun)');
  const res = bun.spawnSync([busProgram(), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (res.exitCode === 0) return;
  const text = new TextDecoder().decode(res.stderr).trim() || `pocrun-systemd exited with status ${res.exitCode}`;
  throw new PocrunError(text.split('\n').join('; '));
}

/** StartTransientUnit, then waits for its job (30 s at most, runc's bound): an error names the unit and systemd's reason. */
export function startUnit(unit: string, props: readonly UnitProperty[]): void {
  try {
    runBus(['start', unit, ...encodeProperties(props)]);
  } catch (err) {
    throw (err as PocrunError).wrap(`systemd: start unit ${unit}`);
  }
}

/** SetUnitProperties (runtime: gone at the next boot, as the unit is). */
export function setUnitProperties(unit: string, props: readonly UnitProperty[]): void {
  if (props.length === 0) return;
  try {
    runBus(['set', unit, ...encodeProperties(props)]);
  } catch (err) {
    throw (err as PocrunError).wrap(`systemd: set properties of unit ${unit}`);
  }
}

/** StopUnit and waits until systemd has unloaded it; a unit already gone is fine. */
export function stopUnit(unit: string): void {
  try {
    runBus(['stop', unit]);
  } catch (err) {
    throw (err as PocrunError).wrap(`systemd: stop unit ${unit}`);
  }
}
