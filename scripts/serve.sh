#!/usr/bin/env bash
# Quick start: build Ember (release), install the default models, run the server.
# Extra arguments go to `ember serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/ensure-deps.sh
cargo build --release -p ember-server
ember="$CARGO_TARGET_DIR/release/ember"
"$ember" models install --set default
exec "$ember" serve "$@"
