# Sourced by the scripts: shared defaults. Caches live outside the clone so a fresh
# clone on the same machine reuses build outputs and converted models.
export EMBER_CACHE_DIR="${EMBER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ember}"
export EMBER_MODELS_DIR="${EMBER_MODELS_DIR:-$EMBER_CACHE_DIR/models}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EMBER_CACHE_DIR/target}"
export EMBER_VENV="${EMBER_VENV:-$EMBER_CACHE_DIR/venv}"
