#!/usr/bin/env bash
# Runs weft's benchmarks inside the shared peer harness (run_all.sh), so that weft's rows
# land in the same tables as Boost.Context, Boost.Fiber, Go and tokio from the same run,
# with a weft_better_x column (> 1: weft wins by that factor).
#
#   benchmarks/run_with_peers.sh            the yield, spawn, skynet, park_wake and timer groups,
#                                           RUNS=3 (~7 min)
#   QUICK=1 benchmarks/run_with_peers.sh    smoke test: the harness's small sizes, for weft too
#   ONLY=yield,chan,spawn ...               other harness groups (yield chan spawn skynet echo handoff
#                                           timer), and park_wake (weft's and Go's; not a run_all.sh
#                                           group, so this script adds the Go peer's lines)
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
ninja -C "$BUILD" -j1 benchmarks/runtime_compare benchmarks/park_wake benchmarks/timer_compare

cmds="$(mktemp --suffix=.cmds)"
trap 'rm -f "$cmds"' EXIT
# run_all.sh runs each line in the caller's directory: make the paths absolute. Under QUICK=1
# it shrinks its peers' sizes; give weft the same ones, or the ratios would compare apples
# with oranges.
resize=()
if [[ "${QUICK:-0}" == 1 ]]; then
  resize=(-e '/--bench=yield_pingpong/ s/$/ --n=2000000/'
          -e '/--bench=spawn_join/ s/$/ --n=20000/'
          -e '/--bench=skynet/ s/$/ --n=100000/'
          -e '/park_wake/ s/-n=1000000/-n=100000/'
          -e '/park_wake/ s/-n=200000/-n=20000/'
          -e '/--bench=timer_cancel/ s/$/ --n=100000/'
          -e '/--bench=timer_fire/ s/$/ --n=20000/')
fi
ONLY="${ONLY:-yield,spawn,skynet,park_wake,timer}"
# run_all.sh has no park_wake group: the Go peer's lines (GOMAXPROCS=1, as in RESULTS.md)
# go in with weft's. summarize.py groups rows by peer, variant and threads but not n, so
# each park_wake line appends its size to the variant, or 200k and 1M would be one row
# (pipefail: a failed run still shows as FAILED).
park_wake_lines() {
  local n
  for n in 200000 1000000; do
    echo "GOMAXPROCS=1 $PEERS/build/go_bench -bench=park_wake -n=$n"
  done
}
# run_all.sh runs EXTRA_CMDS whatever ONLY says: keep the lines of the chosen groups.
groups="$(tr ',' '|' <<< "$ONLY")"
{ grep -v '^#' "$ROOT/benchmarks/weft.cmds"; park_wake_lines; } |
  sed -e "s|^build-bench/|$BUILD/|" "${resize[@]}" \
      -e '/park_wake/ s/.*-n=\([0-9]*\).*/set -o pipefail; & | sed "s\/ variant=[a-z0-9_]*\/\&_n\1\/"/' |
  { grep -E -e "(-bench=|/)($groups)" || true; } > "$cmds"

if [[ ",$ONLY," == *,echo,* ]]; then
  ninja -C "$BUILD" -j1 examples/echo_server
  echo_list="$(mktemp --suffix=.echo)"
  trap 'rm -f "$cmds" "$echo_list"' EXIT
  for backend in io_uring epoll; do
    echo "weft ${backend/io_/}_fiber_per_conn 1 1 env WEFT_BACKEND=$backend $BUILD/examples/echo_server --hubs=1"
  done > "$echo_list"
  export EXTRA_ECHO="$echo_list"
fi

export OUT="${OUT:-$PEERS/build/results-$(date +%Y%m%d-%H%M%S).txt}"
EXTRA_CMDS="$cmds" BASE=weft ONLY="$ONLY" "$PEERS/run_all.sh"

# summarize.py shows one metric per bench; park_wake has two phases.
if [[ ",$ONLY," == *,park_wake,* ]]; then
  python3 - "$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("peer=") and " bench=park_wake " in line:
        f = dict(t.split("=", 1) for t in line.split() if "=" in t)
        rows.setdefault((int(f["n"]), f["peer"]), []).append(f)
print("\n# park_wake: medians of fresh processes; weft_better_x = peer/weft (> 1: weft wins)")
print(f"# {'n':>8} {'peer':<5} {'runs':>4} {'park_ms':>9} {'wake_ms':>9} {'rss_kb':>9}")
for (n, peer), rs in sorted(rows.items()):
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    print(f"# {n:>8} {peer:<5} {len(rs):>4} {med('park_ms'):>9.1f} {med('wake_ms'):>9.1f}"
          f" {med('rss_kb'):>9.0f}", end="")
    weft = rows.get((n, "weft"))
    if peer != "weft" and weft:
        w = lambda k: statistics.median(float(r[k]) for r in weft)
        print(f"   weft_better_x park {med('park_ms') / w('park_ms'):.2f}"
              f" wake {med('wake_ms') / w('wake_ms'):.2f}", end="")
    print()
PY
fi
