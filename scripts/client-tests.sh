#!/usr/bin/env bash
# Real-client tests: the official openai and fireworks-ai Python SDKs, plain requests and
# the README's curl lines, against `ember serve` processes started by tests/clients/conftest.py.
# Needs the debug binary ($EMBER_BIN, default $CARGO_TARGET_DIR/debug/ember) and installed models.
# Extra arguments go to pytest (e.g. -k fireworks, -x, -s to see measured WER).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

req=tests/clients/requirements.txt
stamp="$EMBER_VENV/.ember-client-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ ! -x "$EMBER_VENV/bin/python" ]; then
  echo "== creating venv $EMBER_VENV"
  mkdir -p "$(dirname "$EMBER_VENV")"
  python3 -m venv "$EMBER_VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "== installing $req into $EMBER_VENV"
  "$EMBER_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$EMBER_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/clients "$@"
