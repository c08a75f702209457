import { basename } from 'node:path';
import { runPocrun } from './pocrun.js';

/**
 * One binary, two programs: `poc` and `pocrun` are links to it and it dispatches on the name it was called by
 * (a Bun binary is ~100 MB; two would double that). POC_PROGRAM overrides, for running from source.
 */
const name = process.env.POC_PROGRAM ?? basename(process.argv0);
const argv = process.argv.slice(2);
const code = name === 'poc' || name.startsWith('poc-') ? await (await import('./poc.js')).runPoc(argv) : await runPocrun(argv);
process.exit(code);
