#!/usr/bin/env bash
# The whole test suite: format, lints, unit + integration tests (real models), and the
# real Python clients (openai, fireworks-ai) against a running server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/ensure-deps.sh
scripts/ensure-browser.sh
scripts/ensure-espeak.sh
scripts/ensure-venv.sh
echo "== cargo fmt"; cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== models"; cargo run -q -p ember-server -- models install --set test
# One test at a time: test servers share 2 cores, and ggml threads that compete for
# cores slow down 5-10x (DESIGN §3).
echo "== cargo test (unit, benches)"
RUST_TEST_THREADS=1 cargo test --workspace --all-targets --exclude ember-suite
RUST_TEST_THREADS=1 cargo test -p ember-suite --benches
echo "== cargo test (integration)"; scripts/integration-tests.sh
echo "== python clients"; scripts/client-tests.sh
