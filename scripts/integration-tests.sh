#!/usr/bin/env bash
# The integration-test binary (tests/it): real servers with real models, one test at a
# time. Known problem, not yet fixed: after every test has passed, the process
# sometimes dies with SIGSEGV while it exits (C++ static destructors of the inference
# libraries run while test-server worker threads still hold their models; seen in about
# half of full runs, never while a test runs, and never in `ember serve`, whose SIGTERM
# exit the client tests check). A run whose tests all passed and that then died of that
# signal at exit counts as passed, with a warning; any failed test, or a crash before
# the summary, fails.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
RUST_TEST_THREADS=1 cargo test -p ember-suite --test it "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  exit 0
fi
if grep -qE "^test result: ok\. [0-9]+ passed; 0 failed" "$log" \
  && grep -q "signal: 11, SIGSEGV" "$log"; then
  echo "WARNING: every integration test passed; the test process then crashed while exiting (SIGSEGV in teardown, see scripts/integration-tests.sh)" >&2
  exit 0
fi
exit "$status"
