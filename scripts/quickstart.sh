#!/bin/sh
# Quick start: install what is missing, build, and run a busybox container with pocrun, then with poc.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
bundle=$(mktemp -d /tmp/pocrun-quickstart.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
bundles/make-busybox-rootfs.sh "$bundle/rootfs"
dist/pocrun spec --bundle "$bundle"
# No terminal (so that it runs without one too), and a friendly command.
node -e '
const f = process.argv[1], c = JSON.parse(require("fs").readFileSync(f));
c.process.terminal = false;
c.process.args = ["sh", "-c", "echo Hello from a pocrun container: hostname $(hostname), pid $$; ls /"];
require("fs").writeFileSync(f, JSON.stringify(c, null, 2));' "$bundle/config.json"
echo "quickstart: pocrun run (bundle $bundle)"
dist/pocrun run --bundle "$bundle" "quickstart-$$"
# The same with poc: the busybox image (built offline on first use), an overlayfs rootfs, the bridge network.
echo "quickstart: poc run"
dist/poc run --rm busybox sh -c 'echo Hello from a poc container: hostname $(hostname), address $(ip -4 -o addr show eth0 | cut -d" " -f7)'
