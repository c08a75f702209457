#!/bin/sh
# The test command: sets up (apt and npm packages, build), then runs
#   the host suite: unit tests (no root needed), integration tests (root, real containers), engine conformance;
#   the guest suite: test/guest/, conformance/ and the rootless suites in the cgroup v2 test guest
#   (scripts/guest/test.sh; Debian 12, systemd, kernel 6.1, under qemu), where the behaviour differs from this
#   host's; then podman's (root and rootless) and containerd's conformance again there with their systemd cgroup
#   managers;
#   the hybrid suite: test/guest-hybrid/ and podman with its systemd cgroup manager, in the same guest booted
#   with systemd's cgroup v1 layout (POC_GUEST_CGROUPS=hybrid), as older distributions and nodes run.
# Ends with one line summing them all: "N passed, N failed". A guest suite that cannot run counts as failed.
# With FILES, runs only those: files under test/guest/ in the guest, under test/guest-hybrid/ in the hybrid
# guest, the others on the host.
set -u
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "0 passed, 1 failed (setup failed)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test: integration tests need root (real containers)"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No test reaches a registry it did not start: the host's registries.conf.d aliases name docker.io, so without
# this `poc run` of an image that is not there would pull from outside the machine. Tests that use registries
# set their own (test/integration/poc-registry.test.ts); podman's conformance sets its own too.
printf 'unqualified-search-registries = []\n' > "$tmp/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$tmp/registries.conf"

host="" guest="" hybrid=""
if [ $# -eq 0 ]; then
  # The rootless suites, pocrun's and poc's, run on both: here without a cgroup of the user's, in the guest as a
  # lingering user with the cgroup its own systemd delegates (each file probes which: test/helpers/rootless.ts).
  # poc's adds ~3.3 minutes to the guest run (197 s measured there, 34 s here).
  rootless="test/integration/rootless.test.ts test/integration/poc-rootless.test.ts"
  # Rootless podman runs in the guest once, with its systemd cgroup manager (the second guest run below): that is
  # how it runs on a cgroup v2 host with systemd. Its cgroupfs manager is the host's run: in the guest it would add
  # ~5 minutes (309 s measured) to cover what the host run and the rootless suites there cover already (a
  # container without a cgroup, on v2 too).
  host="test/unit test/integration conformance" hybrid="test/guest-hybrid conformance/podman.test.ts"
  guest="test/guest $rootless $(ls conformance/*.test.ts | grep -v '/podman-rootless\.test\.ts$' | tr '\n' ' ')"
else
  for f in "$@"; do
    case ${f#./} in
      test/guest-hybrid | test/guest-hybrid/*) hybrid="$hybrid $f" ;;
      test/guest | test/guest/*) guest="$guest $f" ;;
      *) host="$host $f" ;;
    esac
  done
fi

# tap's last summary line reads "# { total: N, pass: N, fail: N, ... }".
count() { grep -E '^# \{ total:' "$1" | tail -1 | sed -n "s/.*$2: \([0-9]*\).*/\1/p"; }

pass=0 fail=0
if [ -n "$host" ]; then
  # shellcheck disable=SC2086
  npx tap --reporter=tap $host 2>&1 | tee "$tmp/host"
  p=$(count "$tmp/host" pass) f=$(count "$tmp/host" fail)
  [ -n "$p" ] || { echo "test: the host suite printed no summary; counted as failed"; f=1; }
  pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0}))
fi
# guest_suite NAME FILES...: one run of tap in the guest, added to the totals; one that cannot run counts as failed.
guest_suite() {
  name=$1; shift
  echo "test: $name (scripts/guest/test.sh $*)"
  { ./scripts/guest/test.sh "$@"; echo $? > "$tmp/guest-status"; } 2>&1 | tee "$tmp/guest"
  p=$(count "$tmp/guest" pass) f=$(count "$tmp/guest" fail)
  if [ -z "$p" ]; then
    echo "test: $name could not run (exit $(cat "$tmp/guest-status" 2>/dev/null), see above); counted as failed"
    f=1
  fi
  pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0}))
}
if [ -n "$guest" ]; then
  # shellcheck disable=SC2086
  guest_suite "the guest suite, in the cgroup v2 test guest" $guest
fi
if [ $# -eq 0 ]; then
  # The engines again with their own default on a systemd host: podman's cgroup_manager=systemd, containerd's
  # SystemdCgroup (run.sh passes POC_* into the guest). The CRI test already uses SystemdCgroup in the guest.
  export POC_CONFORMANCE_CGROUP_MANAGER=systemd
  guest_suite "podman (also rootless) and containerd with their systemd cgroup managers, in the guest" \
    conformance/podman.test.ts conformance/podman-rootless.test.ts conformance/containerd.test.ts
  unset POC_CONFORMANCE_CGROUP_MANAGER
fi
if [ -n "$hybrid" ]; then
  # podman as RHEL 8 runs it: cgroup v1, systemd's cgroup manager.
  export POC_GUEST_CGROUPS=hybrid POC_CONFORMANCE_CGROUP_MANAGER=systemd
  # shellcheck disable=SC2086
  guest_suite "the hybrid suite, in the guest booted with systemd's cgroup v1 layout" $hybrid
  unset POC_GUEST_CGROUPS POC_CONFORMANCE_CGROUP_MANAGER
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ] && exit 0
exit 1
