#!/usr/bin/env bash
# Ember vs faster-whisper, end to end (speed, peak RSS, WER). Makes the venv with
# faster-whisper pinned under ~/.cache/ember/compare, makes sure Ember's models are
# installed, then runs compare_faster_whisper.py with any extra arguments, e.g.
#   scripts/compare/run.sh --configs beam5-q8_0,beam5-f16,greedy-q8_0,beam5-q8_0-flash
# Needs a built ember binary (release preferred): cargo build --release -p ember-server
# Run it on a quiet machine: whisper.cpp threads are very sensitive to other load.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../env.sh"
compare_dir="${EMBER_COMPARE_DIR:-$EMBER_CACHE_DIR/compare}"
venv="$compare_dir/venv"
if ! "$venv/bin/python" -c 'import faster_whisper, sys; sys.exit(faster_whisper.__version__ != "1.2.1")' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "faster-whisper==1.2.1"
fi
[ -x /usr/bin/time ] || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq time >/dev/null; } || {
  echo "error: /usr/bin/time is missing: apt-get install -y time" >&2; exit 1; }
ember="${EMBER_BIN:-$CARGO_TARGET_DIR/release/ember}"
[ -x "$ember" ] || ember="$CARGO_TARGET_DIR/debug/ember"
[ -x "$ember" ] || { echo "error: no ember binary under $CARGO_TARGET_DIR (cargo build --release -p ember-server)" >&2; exit 1; }
if ! "$ember" models list 2>/dev/null | grep -q base; then
  "$ember" models install
fi
export EMBER_COMPARE_DIR="$compare_dir"
exec "$venv/bin/python" "$here/compare_faster_whisper.py" --ember "$ember" "$@"
