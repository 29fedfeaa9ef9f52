#pragma once
/// weft: stackful fibers (greenthreads) on io_uring event loops.
/// This umbrella header brings in the whole public API.

#include <weft/io/errors.hpp>
#include <weft/io/file.hpp>
#include <weft/io/tcp.hpp>
#include <weft/io/udp.hpp>
#include <weft/io/unix.hpp>
#include <weft/process/managed_thread.hpp>
#include <weft/process/thread_cache.hpp>
#include <weft/process/to_thread.hpp>
#include <weft/runtime/clock.hpp>
#include <weft/runtime/debug.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/fiber_local.hpp>
#include <weft/runtime/green_pool.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/hub.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/looping_call.hpp>
#include <weft/runtime/run.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/runtime/sleep.hpp>
#include <weft/runtime/spawn_options.hpp>
#include <weft/runtime/thread_group.hpp>
#include <weft/runtime/timeout.hpp>
#include <weft/sync/capacity_limiter.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/queue.hpp>
#include <weft/sync/semaphore.hpp>
