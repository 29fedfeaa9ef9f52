#!/usr/bin/env bash
# Runs weft's benchmarks inside the shared peer harness (run_all.sh), so that weft's rows
# land in the same tables as Boost.Context, Boost.Fiber, Go and tokio from the same run,
# with a weft_better_x column (> 1: weft wins by that factor).
#
#   benchmarks/run_with_peers.sh            the yield, spawn and skynet groups, RUNS=3 (~3 min)
#   QUICK=1 benchmarks/run_with_peers.sh    smoke test: the harness's small sizes, for weft too
#   ONLY=yield,chan,spawn ...               other harness groups (yield chan spawn skynet echo handoff)
#   ONLY=echo ...                           the echo servers, weft's on io_uring and on epoll among
#                                           them (examples/echo_server, one hub pinned to CPU 0)
#   PEERS=/path/to/peers ...                another copy of the harness (default /work/shared/peers;
#                                           a read-only one that is not built is copied to
#                                           build-peers/ and built there)
# Every other run_all.sh knob (RUNS, WAIT_QUIET, OUT, ...) passes through.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS:-/work/shared/peers}"
BUILD="$ROOT/build-bench"

if [[ ! -x "$PEERS/build/fiber_bench" && ! -w "$PEERS" ]]; then
  mkdir -p "$ROOT/build-peers"
  cp -r "$PEERS/." "$ROOT/build-peers/"
  chmod -R u+w "$ROOT/build-peers"
  PEERS="$ROOT/build-peers"
fi
if [[ ! -x "$PEERS/build/fiber_bench" ]]; then
  "$PEERS/build.sh"
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
ONLY="${ONLY:-yield,spawn,skynet}"
# run_all.sh runs EXTRA_CMDS whatever ONLY says: keep the lines of the chosen groups.
groups="$(tr ',' '|' <<< "$ONLY")"
sed -e "s|^build-bench/|$BUILD/|" "${resize[@]}" "$ROOT/benchmarks/weft.cmds" |
  { grep -E -e "--bench=($groups)" || true; } > "$cmds"

if [[ ",$ONLY," == *,echo,* ]]; then
  ninja -C "$BUILD" -j1 examples/echo_server
  echo_list="$(mktemp --suffix=.echo)"
  trap 'rm -f "$cmds" "$echo_list"' EXIT
  for backend in io_uring epoll; do
    echo "weft ${backend/io_/}_fiber_per_conn 1 1 env WEFT_BACKEND=$backend $BUILD/examples/echo_server --hubs=1"
  done > "$echo_list"
  export EXTRA_ECHO="$echo_list"
fi

EXTRA_CMDS="$cmds" BASE=weft ONLY="$ONLY" "$PEERS/run_all.sh"
