import { stderr } from '../cli/output.js';

const enabled = process.env.POCRUN_TRACE === '1';
const t0 = performance.now();

/** POCRUN_TRACE=1 prints milliseconds since start-up at the steps of a command: where the time goes. */
export function trace(label: string): void {
  if (enabled) stderr(`pocrun trace ${(performance.now() - t0).toFixed(2)} ms: ${label}\n`);
}
