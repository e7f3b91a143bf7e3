#!/usr/bin/env bash
# The whole test suite: format, lints, unit + integration tests (real models), and the
# real Python clients (openai, fireworks-ai) against a running server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/ensure-deps.sh
echo "== cargo fmt"; cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== models"; cargo run -q -p ember-server -- models install --set test
echo "== cargo test"; cargo test --workspace --all-targets
echo "== python clients"; scripts/client-tests.sh
