// Generates src/runtime/checkpoint/generated/rpc.ts: ts-proto's encoders and decoders (plain functions over
// @bufbuild/protobuf's wire format; nothing parsed or reflected at run time) for criu's RPC messages, from
// schema/criu/rpc.proto (criu's own, MIT), with protoc (Debian's protobuf-compiler, scripts/setup.sh). Nobody
// edits the output by hand. pocrun's checkpoint speaks it to `criu swrk` (criu-rpc.ts).
//
// Why ts-proto and not protobufjs: protobufjs's runtime bundles long.js, which instantiates a WebAssembly module
// as it loads (~1 ms natively, ~40 ms in the emulated test guest, on every checkpoint); criu's messages have no
// 64-bit field that would need it. Why not protobuf-es's own generator: its messages are described by a file
// descriptor decoded at load, where ts-proto writes each message's code out.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(top, 'src/runtime/checkpoint/generated');
mkdirSync(outDir, { recursive: true });
// criu's own field names; only binary encode and decode (no JSON, no partials, no services).
const options = [
  'snakeToCamel=false', 'useOptionals=all', 'forceLong=number', 'importSuffix=.js', 'esModuleInterop=true',
  'outputJsonMethods=false', 'outputPartialMethods=false', 'outputServices=false', 'outputTypeRegistry=false',
  'outputExtensions=false', 'unrecognizedEnum=false', 'removeEnumPrefix=false',
].join(',');
execFileSync('protoc', [
  `--plugin=protoc-gen-ts_proto=${join(top, 'node_modules/.bin/protoc-gen-ts_proto')}`,
  `--ts_proto_out=${outDir}`, `--ts_proto_opt=${options}`, '-I', join(top, 'schema/criu'), 'rpc.proto',
], { stdio: 'inherit' });
