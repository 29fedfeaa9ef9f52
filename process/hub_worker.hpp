#pragma once
/// The threads that run destroyable work and thread steps: workers of
/// detail::hub_worker_cache(), each of which makes a hub on its first job and
/// keeps it for the next ones until the thread exits, so a job costs neither
/// a new thread nor a new ring.

#include <exception>

#include <weft/runtime/detail/unique_function.hpp>
#include <weft/runtime/hub.hpp>

namespace weft::detail {

/// Runs `job(&hub, nullptr)` on a hub worker thread, outside any fiber, with
/// that thread's hub, which has no fiber alive when the job begins and must
/// have none when it returns; `job(nullptr, why)` if the hub could not be made.
/// Then `done()`, once the worker is idle again: whoever it wakes can hand the
/// same worker its next job at once (trio's rule: a caller woken before
/// would find no idle worker and start a thread). Neither may throw. Throws
/// std::system_error if no thread can be started (neither runs).
void run_on_hub_worker(UniqueFunction<void(Hub*, std::exception_ptr)> job,
                       UniqueFunction<void()> done);

}  // namespace weft::detail
