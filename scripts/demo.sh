#!/usr/bin/env bash
# Installs what is missing, builds weft and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dtests=false -Dbenchmarks=false
ninja -C build examples/server_demo
# An HTTP/1.1 server on 127.0.0.1 and client fibers in one process, one hub
# per core: a live progress line, then requests/s, p50/p99 and the backend.
./build/examples/server_demo --secs=3
