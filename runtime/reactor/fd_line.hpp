#pragma once
// The line of fibers waiting on one fd in one direction, as the backends keep
// it (Backend::watch): intrusive, first come first served, and the one fiber
// that has the turn now.

#include <cstddef>

#include "runtime/reactor/backend.hpp"

namespace weft::detail {

struct FdLine {
  FdWatcher* first = nullptr;  // waiting, longest first
  FdWatcher* last = nullptr;
  FdWatcher* served = nullptr;  // has the turn: woken, not done yet

  bool idle() const noexcept { return !first && !served; }

  void push_back(FdWatcher* w) noexcept {
    w->previous = last;
    w->next = nullptr;
    (last ? last->next : first) = w;
    last = w;
    w->state = FdWatcher::State::waiting;
  }
  void push_front(FdWatcher* w) noexcept {
    w->previous = nullptr;
    w->next = first;
    (first ? first->previous : last) = w;
    first = w;
    w->state = FdWatcher::State::waiting;
  }
  void remove(FdWatcher* w) noexcept {
    (w->previous ? w->previous->next : first) = w->next;
    (w->next ? w->next->previous : last) = w->previous;
    w->previous = w->next = nullptr;
    w->state = FdWatcher::State::idle;
  }
  /// What `w` gave up in leave().
  enum class Left : unsigned char { nothing, place, turn };
  /// `w` is done with the line (Backend::unwatch): out of it if it was
  /// waiting, its turn taken back if it had it. Whether what a turn leaves
  /// goes to the next one in line is the backend's call.
  Left leave(FdWatcher* w) noexcept {
    switch (w->state) {
      case FdWatcher::State::idle:
        return Left::nothing;
      case FdWatcher::State::waiting:
        remove(w);
        return Left::place;
      case FdWatcher::State::woken:
        break;
    }
    w->state = FdWatcher::State::idle;
    if (served != w) return Left::nothing;
    served = nullptr;
    return Left::turn;
  }
  /// Gives the turn to `w` (not in the line).
  void serve(FdWatcher* w) noexcept {
    w->state = FdWatcher::State::woken;
    served = w;
  }
  /// The first waiting gets the turn and its call, with `result`; false if none waits.
  bool serve_first(int result) noexcept {
    FdWatcher* w = first;
    if (!w) return false;
    remove(w);
    serve(w);
    w->complete(w, result, 0);
    return true;
  }
  /// The file is gone: every waiting fiber wakes with -EBADF; one that has the
  /// turn finds out with Backend::still_open. Returns how many waited.
  std::size_t drop() noexcept {
    if (served) served->state = FdWatcher::State::idle;
    served = nullptr;
    std::size_t dropped = 0;
    while (FdWatcher* w = first) {
      remove(w);
      w->complete(w, -EBADF, 0);
      ++dropped;
    }
    return dropped;
  }
};

}  // namespace weft::detail
