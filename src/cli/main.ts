import { basename } from 'node:path';
import { runPocrun } from './pocrun.js';
import { trace, traceTo } from '../runtime/trace.js';
import { stderr } from '../common/output.js';

/**
 * One binary, two programs: `poc` and `pocrun` are links to it and it dispatches on the name it was called by
 * (a Bun binary is ~100 MB; two would double that). POC_PROGRAM overrides, for running from source.
 */
async function main(): Promise<number> {
  const name = process.env.POC_PROGRAM ?? basename(process.argv0);
  const argv = process.argv.slice(2);
  if (name === 'poc' || name.startsWith('poc-')) {
    const { runPoc } = await import('./poc.js');
    return runPoc(argv);
  }
  return runPocrun(argv);
}

traceTo(stderr);
trace('main');
main().then((code) => process.exit(code));
