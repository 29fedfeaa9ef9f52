#!/usr/bin/env bash
# Installs what is missing, builds weft and runs the whole test suite: on the
# io_uring backend, on the epoll fallback, then again both under
# AddressSanitizer + UndefinedBehaviorSanitizer; then the tests of what
# crosses threads (sync, process, the hub) under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

jobs=$(nproc)
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp"

run_suite() {  # build dir, meson setup options...
  local dir=$1
  shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
  ninja -C "$dir" -j "$jobs"
  echo "== $dir: default backend (io_uring, else epoll)"
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs
  echo "== $dir: epoll backend"
  meson test -C "$dir" --setup epoll --num-processes "$jobs" --print-errorlogs
}

# The sanitizer builds compile at -O1 with line tables only (-g1): stack
# traces still name every file and line, and the two builds take about 40%
# less time than at -O2 -g, most of CI's time on a 2-core machine.
sanitizer_build_options=(-Db_lundef=false -Dbenchmarks=false -Dexamples=false
  -Doptimization=1 -Ddebug=false -Dcpp_args=-g1)

run_threaded_under_tsan() {
  local dir=build-tsan
  [ -f "$dir/build.ninja" ] ||
    meson setup "$dir" -Db_sanitize=thread "${sanitizer_build_options[@]}"
  local tests=(runtime_embedding runtime_fork runtime_hub runtime_kill runtime_log runtime_multi_hub runtime_remote_queue runtime_spawn runtime_stress runtime_thread_group runtime_timeout runtime_virtual_time)
  # process_codec is plain computation on one thread: nothing for TSan there.
  tests+=($(cd tests && ls io_*.cpp sync_*.cpp process_*.cpp | sed 's/\.cpp$//' | grep -v '^process_codec$'))
  ninja -C "$dir" -j "$jobs" "${tests[@]/#/tests/}"
  echo "== $dir: ThreadSanitizer (${tests[*]})"
  TSAN_OPTIONS=halt_on_error=1 meson test -C "$dir" --no-rebuild --num-processes "$jobs" \
    --print-errorlogs "${tests[@]}"
}

run_suite build-test -Dbenchmarks=false
echo "== installed: a program built against weft.pc and <weft/weft.hpp> alone"
./scripts/check_installed.sh build-test
run_suite build-asan -Db_sanitize=address,undefined "${sanitizer_build_options[@]}"
run_threaded_under_tsan
echo "weft: all tests passed (io_uring, epoll, ASan+UBSan, TSan)"
