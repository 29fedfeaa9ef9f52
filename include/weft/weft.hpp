#pragma once
/// weft: stackful fibers (greenthreads) on io_uring event loops.
/// This umbrella header brings in the whole public API.

#include <weft/runtime/debug.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/green_pool.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/hub.hpp>
#include <weft/runtime/run.hpp>
#include <weft/runtime/sleep.hpp>
#include <weft/runtime/spawn_options.hpp>
#include <weft/runtime/timeout.hpp>
