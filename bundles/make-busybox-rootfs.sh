#!/bin/sh
# Builds a busybox root filesystem offline from the host's busybox-static, in well under a second.
# usage: bundles/make-busybox-rootfs.sh DIR
set -eu
dir=${1:?usage: $0 DIR}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "$0: busybox not found: install busybox-static" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' && ldd "$busybox" >/dev/null 2>&1; then
  echo "$0: $busybox is dynamically linked: install busybox-static" >&2; exit 1
fi
mkdir -p "$dir/bin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/root" "$dir/home/user" "$dir/var/run"
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$dir/home/user"
: > "$dir/etc/hosts"
: > "$dir/etc/resolv.conf"
