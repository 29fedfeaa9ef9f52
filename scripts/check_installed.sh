#!/usr/bin/env bash
# Installs a built weft into a scratch directory and builds a program against
# it the way users do: pkg-config weft, #include <weft/weft.hpp>, nothing from
# the source tree. Then runs it.   check_installed.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1
stage=$(mktemp -d /tmp/weft-installed-XXXXXX)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" --quiet
pc_dir=$(dirname "$(find "$stage" -name weft.pc | head -n 1)")
flags=$(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs weft)
libdir=$(dirname "$(find "$stage" -name 'libweft.so' | head -n 1)")
# shellcheck disable=SC2086  # pkg-config's output is a list of flags
g++ -std=c++20 -Wall -Wextra -Werror tests/installed/consumer.cpp $flags \
  -Wl,-rpath,"$libdir" -o "$stage/consumer"
"$stage/consumer"
