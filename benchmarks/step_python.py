"""Python's multiprocessing beside weft's child-process steps (step_compare runs this).

A step runs as dagster's child-process executor runs one: a
multiprocessing.Process whose target puts a start event, the step's values
and a done event on a multiprocessing.Queue, which the parent reads with
queue.get(timeout=TICK), TICK = 20 ms, checking that the child is alive when
a tick passes with nothing.

1. Event latency: the step puts time.monotonic_ns() `events` times, 200 us
   apart (the parent is waiting in get() when each arrives); the parent
   records its receive time minus that.
2. Throughput: `steps` trivial steps (start, one value, done), at most
   os.cpu_count() children at once, run as dagster's multiprocess executor
   does: each pass of its loop starts steps while there is room, then reads
   one event (or a tick of nothing) from each running step in turn, and
   drops the steps that have ended (their child joined).

Prints one line per figure and start method, the median of the rounds:
    latency_p50_us <method> <value>
    latency_p99_us <method> <value>
    steps_per_s <method> <value>
Usage: step_python.py [events = 2000] [steps = 30] [rounds = 3]
"""

import multiprocessing as mp
import os
import queue
import statistics
import sys
import time

TICK = 0.02
PACE = 0.0002


def stamped_values(event_queue, events):
    event_queue.put(("start", os.getpid()))
    for _ in range(events):
        time.sleep(PACE)
        event_queue.put(("value", time.monotonic_ns()))
    event_queue.put(("done", os.getpid()))


def one_value(event_queue):
    event_queue.put(("start", os.getpid()))
    event_queue.put(("value", 1))
    event_queue.put(("done", os.getpid()))


def step_events(context, target, *args):
    """One step's events as (received ns, kind, value); None for a tick with nothing."""
    event_queue = context.Queue()
    process = context.Process(target=target, args=(event_queue, *args))
    process.start()
    try:
        while True:
            try:
                kind, value = event_queue.get(timeout=TICK)
            except queue.Empty:
                if not process.is_alive() and event_queue.empty():
                    raise RuntimeError(f"child {process.pid} died with {process.exitcode}")
                yield None
                continue
            yield time.monotonic_ns(), kind, value
            if kind == "done":
                break
        process.join()
    finally:
        event_queue.close()


def percentile(values, p):
    values = sorted(values)
    return values[int(p * (len(values) - 1))]


def latencies_us(context, events):
    latencies = []
    for event in step_events(context, stamped_values, events):
        if event is not None and event[1] == "value":
            latencies.append((event[0] - event[2]) / 1e3)
    assert len(latencies) == events
    return latencies


def steps_per_second(context, steps):
    limit = os.cpu_count()
    not_started = steps
    running = []
    values = 0
    began = time.perf_counter()
    while not_started or running:
        while not_started and len(running) < limit:
            running.append(step_events(context, one_value))
            not_started -= 1
        still_running = []
        for step in running:
            try:
                event = next(step)
            except StopIteration:
                continue
            if event is not None and event[1] == "value":
                values += 1
            still_running.append(step)
        running = still_running
    assert values == steps
    return steps / (time.perf_counter() - began)


def main():
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    for method in ("fork", "spawn", "forkserver"):
        context = mp.get_context(method)
        steps_per_second(context, 2)  # warm up (the forkserver starts here)
        p50, p99, rates = [], [], []
        for _ in range(rounds):
            latencies = latencies_us(context, events)
            p50.append(percentile(latencies, 0.5))
            p99.append(percentile(latencies, 0.99))
            rates.append(steps_per_second(context, steps))
        print("latency_p50_us", method, statistics.median(p50), flush=True)
        print("latency_p99_us", method, statistics.median(p99), flush=True)
        print("steps_per_s", method, statistics.median(rates), flush=True)


if __name__ == "__main__":
    main()
