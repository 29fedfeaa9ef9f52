#!/usr/bin/env bash
# Syscalls per echo round trip, side by side: the hand-written epoll server and
# io_uring loop from the peer harness, and weft's echo server on io_uring and
# on epoll. perf counts raw_syscalls:sys_enter of the server over 2 s of the
# harness's load (64 connections x 64 B, one in flight each).
#
#   benchmarks/echo_syscalls.sh      (needs linux-perf and a built harness:
#                                     run benchmarks/run_with_peers.sh once)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS:-$ROOT/build-peers}"
[[ -x "$PEERS/build/echo_client" ]] || PEERS=/work/shared/peers
BUILD="$ROOT/build-bench"
ninja -C "$BUILD" -j1 examples/echo_server >/dev/null
port="${PORT_BASE:-18300}"

count() {  # label server command...
  local label=$1
  shift
  port=$((port + 1))
  taskset -c 0 "$@" --port=$port --max-secs=30 >/dev/null 2>&1 &
  local server=$!
  sleep 0.3
  taskset -c 1 "$PEERS/build/echo_client" --port=$port --conns=64 --msg=64 --secs=4 --warmup=1 \
    --peer=x --variant=y --server-threads=1 --server-pid=$server > "$tmp/client" &
  local client=$!
  sleep 1.5
  perf stat -e raw_syscalls:sys_enter -p $server -x, -o "$tmp/perf" -- sleep 2 2>/dev/null
  wait $client
  wait $server || true
  local calls rt
  calls=$(awk -F, '/sys_enter/ {print $1}' "$tmp/perf")
  rt=$(tr ' ' '\n' < "$tmp/client" | awk -F= '$1 == "rt_per_sec" {print $2}')
  awk -v l="$label" -v c="$calls" -v r="$rt" \
    'BEGIN { printf "%-22s %9.0f rt/s  %.3f syscalls per round trip\n", l, r, c / (r * 2) }'
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
count "hand epoll (lt)" "$PEERS/build/echo_epoll" --mode=lt
count "hand io_uring loop" "$PEERS/build/echo_uring"
count "weft io_uring" env WEFT_BACKEND=io_uring "$BUILD/examples/echo_server" --hubs=1
count "weft epoll" env WEFT_BACKEND=epoll "$BUILD/examples/echo_server" --hubs=1
