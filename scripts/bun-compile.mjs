// How dist/pocrun-ts is compiled (scripts/build.mjs), in one place: bench/startup.mjs compiles its probes the same
// way, so that what it measures is what the binary pays.
// --minify --bytecode: the plain build spends 9-18 ms parsing its bundle before the first line runs (README, Architecture).
// ESM with --splitting: each command's code (and poc bench's charting library) is a chunk loaded when used.
// No .env or bunfig.toml autoloading: engines run the runtime in the bundle directory, and a file there must
// never change how pocrun behaves (POCRUN_INIT, for one, names the helper it executes).
export const BUN_COMPILE_FLAGS = [
  'build', '--compile', '--minify', '--bytecode', '--format=esm', '--splitting', '--target=bun-linux-x64',
  '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
];
