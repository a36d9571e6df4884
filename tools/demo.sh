#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build Release, run the flagship demo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target gort_demo
exec build/release/examples/gort_demo "$@"
