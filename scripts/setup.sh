#!/bin/sh
# Installs what pocrun and poc need on a fresh Debian/Ubuntu machine (apt packages, npm packages) and builds
# them. Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential pkg-config libseccomp-dev libsystemd-dev busybox-static iproute2 nftables iptables runc crun \
  sysbench hyperfine debootstrap tar gzip procps util-linux file podman conmon netavark containerd skopeo umoci \
  containernetworking-plugins catatonit librsvg2-bin libyajl-dev python3 qemu-system-x86 qemu-utils mmdebstrap e2fsprogs coreutils \
  strace docker-registry apache2-utils openssl zstd uidmap buildah slirp4netns passt dnsmasq-base fuse-overlayfs \
  podman-compose aardvark-dns openssh-client protobuf-compiler"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing apt packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  [ "$(id -u)" = 0 ] && SUDO= || SUDO=sudo
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Rootless containers open /dev/net/tun (slirp4netns) and /dev/fuse (fuse-overlayfs) as their user: udev's default
# rules make both 0666, which a machine without udev (a container, some VMs) lacks.
for dev in /dev/net/tun /dev/fuse; do
  if [ -c $dev ] && [ "$(stat -c %a $dev)" != 666 ] && [ -n "${SUDO:-}$(id -u | grep -x 0)" ]; then
    echo "setup: $dev mode 0666, as udev's default rule makes it"
    ${SUDO:-} chmod 0666 $dev
  fi
done

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building"
npm run -s build
