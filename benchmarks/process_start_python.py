"""Python's multiprocessing beside weft's process start (process_start_compare runs this).

Start-to-result latency of a trivial child per start method, the way caikit's
DestroyableProcess runs one: a Process whose target sends its result through a
Pipe, then start(), recv(), join(). Prints one line per method:
    <method> <median seconds per call>
Usage: process_start_python.py [calls = 50] [rounds = 3]
"""

import multiprocessing as mp
import statistics
import sys
import time


def trivial(connection):
    connection.send(1)
    connection.close()


def per_call(context, calls):
    began = time.perf_counter()
    for _ in range(calls):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=trivial, args=(sender,))
        process.start()
        sender.close()
        assert receiver.recv() == 1
        process.join()
        receiver.close()
    return (time.perf_counter() - began) / calls


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for method in ("fork", "spawn", "forkserver"):
        context = mp.get_context(method)
        per_call(context, 2)  # warm up (the forkserver starts here)
        times = [per_call(context, calls) for _ in range(rounds)]
        print(method, statistics.median(times), flush=True)


if __name__ == "__main__":
    main()
