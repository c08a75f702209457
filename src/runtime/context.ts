import { stderr } from '../cli/output.js';
import { appendFileSync } from 'node:fs';
import { detectCgroups, type CgroupDriver } from '../cgroups/index.js';
import { Store } from './store.js';

export type LogFormat = 'text' | 'json';

/** What every command gets from the global flags: where state lives and where to log. */
export class RuntimeContext {
  readonly store: Store;
  private driver?: CgroupDriver;

  constructor(
    readonly root: string,
    readonly logFile: string | undefined,
    readonly logFormat: LogFormat,
    readonly debugEnabled: boolean,
  ) {
    this.store = new Store(root);
  }

  /** Detected on first use: state, start and kill of a container rarely need it. */
  cgroups = (): CgroupDriver => (this.driver ??= detectCgroups());

  log(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
    if (level === 'debug' && !this.debugEnabled) return;
    if (level !== 'error' && (level !== 'debug' || !this.logFile)) stderr(`pocrun: ${level}: ${msg}\n`);
    if (!this.logFile) return;
    const time = new Date().toISOString();
    const line = this.logFormat === 'json'
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      appendFileSync(this.logFile, `${line}\n`);
    } catch {
      /* a log that cannot be written must not hide the error being logged */
    }
  }
}
