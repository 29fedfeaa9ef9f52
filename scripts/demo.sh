#!/usr/bin/env bash
# Installs what is missing, builds weft and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dtests=false -Dbenchmarks=false
ninja -C build examples/greenthreads_demo
./build/examples/greenthreads_demo
