#!/bin/sh
# Rootless quick start, run as root: install what is missing and build (setup.sh), then, as an ordinary user, run
# a busybox container with pocrun (pocrun spec --rootless, then pocrun run) and one with poc (as rootless podman).
# The user is USER if named, else "pocdemo", made here (useradd gives it subuid and subgid ranges) and kept for
# you to go on with (remove it with "userdel -r pocdemo").
# usage: scripts/quickstart-rootless.sh [USER]
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "$0: run it as root (it installs packages and may make the user)" >&2; exit 1; }
./scripts/setup.sh
user=${1:-pocdemo}
if ! id "$user" >/dev/null 2>&1; then
  [ -z "${1:-}" ] || { echo "$0: no such user: $user" >&2; exit 1; }
  echo "quickstart: making the user $user"
  useradd -m -s /bin/sh "$user"
fi
grep -q "^$user:" /etc/subuid 2>/dev/null || echo "quickstart: $user has no range in /etc/subuid: only root will exist in its containers"
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
# A login session's runtime directory, as logind would make it.
run=/run/user/$uid
mkdir -p "$run" && chown "$user:" "$run" && chmod 700 "$run"
# The binaries where the user can run them (a checkout under /root is not reachable by others): the front finds
# the TypeScript program and the helpers beside itself.
bin=$PWD/dist
if ! runuser -u "$user" -- test -x "$bin/poc"; then
  bin=/usr/local/lib/pocrun
  mkdir -p "$bin" && cp -a dist/. "$bin/"
  echo "quickstart: installed the binaries in $bin"
fi
as_user() { runuser -u "$user" -- env -i HOME="$home" USER="$user" XDG_RUNTIME_DIR="$run" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

bundle=$(mktemp -d /tmp/pocrun-quickstart-rootless.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
chmod 755 "$bundle"
bundles/make-busybox-rootfs.sh "$bundle/rootfs" >/dev/null
chown -R "$user:" "$bundle"
echo "quickstart: as $user: pocrun spec --rootless; pocrun run (state under $run/pocrun)"
as_user sh -c '
  set -e
  cd "$2"
  "$1/pocrun" spec --rootless
  sed -i "s/\"terminal\": true/\"terminal\": false/; s/\"sh\"$/\"sh\", \"-c\", \"echo Hello from a rootless pocrun container: uid \$(id -u) inside, uid_map \$(cat \/proc\/self\/uid_map)\"/" config.json
  "$1/pocrun" run "quickstart-$$"
' sh "$bin" "$bundle"

echo "quickstart: poc run as $user (store $home/.local/share/poc, runtime directory $run/poc)"
as_user "$bin/poc" run --rm busybox sh -c 'echo Hello from a rootless poc container: uid $(id -u) inside, $(cat /proc/self/uid_map | head -1 | tr -s " " | cut -d" " -f3) outside, address $(ip -4 -o addr show tap0 | tr -s " " | cut -d" " -f4)'
echo "quickstart: as $user, with XDG_RUNTIME_DIR=$run: $bin/poc run -d -p 8080:80 busybox httpd -f -p 80"
