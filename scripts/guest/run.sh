#!/bin/sh
# Runs a command as root in a fresh cgroup v2 test guest (scripts/guest/image.sh) and exits with its status.
#
# The guest boots a copy-on-write snapshot of the cached image under qemu's TCG emulation (a paravirtual KVM
# on the machines this is developed on is far slower than emulation), with no network device. The checkout as
# the host built it (dist/, node_modules/, everything but .git) goes in on a second disk made by mkfs.ext4 -d
# (no loop device, and no unpacking in the slow guest), mounted in the guest at the same absolute path. The
# command runs there with POC_GUEST=1 and the host's POC_* and POCRUN_* variables; its output is streamed to
# stdout as it comes (a virtio-serial port), its exit status comes back on another, and the guest powers off.
#
# usage: scripts/guest/run.sh CMD [ARG...]
# env:   POC_GUEST_TIMEOUT  seconds for the whole run, boot included (default 2400); a hung guest is killed
#        POC_GUEST_MEM      guest memory in MiB (default 2048)
#        POC_GUEST_CPUS     guest CPUs (default 2)
#        POC_GUEST_CGROUPS  unified (default: cgroup v2 alone, as current distributions boot) or hybrid (systemd's
#                           legacy layout: v1 controllers, and cgroup2 without controllers at /sys/fs/cgroup/unified)
# exit:  the command's status; 124 when the run timed out; 125 when the guest could not run it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd -P)
limit=${POC_GUEST_TIMEOUT:-2400}
mem=${POC_GUEST_MEM:-2048}
cpus=${POC_GUEST_CPUS:-2}
case ${POC_GUEST_CGROUPS:-unified} in
  unified) cgroups= ;;
  hybrid) cgroups=" systemd.unified_cgroup_hierarchy=0" ;;
  *) echo "guest: POC_GUEST_CGROUPS=$POC_GUEST_CGROUPS: expected unified or hybrid" >&2; exit 125 ;;
esac

die() { echo "guest: $*" >&2; exit 125; }

[ $# -gt 0 ] || die "usage: scripts/guest/run.sh CMD [ARG...]"
qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found: install qemu-system-x86 (scripts/setup.sh)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: install e2fsprogs"
# A shared lock on the image while it is in use: a newer recipe's build does not remove it meanwhile (image.sh).
# One removed between image.sh and the lock is built again.
for attempt in 1 2; do
  image=$("$here/image.sh") || die "no guest image (scripts/guest/image.sh failed, see above)"
  exec 8>>"$image.lock"
  flock -s 8
  [ -f "$image/rootfs.img" ] && break
  exec 8>&-
done
[ -f "$image/rootfs.img" ] || die "no guest image at $image"

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/pocrun-guest-XXXXXX") || die "cannot make a temporary directory"
qpid=
cleanup() {
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# The job disk: job/ (where and what to run) and tree/ (the checkout, hard links where the file system allows).
mkdir -p "$tmp/disk/job" "$tmp/disk/tree"
for entry in "$top"/* "$top"/.[!.]*; do
  [ -e "$entry" ] || continue
  case ${entry##*/} in .git) continue ;; esac
  cp -al "$entry" "$tmp/disk/tree/" 2>/dev/null || cp -a "$entry" "$tmp/disk/tree/" || die "cannot copy $entry"
done
printf '%s\n' "$top" > "$tmp/disk/job/cwd"
cp "$here/job.sh" "$tmp/disk/job/job.sh"
{
  echo "cd $(quote "$top") || exit 125"
  # The host's settings for pocrun and its tests travel with the command.
  env | grep -E '^(POC|POCRUN|TAP)_[A-Za-z0-9_]*=' | grep -v '^POC_GUEST' | while IFS= read -r kv; do
    echo "export ${kv%%=*}=$(quote "${kv#*=}")"
  done
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
  echo
} > "$tmp/disk/job/run"
size=$(du -sm "$tmp/disk" | cut -f1)
mkfs.ext4 -q -d "$tmp/disk" "$tmp/job.img" "$((size * 2 + 2048))M" >/dev/null || die "mkfs.ext4 -d of the checkout failed"
rm -rf "$tmp/disk"

: > "$tmp/out"
: > "$tmp/status"
start=$(date +%s)
timeout -k 10 "$limit" "$qemu" -name pocrun-guest -nodefaults -no-user-config -no-reboot \
  -machine q35 -accel tcg,tb-size=256 -cpu max -smp "$cpus" -m "$mem" \
  -display none -vga none -nic none \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 panic=-1 mitigations=off quiet systemd.show_status=false$cgroups" \
  -drive "file=$image/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -drive "file=$tmp/job.img,format=raw,if=virtio" \
  -serial "file:$tmp/console.log" \
  -device virtio-rng-pci \
  -device virtio-serial-pci \
  -chardev "file,id=out,path=$tmp/out" -device virtserialport,chardev=out,name=pocrun.out \
  -chardev "file,id=status,path=$tmp/status" -device virtserialport,chardev=status,name=pocrun.status \
  </dev/null >"$tmp/qemu.log" 2>&1 &
qpid=$!
# The command's output, as it comes; tail exits once qemu has, after a last read.
tail -n +1 -f --pid="$qpid" "$tmp/out" &
wait "$qpid"
qrc=$?
qpid=
wait
elapsed=$(($(date +%s) - start))

started=$(sed -n 's/^started //p' "$tmp/status")
code=$(sed -n 's/^exit //p' "$tmp/status")
keep() {
  log="${TMPDIR:-/var/tmp}/pocrun-guest-console-$$.log"
  cat "$tmp/qemu.log" "$tmp/console.log" > "$log" 2>/dev/null
  echo "guest: the guest's console is in $log; its last lines:" >&2
  tail -n 15 "$log" | sed 's/^/  /' >&2
}
if [ -z "$code" ]; then
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "guest: timed out after $limit s (POC_GUEST_TIMEOUT); the guest was killed" >&2
    keep
    exit 124
  fi
  echo "guest: the command reported no exit status (qemu exited with $qrc after $elapsed s)" >&2
  keep
  exit 125
fi
echo "guest: exit $code; booted in ${started:-?} s, $elapsed s in all" >&2
exit "$code"
