#!/bin/sh
# The test command: sets up (apt and npm packages, build), then runs the unit tests (no root needed) and the
# integration tests (root, real containers). Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "0 passed, 1 failed (setup failed)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test: integration tests need root (real containers)"; echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
[ $# -gt 0 ] || set -- test/unit test/integration conformance
npx tap --reporter=tap "$@" 2>&1 | tee "$log"
# tap's last summary line reads "# { total: N, pass: N, fail: N, ... }".
summary=$(grep -E '^# \{ total:' "$log" | tail -1)
pass=$(echo "$summary" | sed -n 's/.*pass: \([0-9]*\).*/\1/p')
fail=$(echo "$summary" | sed -n 's/.*fail: \([0-9]*\).*/\1/p')
echo "${pass:-0} passed, ${fail:-0} failed"
[ "${fail:-0}" = 0 ] && [ -n "$summary" ] && exit 0
exit 1
