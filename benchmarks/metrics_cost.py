"""Cost of the per-query metrics on the answer path, in-process (no sockets).

Answers the demo cluster's queries in a loop with the real QueryStats and with
a no-op stand-in, cache on (the common case) and off, and prints answers/s.
Run: .venv/bin/python benchmarks/metrics_cost.py
"""

from __future__ import annotations

import os
import sys
import time

import dns.message

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dnsrewrite.querystats import QueryStats  # noqa: E402
from tests.conftest import demo_config, loaded_app  # noqa: E402

NAMES = [("reviews.bookinfo.svc.cluster.local.", "A"), ("billing.legacy.svc.cluster.local.", "A"),
         ("web.legacy.svc.cluster.local.", "AAAA"), ("_postgres._tcp.db.legacy.svc.cluster.local.", "SRV"),
         ("nope.legacy.svc.cluster.local.", "A")]


class NoStats(QueryStats):
    def record(self, *args: object) -> None:  # type: ignore[override]
        pass


def rate(cache_size: int, stats: QueryStats, rounds: int = 40_000) -> float:
    app = loaded_app(demo_config(reply_cache_size=cache_size))
    app.answerer.registry._local.stats = stats  # this thread counts into `stats`
    wires = [dns.message.make_query(n, t).to_wire() for n, t in NAMES]
    answer = app.answerer.answer
    start = time.perf_counter()
    for _ in range(rounds // len(wires)):
        for wire in wires:
            answer(wire, False)
    return rounds / (time.perf_counter() - start)


if __name__ == "__main__":
    for cache in (100_000, 0):
        best = {}
        for label, factory in (("metrics on", QueryStats), ("metrics off", NoStats)):
            best[label] = max(rate(cache, factory()) for _ in range(3))
        on, off = best["metrics on"], best["metrics off"]
        print(f"cache {'on ' if cache else 'off'}: metrics on {on:,.0f}/s, off {off:,.0f}/s, "
              f"cost {100 * (1 - on / off):.1f}% ({1e6 / on - 1e6 / off:.2f} us/query)")
