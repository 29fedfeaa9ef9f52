#!/usr/bin/env bash
# scripts/weft-gdb.py against tests/gdb_target (see its header for the fibers
# it leaves suspended): `info weft-fibers`, `weft-bt` and `weft-fiber` on the
# live process stopped by its SIGTRAP, then again on a core file of it.
#
# Usage: gdb_script_test.sh WEFT_GDB_PY GDB_TARGET
# Exits 77 (meson: skipped) when gdb is not installed, and only then.
set -uo pipefail

script=$1
target=$2

if ! command -v gdb >/dev/null 2>&1; then
  echo "gdb is not installed: skipped (scripts/setup.sh installs it)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# Markers split one gdb session's output into the answer of each command.
gdb_batch() {
  gdb -nx -batch -iex 'set debuginfod enabled off' -iex 'set pagination off' \
    -iex 'set width 0' -x "$script" "$@" 2>&1
}
section() {  # output, marker: the lines after "==marker==" up to the next marker
  awk -v start="==$2==" '$0 == start { on = 1; next } /^==.*==$/ { on = 0 } on' <<<"$1"
}
expect() {  # what, text, needle
  if grep -qF -- "$3" <<<"$2"; then
    echo "ok: $1 shows '$3'"
  else
    echo "FAIL: $1 lacks '$3'"
    failures=$((failures + 1))
  fi
}
expect_not() {  # what, text, needle
  if grep -qF -- "$3" <<<"$2"; then
    echo "FAIL: $1 shows '$3'"
    failures=$((failures + 1))
  else
    echo "ok: $1 does not show '$3'"
  fi
}

check_fibers() {  # where, output
  local fibers
  fibers=$(section "$2" fibers)
  expect "$1: info weft-fibers" "$fibers" "#1 main running"
  expect "$1: info weft-fibers" "$fibers" "#2 sleeper suspended waiting on sleep"
  expect "$1: info weft-fibers" "$fibers" "#3 waiter suspended waiting on Event::wait"
  expect "$1: info weft-fibers" "$fibers" "#4 yielder ready"
  expect "$1: info weft-fibers" "$fibers" "#5 fresh created"
}

check_backtraces() {  # where, output
  local sleeper waiter yielder
  sleeper=$(section "$2" bt-sleeper)
  expect "$1: weft-bt 2" "$sleeper" "fiber #2 sleeper suspended"
  expect "$1: weft-bt 2" "$sleeper" "weft::sleep"
  expect "$1: weft-bt 2" "$sleeper" "gdb_target_sleeper"
  expect "$1: weft-bt 2" "$sleeper" "#0 "
  # Only the fiber's own frames: not where the thread stopped (raise, main).
  expect_not "$1: weft-bt 2" "$sleeper" "raise"
  expect_not "$1: weft-bt 2" "$sleeper" "main () at"
  waiter=$(section "$2" bt-waiter)
  expect "$1: weft-bt waiter" "$waiter" "Event<void>::wait"
  expect "$1: weft-bt waiter" "$waiter" "gdb_target_waiter"
  yielder=$(section "$2" bt-yielder)
  expect "$1: weft-bt yielder" "$yielder" "gdb_target_yielder"
  # It ends at the fiber's first frame, not in what lies beyond on the stack.
  expect "$1: weft-bt yielder" "$(tail -n 1 <<<"$yielder")" "HubCore::fiber_entry"
  expect "$1: weft-bt fresh" "$(section "$2" bt-fresh)" "has not started"
  expect "$1: weft-bt main" "$(section "$2" bt-main)" "runs now"
  expect "$1: weft-bt 99" "$(section "$2" bt-none)" "no live fiber 99"
}

commands=(
  -ex 'echo ==fibers==\n' -ex 'info weft-fibers'
  -ex 'echo ==bt-sleeper==\n' -ex 'weft-bt 2'
  -ex 'echo ==bt-waiter==\n' -ex 'weft-bt waiter'
  -ex 'echo ==bt-yielder==\n' -ex 'weft-bt yielder'
  -ex 'echo ==bt-fresh==\n' -ex 'weft-bt fresh'
  -ex 'echo ==bt-main==\n' -ex 'weft-bt main'
  -ex 'echo ==bt-none==\n' -ex 'weft-bt 99'
  -ex 'echo ==end==\n'
)

# On its own the target ignores its SIGTRAP and ends cleanly.
if ! "$target" >"$work/plain.out" 2>&1; then
  echo "FAIL: $target on its own:"
  cat "$work/plain.out"
  exit 1
fi

live=$(gdb_batch -ex run "${commands[@]}" \
  -ex 'echo ==select==\n' -ex 'weft-fiber sleeper' -ex 'bt' \
  -ex 'echo ==after==\n' -ex 'weft-fiber off' -ex 'bt' -ex 'echo ==end==\n' \
  -ex kill --args "$target")
echo "$live"
echo "---"
expect "live" "$live" "SIGTRAP"
check_fibers live "$live"
check_backtraces live "$live"
expect "live: weft-fiber sleeper; bt" "$(section "$live" select)" "gdb_target_sleeper"
expect_not "live: weft-fiber off; bt" "$(section "$live" after)" "gdb_target_sleeper"

# gdb's gcore leaves out a mapping it cannot read whole, and since Linux 6.13
# a pool of stacks is one mapping with MADV_GUARD_INSTALL guard pages inside:
# the core is written from a target with mprotect guards (the kernel's own
# core dumps have the stacks either way).
WEFT_STACK_GUARD=mprotect gdb_batch -ex run -ex "generate-core-file $work/core" -ex kill \
  --args "$target" >"$work/gcore.out"
if [ -s "$work/core" ]; then
  core=$(gdb_batch "${commands[@]}" "$target" "$work/core")
  echo "$core"
  echo "---"
  check_fibers core "$core"
  check_backtraces core "$core"
else
  cat "$work/gcore.out"
  echo "FAIL: gdb wrote no core file"
  failures=$((failures + 1))
fi

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
