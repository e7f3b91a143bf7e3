#!/usr/bin/env bash
# The test venv ($EMBER_VENV): the real Python clients (openai, fireworks-ai) and the
# reference implementations the Rust tests compare with (scripts/reference/: onnxruntime,
# numpy, tokenizers, pillow), pinned in tests/clients/requirements.txt. Reinstalls only
# when that file changes. Run before `cargo test`: integration tests call the references.
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
