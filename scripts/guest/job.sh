#!/bin/sh
# The guest's side of scripts/guest/run.sh, run from the job disk at boot (pocrun-guest-boot). The disk holds:
#   job/cwd   the checkout's absolute path on the host
#   job/run   the command as a shell script (cd, the host's POC_* variables, exec CMD...)
#   tree/     the checkout as the host built it, bind-mounted at that path
# The command's output goes to the virtio-serial port pocrun.out (streamed to the host's stdout), its status
# to the port pocrun.status: "started UPTIME" when it starts, then "exit N" (125: the guest could not run it).
set -u
disk=$1
out=/dev/virtio-ports/pocrun.out
status=/dev/virtio-ports/pocrun.status

fail() {
  echo "guest: $*" >"$out"
  echo "exit 125" >"$status"
  exit 0
}

cwd=$(cat "$disk/job/cwd") || fail "the job disk has no job/cwd"
mkdir -p "$cwd" && mount --bind "$disk/tree" "$cwd" || fail "cannot mount the checkout at $cwd"

echo "started $(cut -d' ' -f1 /proc/uptime)" >"$status"
env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb POC_GUEST=1 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  sh "$disk/job/run" </dev/null >"$out" 2>&1
echo "exit $?" >"$status"
sync
