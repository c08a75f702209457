#!/bin/sh
# A small image root with the host's sysbench and the libraries it links, on top of the busybox rootfs:
# what `poc bench` needs, built offline in a second (the real default image comes from `poc init`).
# usage: test/helpers/sysbench-rootfs.sh DIR
set -eu
dir=${1:?usage: $0 DIR}
"$(dirname "$0")/../../bundles/make-busybox-rootfs.sh" "$dir"
mkdir -p "$dir/usr/bin" "$dir/var/tmp"
cp /usr/bin/sysbench "$dir/usr/bin/sysbench"
ldd /usr/bin/sysbench | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
  [ -f "$lib" ] || continue
  mkdir -p "$dir$(dirname "$lib")"
  cp -L "$lib" "$dir$lib"
done
# The dynamic loader where the binary looks for it.
mkdir -p "$dir/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$dir/lib64/"
