#!/usr/bin/env bash
# Real-client tests: the official openai and fireworks-ai Python SDKs, plain requests and
# the README's curl lines, against `ember serve` processes started by tests/clients/conftest.py.
# Needs the debug binary ($EMBER_BIN, default $CARGO_TARGET_DIR/debug/ember) and installed models.
# Extra arguments go to pytest (e.g. -k fireworks, -x, -s to see measured WER).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/ensure-venv.sh

export PYTHONDONTWRITEBYTECODE=1
exec "$EMBER_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/clients "$@"
