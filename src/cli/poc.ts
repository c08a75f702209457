import { stdout, stderr } from './output.js';
import { PocError } from '../errors.js';
import { parseFlags } from './args.js';
import { reportError } from './report.js';
import { VERSION } from '../spec/generated/version.js';

function usage(): string {
  return `poc: run containers like docker, on the pocrun runtime

Usage: poc COMMAND [flags] [arguments]
`;
}

export async function runPoc(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const global = parseFlags(argv, { boolean: ['debug', 'help', 'version'], alias: { h: 'help', v: 'version' } }, '', true);
    if (global.flags.version) {
      stdout(`poc version ${VERSION}\n`);
      return 0;
    }
    const [name] = global.args;
    if (!name || global.flags.help) {
      (name || global.flags.help ? stdout : stderr)(usage());
      return global.flags.help ? 0 : 1;
    }
    throw new PocError(`unknown command ${JSON.stringify(name)}; "poc --help" lists them`);
  } catch (err) {
    return reportError('poc', err, { debug });
  }
}
