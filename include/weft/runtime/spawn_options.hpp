#pragma once
/// Per-spawn settings, passed as the first argument of the spawn-like calls.

#include <cstddef>
#include <string>

namespace weft {

struct SpawnOptions {
  /// Shown by `dump_fibers()` and in error reports; empty means "fiber-<id>".
  std::string name = {};
  /// Usable stack bytes; 0 means the hub's default (the meson option
  /// `default_stack_size_kib`). Rounded up to whole pages.
  std::size_t stack_size = 0;
};

}  // namespace weft
