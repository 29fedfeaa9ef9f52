#!/usr/bin/env bash
# Installs what weft needs to build, test and benchmark on Debian 12, if it is
# missing. Idempotent: a second run installs nothing.
set -euo pipefail

packages=(
  build-essential g++ pkg-config meson ninja-build
  liburing-dev libboost-context-dev libboost-fiber-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gdb  # the gdb_script test drives scripts/weft-gdb.py
  wrk  # drives examples/http_server in the benchmarks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "weft setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
