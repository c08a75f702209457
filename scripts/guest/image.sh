#!/bin/sh
# Builds, or finds already built, the cgroup v2 test guest (scripts/guest/recipe.sh says what is in it).
# Prints the image's directory (vmlinuz, initrd.img, rootfs.img) on stdout; progress goes to stderr.
#
# The image is cached outside the checkout under $POC_GUEST_CACHE (default /var/cache/pocrun-guest), in a
# directory named after a hash of its recipe (recipe.sh, the files it copies in from rootfs/, the node binary, the
# apt sources), so a change to any of them builds a new one. Concurrent callers build it once (flock on
# <hash>.lock); it is built in a temporary directory and renamed into place, so a half-built image is never seen.
# scripts/guest/run.sh holds a shared lock on <hash>.lock while it boots an image; a new build removes the
# images beyond the newest POC_GUEST_KEEP (default 5) that nobody holds.
#
# usage: scripts/guest/image.sh [--print-hash]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${POC_GUEST_CACHE:-/var/cache/pocrun-guest}
keep=${POC_GUEST_KEEP:-5}

die() { echo "guest image: $*" >&2; exit 1; }

node=$(command -v node) || die "node not found on the host (the guest gets a copy of it)"
[ -d /usr/lib/node_modules/npm ] || die "npm not found in /usr/lib/node_modules/npm (the guest gets a copy of it)"

recipe_hash() {
  {
    cat "$here/recipe.sh"
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
mkdir -p "$cache" 2>/dev/null || die "cannot make the cache directory $cache (POC_GUEST_CACHE)"

# One builder at a time per recipe; the others wait here and then find it built.
exec 9>"$cache/$hash.lock"
flock 9
if [ -f "$image/rootfs.img" ]; then echo "$image"; exit 0; fi

build=$(mktemp -d "$cache/.build-$hash-XXXXXX")
trap 'rm -rf "$build"' EXIT
chmod 755 "$build"
start=$(date +%s)
echo "guest image: building $image (mmdebstrap from the host's apt mirror, a few minutes)" >&2
"$here/recipe.sh" "$build" || die "the recipe failed (scripts/guest/recipe.sh)"
rm -rf "$build/tree"
echo "recipe $hash, built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s" > "$build/BUILT"
mv "$build" "$image"
trap - EXIT
echo "guest image: built in $(($(date +%s) - start)) s" >&2

# Older recipes' images (1-2 GB each), beyond the newest $keep, unless a run holds one (a shared lock).
# shellcheck disable=SC2012
ls -1dt "$cache"/*/rootfs.img 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do
  dir=${old%/rootfs.img}
  ( flock -n -x 8 && rm -rf "$dir" && rm -f "$dir.lock" ) 8>>"$dir.lock" || true
done
echo "$image"
