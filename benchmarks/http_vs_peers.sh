#!/usr/bin/env bash
# HTTP/1.1 keep-alive "Hello, world!" under wrk, side by side in one run:
# weft's examples/http_server (one hub, io_uring and epoll) and Go's net/http
# (GOMAXPROCS=1). Server pinned to CPU 0, wrk (one thread) to CPU 1.
#
#   benchmarks/http_vs_peers.sh            RUNS=3 rounds, 5 s each, 64 connections
#   RUNS=5 SECS=10 CONNS=128 benchmarks/http_vs_peers.sh
#
# One line per run in the peers' format (peer=... bench=http ...), then the
# median of each configuration and its ratio to Go's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-bench"
RUNS="${RUNS:-3}"
SECS="${SECS:-5}"  # at least 3: CPU is sampled over all but the first and last second
CONNS="${CONNS:-64}"
PORT="${PORT_BASE:-18100}"

command -v wrk >/dev/null || "$ROOT/scripts/setup.sh"
[[ -f "$BUILD/build.ninja" ]] || meson setup "$BUILD" "$ROOT" --buildtype=release
ninja -C "$BUILD" -j1 examples/http_server
servers=("weft uring env WEFT_BACKEND=io_uring $BUILD/examples/http_server --hubs=1"
         "weft epoll env WEFT_BACKEND=epoll $BUILD/examples/http_server --hubs=1")
if command -v go >/dev/null || [[ -x /usr/lib/go-1.19/bin/go ]]; then
  go_bin="$(command -v go || echo /usr/lib/go-1.19/bin/go)"
  GOCACHE="$BUILD/gocache" GO111MODULE=off "$go_bin" build -o "$BUILD/http_hello_go" \
    "$ROOT/benchmarks/peers/http_hello.go"
  servers+=("go net_http env GOMAXPROCS=1 $BUILD/http_hello_go")
else
  echo "# go not installed: no Go peer (../shared/peers/build.sh installs it)"
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

to_us() {  # wrk prints 250.00us, 1.20ms or 1.01s
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'
}

measure() {  # peer variant command...
  local peer=$1 variant=$2
  shift 2
  PORT=$((PORT + 1))
  taskset -c 0 "$@" --port=$PORT --max-secs=$((SECS + 30)) >/dev/null &
  local pid=$!
  # Wait until it listens (without connecting: weft's server ends once its
  # clients have all gone, a probe connection included).
  for _ in $(seq 100); do [[ -n "$(ss -Hltn "sport = :$PORT")" ]] && break; sleep 0.05; done
  # Server CPU is sampled over the middle of the run (from 1 s after the start
  # to 1 s before the end): weft's server exits as soon as wrk disconnects.
  local out_file before after window=$((SECS - 2))
  out_file="$(mktemp)"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$PORT/" > "$out_file" &
  local wrk_pid=$!
  sleep 1
  before=$(cpu_ticks $pid)
  sleep "$window"
  after=$(cpu_ticks $pid)
  wait $wrk_pid
  local out
  out="$(cat "$out_file")"
  rm -f "$out_file"
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  local rps p50 p99 errors requests
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
  requests=$(awk '/requests in/ {print $1}' <<< "$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<< "$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<< "$out")")
  errors=$(awk '/Non-2xx|Socket errors/ {printf "%s;", $0}' <<< "$out" | tr -s ' ' '_')
  local hz cpu_us_per_req
  hz=$(getconf CLK_TCK)
  cpu_us_per_req=$(awk -v t=$((after - before)) -v hz="$hz" -v rps="$rps" -v w="$window" \
    'BEGIN { printf "%.2f", t / hz * 1e6 / (rps * w) }')
  echo "peer=$peer bench=http variant=$variant threads=1 conns=$CONNS secs=$SECS n=$requests" \
       "req_per_sec=$rps p50_us=$p50 p99_us=$p99 server_cpu_us_per_req=$cpu_us_per_req" \
       "errors=${errors:-none}" | tee -a "$lines"
}

lines="$(mktemp)"
trap 'rm -f "$lines"' EXIT
for ((run = 0; run < RUNS; run++)); do
  for server in "${servers[@]}"; do
    read -r peer variant command <<< "$server"
    measure "$peer" "$variant" $command
  done
done

echo
echo "# medians over $RUNS runs (req/s higher is better; ratio = this / go net_http)"
python3 - "$lines" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
    rows.setdefault((kv["peer"], kv["variant"]), []).append(kv)
med = lambda runs, key: statistics.median(float(r[key]) for r in runs)
base = rows.get(("go", "net_http"))
for (peer, variant), runs in rows.items():
    rps = med(runs, "req_per_sec")
    ratio = f" x{rps / med(base, 'req_per_sec'):.2f}" if base else ""
    print(f"{peer:5} {variant:9} req/s {rps:10,.0f}{ratio}  p50 {med(runs, 'p50_us'):7.0f} us"
          f"  p99 {med(runs, 'p99_us'):7.0f} us  server CPU {med(runs, 'server_cpu_us_per_req'):5.2f} us/req")
PY
