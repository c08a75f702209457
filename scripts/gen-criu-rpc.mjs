// Generates src/runtime/checkpoint/generated/criu-rpc.js and .d.ts: protobufjs static code (encoders and decoders
// as plain functions, no schema parsed at run time) for criu's RPC messages, from schema/criu/rpc.proto (criu's
// own, MIT). Nobody edits the output by hand. pocrun's checkpoint speaks it to `criu swrk` (criu-rpc.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(top, 'src/runtime/checkpoint/generated');
const bin = (name) => join(top, 'node_modules/.bin', name);
mkdirSync(outDir, { recursive: true });
const js = join(outDir, 'criu-rpc.js');
// Only what pocrun uses: binary encoding of criu_req and decoding of criu_resp (no JSON conversion, no
// verification of plain objects, no length-delimited framing: each seqpacket message is one message), with criu's
// own field names.
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--no-verify', '--no-convert', '--no-delimited', '--no-typeurl',
  '--force-number', '--keep-case', '-o', js, join(top, 'schema/criu/rpc.proto')], { stdio: 'inherit' });
execFileSync(bin('pbts'), ['-o', join(outDir, 'criu-rpc.d.ts'), js], { stdio: 'inherit' });
