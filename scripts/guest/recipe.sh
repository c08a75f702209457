#!/bin/sh
# The recipe of the cgroup v2 test guest, run by scripts/guest/image.sh (which caches its result by a hash of this
# file and of rootfs/): Debian 12 (systemd PID 1, pure cgroup v2, kernel 6.1) made with mmdebstrap from the host's
# apt mirror, with the engines, the runtimes and the host's node 20. Writes vmlinuz, initrd.img and rootfs.img
# (an ext4 image made with mkfs.ext4 -d: no loop device) into OUT, using OUT/tree on the way.
#
# usage: scripts/guest/recipe.sh OUT      (as root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: $0 OUT}
tree=$build/tree

die() { echo "guest image: $*" >&2; exit 1; }

# What the guest holds. Recommends are not installed: everything the tests use is named here.
PACKAGES="systemd systemd-sysv udev dbus libpam-systemd dbus-user-session kmod initramfs-tools linux-image-amd64 e2fsprogs mount util-linux \
  procps psmisc iproute2 nftables iptables file tar gzip xz-utils zstd python3 libstdc++6 ca-certificates \
  runc crun podman conmon golang-github-containers-common netavark aardvark-dns catatonit uidmap slirp4netns passt fuse-overlayfs \
  containerd containernetworking-plugins umoci skopeo libseccomp2 libyajl2 criu busybox-static \
  sysbench hyperfine"
# The initramfs needs only what mounts the root disk (MODULES=list: 7 MB instead of 36).
MODULES="virtio_pci virtio_blk ext4 crc32c_generic"
# Units that would only cost boot time in a throwaway test machine. containerd is only disabled: tests start
# their own daemons, and may start the packaged one.
DISABLE="apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  containerd.service podman.socket podman.service podman-auto-update.timer podman-auto-update.service \
  podman-restart.service podman-clean-transient.timer dpkg-db-backup.timer"
SIZE=8G

node=$(command -v node) || die "node not found on the host (the guest gets a copy of it)"

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
chroot "$tree" systemctl set-default multi-user.target >/dev/null 2>&1
# A machine id of its own (mmdebstrap leaves none), so that no boot is a first boot with its extra work.
chroot "$tree" systemd-machine-id-setup >/dev/null 2>&1

cp -L "$tree/vmlinuz" "$build/vmlinuz"
cp -L "$tree/initrd.img" "$build/initrd.img"
mkfs.ext4 -q -L pocrun-guest -d "$tree" "$build/rootfs.img" "$SIZE" >/dev/null || die "mkfs.ext4 -d failed"
rm -rf "$tree"
