#!/bin/sh
# Builds, or finds already built, the cgroup v2 test guest: Debian 12 (systemd PID 1, pure cgroup v2, kernel 6.1)
# made offline with mmdebstrap from the host's apt mirror, with the engines, the runtimes and the host's node.
# Prints the image's directory (vmlinuz, initrd.img, rootfs.img) on stdout; progress goes to stderr.
#
# The image is cached outside the checkout under $POC_GUEST_CACHE (default /var/cache/pocrun-guest), in a
# directory named after a hash of its recipe (this script, the files it copies in, the node binary), so a change
# to any of them builds a new one. Concurrent callers build it once (flock); it is built in a temporary directory
# and renamed into place, so a half-built image is never seen.
#
# usage: scripts/guest/image.sh [--print-hash]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${POC_GUEST_CACHE:-/var/cache/pocrun-guest}

die() { echo "guest image: $*" >&2; exit 1; }

# What the guest holds. Recommends are not installed: everything the tests use is named here.
PACKAGES="systemd systemd-sysv udev dbus kmod initramfs-tools linux-image-amd64 e2fsprogs mount util-linux \
  procps psmisc iproute2 nftables iptables file tar gzip xz-utils zstd python3 libstdc++6 ca-certificates \
  runc crun podman conmon golang-github-containers-common netavark aardvark-dns catatonit uidmap \
  containerd containernetworking-plugins umoci skopeo libseccomp2 libyajl2 criu busybox-static \
  sysbench hyperfine"
# The initramfs needs only what mounts the root disk (MODULES=list: 7 MB instead of 36).
MODULES="virtio_pci virtio_blk virtio_console ext4 crc32c_generic 9pnet_virtio 9p"
# Units that would only cost boot time in a throwaway test machine. containerd is only disabled: tests start
# their own daemons, and may start the packaged one.
DISABLE="apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  containerd.service podman-auto-update.timer podman-restart.service podman-clean-transient.timer \
  dpkg-db-backup.timer"
SIZE=8G

node=$(command -v node) || die "node not found on the host (the guest gets a copy of it)"
[ -d /usr/lib/node_modules/npm ] || die "npm not found in /usr/lib/node_modules/npm (the guest gets a copy of it)"

recipe_hash() {
  {
    cat "$0"
    for f in "$here"/rootfs/*; do echo "$f"; cat "$f"; done
    "$node" --version
    sha256sum "$node" | cut -d' ' -f1
    cat /etc/apt/sources.list.d/debian.sources 2>/dev/null || true
  } | sha256sum | cut -c1-16
}
hash=$(recipe_hash)
[ "${1:-}" = --print-hash ] && { echo "$hash"; exit 0; }

image=$cache/$hash
if [ -f "$image/rootfs.img" ]; then echo "$image"; exit 0; fi

[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap, device nodes); run scripts/setup.sh as root"
for tool in mmdebstrap mkfs.ext4 flock; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh"
done
mkdir -p "$cache"

# One builder at a time per recipe; the others wait here and then find it built.
exec 9>"$cache/$hash.lock"
flock 9
if [ -f "$image/rootfs.img" ]; then echo "$image"; exit 0; fi

build=$(mktemp -d "$cache/.build-$hash-XXXXXX")
trap 'rm -rf "$build"' EXIT
chmod 755 "$build"
tree=$build/tree
start=$(date +%s)
echo "guest image: building $image (mmdebstrap from the host's apt mirror, a few minutes)" >&2

# The host's Debian sources (deb822), without third-party repositories: the guest is plain Debian 12.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
[ -f "$sources" ] || die "no Debian apt sources on the host (/etc/apt/sources.list.d/debian.sources)"

modlist=$(echo "$MODULES" | tr ' ' '\n')
# shellcheck disable=SC2086
mmdebstrap --variant=minbase --mode=root --format=directory --quiet \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$(echo $PACKAGES | tr ' ' ',')" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
  --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/pocrun-guest"' \
  --essential-hook="printf '%s\n' '$modlist' > \"\$1/usr/share/initramfs-tools/modules.d/pocrun-guest\"" \
  --customize-hook='echo pocrun-guest > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 pocrun-guest\n" > "$1/etc/hosts"' \
  --customize-hook='chroot "$1" systemd-machine-id-setup >/dev/null' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages' \
  bookworm "$tree" "$sources" >&2 || die "mmdebstrap failed"

# The host's node 20 and npm (Debian 12 has node 18; the binary needs only glibc and libstdc++, as on the host).
cp "$node" "$tree/usr/local/bin/node"
mkdir -p "$tree/usr/local/lib/node_modules"
cp -a /usr/lib/node_modules/npm "$tree/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$tree/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$tree/usr/local/bin/npx"

# The job runner, started at boot, and a machine that does nothing else.
install -m 0755 "$here/rootfs/pocrun-guest-boot" "$tree/usr/local/sbin/pocrun-guest-boot"
install -m 0644 "$here/rootfs/pocrun-guest-job.service" "$tree/etc/systemd/system/pocrun-guest-job.service"
chroot "$tree" systemctl enable pocrun-guest-job.service >/dev/null 2>&1
for unit in $DISABLE; do chroot "$tree" systemctl disable "$unit" >/dev/null 2>&1 || true; done
chroot "$tree" systemctl mask serial-getty@ttyS0.service getty@tty1.service >/dev/null 2>&1

cp -L "$tree/vmlinuz" "$build/vmlinuz"
cp -L "$tree/initrd.img" "$build/initrd.img"
mkfs.ext4 -q -L pocrun-guest -d "$tree" "$build/rootfs.img" "$SIZE" >/dev/null || die "mkfs.ext4 -d failed"
rm -rf "$tree"
echo "recipe $hash, built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s" > "$build/BUILT"
mv "$build" "$image"
trap - EXIT
echo "guest image: built in $(($(date +%s) - start)) s" >&2
echo "$image"
