#!/usr/bin/env bash
# Installs the system packages the build needs (whisper.cpp is compiled with cmake, and
# whisper-rs-sys generates bindings with libclang). Root installs them with apt;
# anyone else is told exactly what to install.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v clang >/dev/null 2>&1 || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v cargo >/dev/null 2>&1 || { echo "error: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip python3-venv)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "install them, e.g.: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
