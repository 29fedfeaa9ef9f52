#!/usr/bin/env bash
# Runs weft's benchmarks inside the shared peer harness (run_all.sh), so that weft's rows
# land in the same tables as Boost.Context, Boost.Fiber, Go and tokio from the same run,
# with a weft_better_x column (> 1: weft wins by that factor).
#
#   benchmarks/run_with_peers.sh            the yield, spawn and skynet groups, RUNS=3 (~3 min)
#   QUICK=1 benchmarks/run_with_peers.sh    smoke test: the harness's small sizes, for weft too
#   ONLY=yield,chan,spawn ...               other harness groups (yield chan spawn skynet echo handoff)
#   PEERS=/path/to/peers ...                another copy of the harness (default /work/shared/peers)
# Every other run_all.sh knob (RUNS, WAIT_QUIET, OUT, ...) passes through.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS:-/work/shared/peers}"
BUILD="$ROOT/build-bench"

if [[ ! -x "$PEERS/build/fiber_bench" ]]; then
  echo "run_with_peers.sh: the peers are not built; run $PEERS/build.sh first" >&2
  exit 1
fi
if [[ ! -f "$BUILD/build.ninja" ]]; then
  meson setup "$BUILD" "$ROOT" --buildtype=release
fi
# -j1: the box has two cores and is shared with other builds.
ninja -C "$BUILD" -j1 benchmarks/runtime_compare

cmds="$(mktemp --suffix=.cmds)"
trap 'rm -f "$cmds"' EXIT
# run_all.sh runs each line in the caller's directory: make the paths absolute. Under QUICK=1
# it shrinks its peers' sizes; give weft the same ones, or the ratios would compare apples
# with oranges.
resize=()
if [[ "${QUICK:-0}" == 1 ]]; then
  resize=(-e '/--bench=yield_pingpong/ s/$/ --n=2000000/'
          -e '/--bench=spawn_join/ s/$/ --n=20000/'
          -e '/--bench=skynet/ s/$/ --n=100000/')
fi
sed -e "s|^build-bench/|$BUILD/|" "${resize[@]}" "$ROOT/benchmarks/weft.cmds" > "$cmds"

EXTRA_CMDS="$cmds" BASE=weft ONLY="${ONLY:-yield,spawn,skynet}" "$PEERS/run_all.sh"
