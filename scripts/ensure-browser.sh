#!/usr/bin/env bash
# Installs Chromium for the browser-page test (tests/clients/test_browser_page.py drives it
# headless over the DevTools protocol). Root installs it with apt; anyone else is told
# what to install. Without a browser the test skips itself, so this never fails the run.
set -uo pipefail
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system package: chromium (for the browser-page test)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get install chromium failed; the browser-page test will be skipped" >&2
else
  echo "note: no Chromium found, so the browser-page test will be skipped" >&2
  echo "install it to run that test, e.g.: sudo apt-get install -y chromium" >&2
fi
exit 0
