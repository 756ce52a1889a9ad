#!/usr/bin/env python3
"""Where the answer path spends its time: Answerer.answer over the query file, profiled.

    taskset -c 1 .venv/bin/python benchmarks/profile_answer.py [--rev REV] [--top 10]

Loads the benchmark cluster (benchmarks/out, made by throughput.sh or gen_cluster.py) the
way `serve` does, turns every line of queries.txt into the query bytes dnsperf sends
(no EDNS, RD=1, distinct IDs), times a plain loop of `Answerer.answer` over them, then
runs the same loop under cProfile and prints the top functions by own time and by
cumulative time. No sockets: this is the CPU cost per query above the I/O layer.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", help="profile this git revision instead of the working tree")
    parser.add_argument("--passes", type=int, default=1, help="loops over the query file")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="timed loops (best is reported)")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="dnsrewrite-profile-")
    code, label = bench.code_dir(args.rev, scratch)
    sys.path.insert(0, code)
    import dnslib

    from dnsrewrite import config
    from dnsrewrite.app import App

    logging.disable(logging.WARNING)
    cfg = config.load(os.path.join(bench.OUT, "config.yaml"))
    app = App(cfg)
    if not app.load_cluster_file():
        return 2
    packets = []
    with open(os.path.join(bench.OUT, "queries.txt")) as handle:
        for index, line in enumerate(handle):
            name, qtype = line.split()[:2]
            query = dnslib.DNSRecord.question(name, qtype)
            query.header.id = index & 0xFFFF
            packets.append(bytes(query.pack()))
    answer = app.answerer.answer

    def loop() -> None:
        for _ in range(args.passes):
            for packet in packets:
                answer(packet)

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        loop()
        timings.append(time.perf_counter() - started)
    count = len(packets) * args.passes
    best = min(timings)
    print(f"dnsrewrite {label}: {count} queries, best of {args.repeat} loops {best:.2f}s = "
          f"{best / count * 1e6:.1f} us/query ({count / best:.0f} answers/s on one core, no I/O; "
          f"all loops: {', '.join(f'{t / count * 1e6:.1f}' for t in timings)} us/query)")
    profiler = cProfile.Profile()
    profiler.enable()
    loop()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(args.top)
        text = out.getvalue()
        print(f"--- top {args.top} by {order} ---")
        print(text[text.index("   ncalls"):].rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
