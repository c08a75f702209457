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

# An interface with an address and a default route, as a machine on a network has, with nothing behind it (qemu
# gives the guest no network device: nothing leaves it). pasta (poc's and podman's --network pasta) copies the
# host's routable interface into the container and does not start without one.
{ ip link add pocrun-net0 type dummy && ip addr add 192.0.2.1/24 dev pocrun-net0 && ip link set pocrun-net0 up &&
  ip route add default via 192.0.2.254 dev pocrun-net0; } || fail "cannot make the dummy interface pocrun-net0"

echo "started $(cut -d' ' -f1 /proc/uptime)" >"$status"
env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb POC_GUEST=1 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  sh "$disk/job/run" </dev/null >"$out" 2>&1
echo "exit $?" >"$status"
sync
