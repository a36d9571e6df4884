#!/usr/bin/env bash
# Installs what gort needs to build, test and benchmark on Debian 12 (run as root).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  clang-14 clang-format-14 clang-tidy-14 libclang-rt-14-dev
  libboost-context1.81-dev libboost-fiber1.81-dev zlib1g-dev libdw-dev
  libgc-dev time
  golang-go wrk
  g++-aarch64-linux-gnu qemu-user
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "gort: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
