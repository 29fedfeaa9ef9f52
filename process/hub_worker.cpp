#include "process/hub_worker.hpp"

#include <pthread.h>

#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include <weft/process/thread_cache.hpp>

namespace weft::detail {
namespace {

// Made by the thread's first job; destroyed on the thread when it exits.
thread_local std::optional<Hub> worker_hub;

Hub& this_workers_hub() {
  if (!worker_hub) {
    ::pthread_setname_np(::pthread_self(), "weft-hubworker");
    worker_hub.emplace();
  }
  return *worker_hub;
}

}  // namespace

void run_on_hub_worker(UniqueFunction<void(Hub*, std::exception_ptr)> job,
                       UniqueFunction<void()> done) {
  hub_worker_cache().start_thread_soon(
      [job = std::move(job)]() mutable {
        Hub* hub = nullptr;
        try {
          hub = &this_workers_hub();
        } catch (...) {
          return job(nullptr, std::current_exception());
        }
        job(hub, nullptr);
      },
      [done = std::move(done)](std::exception_ptr) mutable { done(); });
}

}  // namespace weft::detail
