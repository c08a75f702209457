#!/bin/sh
# Rootless quick start, as root: install what is missing and build (setup.sh), then, as an ordinary user (the one
# named, or a user pocrun-demo made for it and removed afterwards), write a rootless config (pocrun spec --rootless)
# and run a busybox container with pocrun.
#   ./scripts/quickstart-rootless.sh [USER]
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart-rootless: run it as root (it installs packages and runs the demo as USER)" >&2; exit 1; }
./scripts/setup.sh
user=${1:-}
made=
if [ -z "$user" ]; then
  user=pocrun-demo
  if ! id "$user" >/dev/null 2>&1; then useradd -M -d /nonexistent -s /bin/sh -U "$user"; made=1; fi
fi
id "$user" >/dev/null
dir=$(mktemp -d /tmp/pocrun-quickstart-rootless.XXXXXX)
cleanup() {
  rm -rf "$dir"
  [ -z "$made" ] || userdel -f "$user"
}
trap cleanup EXIT
chmod 755 "$dir"
# The binaries where the user can run them (this checkout may be in root's home): the front finds the TypeScript
# program and the helper beside itself.
mkdir "$dir/bin" && install -m 755 dist/pocrun dist/pocrun-ts dist/pocrun-init "$dir/bin/"
mkdir -m 700 "$dir/run" "$dir/bundle"
bundles/make-busybox-rootfs.sh "$dir/bundle/rootfs" >/dev/null
chown -R "$user:" "$dir/run" "$dir/bundle"
uid=$(id -u "$user")
runtime_dir=/run/user/$uid
[ -d "$runtime_dir" ] && [ "$(stat -c %u "$runtime_dir")" = "$uid" ] || runtime_dir=$dir/run
echo "quickstart: as $user: pocrun spec --rootless; pocrun run (state under $runtime_dir/pocrun)"
runuser -u "$user" -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$dir" USER="$user" XDG_RUNTIME_DIR="$runtime_dir" sh -c '
  set -e
  cd "$1/bundle"
  "$1/bin/pocrun" spec --rootless
  sed -i "s/\"terminal\": true/\"terminal\": false/; s/\"sh\"$/\"sh\", \"-c\", \"echo Hello from a rootless pocrun container: uid \$(id -u) inside, uid_map \$(cat \/proc\/self\/uid_map)\"/" config.json
  "$1/bin/pocrun" run "quickstart-$$"
' sh "$dir"
