#!/bin/sh
# Runs test files with tap inside the cgroup v2 test guest (scripts/guest/run.sh), with the reporter that
# scripts/test.sh reads: its last summary line is "# { total: N, pass: N, fail: N, ... }".
# With no FILES: the guest suite, test/guest/ (guest-only tests) and conformance/ (the engines, as on the host).
# The build output must be there already (npm run -s build): the guest runs the host's dist/ and node_modules/.
#
# usage: scripts/guest/test.sh [FILES...]
# env:   POC_GUEST_TAP_TIMEOUT  tap's timeout per test file, in seconds (default 1500: the guest is slow)
set -u
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- test/guest conformance
[ -x dist/pocrun ] && [ -x node_modules/.bin/tap ] || { echo "guest: build first (npm run -s build)" >&2; exit 125; }
exec ./scripts/guest/run.sh node_modules/.bin/tap --reporter=tap --timeout="${POC_GUEST_TAP_TIMEOUT:-1500}" "$@"
