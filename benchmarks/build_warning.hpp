#pragma once
// A benchmark built without optimisation or with a sanitizer measures the
// build, not the runtime: say so loudly before any number is printed.

#include <cstdio>

namespace weft_bench {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_BENCH_SANITIZED 1
#endif
#endif

inline void warn_if_not_a_release_build(const char* program) {
#ifndef __OPTIMIZE__
  std::fprintf(stderr,
               "***WARNING*** %s was built without optimisation: its timings mean nothing.\n"
               "***WARNING*** Use: meson setup build-bench --buildtype=release\n",
               program);
#endif
#ifdef WEFT_BENCH_SANITIZED
  std::fprintf(stderr,
               "***WARNING*** %s was built with a sanitizer (b_sanitize): its timings and RSS "
               "figures mean nothing.\n",
               program);
#endif
  static_cast<void>(program);
}

}  // namespace weft_bench
