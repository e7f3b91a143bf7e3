#!/usr/bin/env bash
# Installs espeak-ng, the synthesiser behind the known-boundary alignment set
# (scripts/align/make_known_boundaries.py). Uses apt, as root or through sudo; the package
# index is refreshed only if the first install attempt fails. Quiet when already present.
set -uo pipefail
command -v espeak-ng >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: espeak-ng is missing and apt-get is not available; install espeak-ng by hand" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "error: espeak-ng is missing; install it, e.g.: sudo apt-get install -y espeak-ng" >&2
  exit 1
fi
echo "installing system package: espeak-ng (for the alignment test set)" >&2
# apt's chatter is kept and shown only if the install fails. `env` because sudo drops it.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq)
log=$("${apt[@]}" install --no-install-recommends espeak-ng 2>&1) \
  || log=$("${apt[@]}" update 2>&1 && "${apt[@]}" install --no-install-recommends espeak-ng 2>&1)
if ! command -v espeak-ng >/dev/null 2>&1; then
  printf '%s\n' "$log" >&2
  echo "error: could not install espeak-ng; install it, e.g.: sudo apt-get install -y espeak-ng" >&2
  exit 1
fi
exit 0
