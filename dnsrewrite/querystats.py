"""Per-query counters as plain integers: the query path's only metrics cost.

`QueryStats.record` bumps a dict entry and three bucket lists; the Prometheus
collector in `metrics.py` reads them at scrape time. No locks, no label
objects, never a query name in a key.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

# CoreDNS's buckets (plugin/metrics/vars: duration from 0.25 ms doubling; sizes).
DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000,
                64000)
TYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
          33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
          50: "NSEC3", 251: "IXFR", 252: "AXFR", 255: "ANY", 65: "HTTPS"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
           5: "REFUSED", 16: "BADVERS"}


class Buckets:
    """A histogram as plain integers: one list bump per observation."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family_buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(float(bound)) if isinstance(bound, float) else str(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


class QueryStats:
    """Per-query counters keyed by (zone, proto, family, qtype, rcode), and histograms."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str, int, int], int] = defaultdict(int)
        self.do_requests: defaultdict[str, int] = defaultdict(int)
        self.duration: defaultdict[tuple[str, str], Buckets] = defaultdict(
            lambda: Buckets(DURATION_BUCKETS))
        self.request_size: defaultdict[tuple[str, str], Buckets] = defaultdict(
            lambda: Buckets(SIZE_BUCKETS))
        self.response_size: defaultdict[tuple[str, str], Buckets] = defaultdict(
            lambda: Buckets(SIZE_BUCKETS))
        self.rewritten = 0  # A/AAAA answered with a gateway's VIPs
        self.panics = 0  # failures while answering (replied SERVFAIL)

    def record(self, zone: str, tcp: bool, family: str, qtype: int, rcode: int,
               request_size: int, response_size: int, seconds: float) -> None:
        proto = "tcp" if tcp else "udp"
        self.requests[(zone, proto, family, qtype, rcode)] += 1
        qname = TYPE_NAMES.get(qtype, "other")
        self.duration[(zone, qname)].observe(seconds)
        self.request_size[(zone, proto)].observe(request_size)
        if response_size:
            self.response_size[(zone, proto)].observe(response_size)


    def merge(self, other: QueryStats) -> None:
        """Add `other`'s counts into this one (for a scrape-time snapshot)."""
        for key, n in list(other.requests.items()):
            self.requests[key] += n
        for zone, n in list(other.do_requests.items()):
            self.do_requests[zone] += n
        pairs = ((self.duration, other.duration), (self.request_size, other.request_size),
                 (self.response_size, other.response_size))
        for mine, theirs in pairs:
            for bucket_key, buckets in list(theirs.items()):
                target = mine[bucket_key]
                target.counts = [a + b for a, b in zip(target.counts, buckets.counts, strict=True)]
                target.total += buckets.total
        self.rewritten += other.rewritten
        self.panics += other.panics


class StatsRegistry:
    """One QueryStats per thread that answers (the UDP readers, the event loop).

    Each thread bumps only its own integers, so no update is lost and no lock
    is taken on the query path; `merged()` adds them up at scrape time.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[QueryStats] = []
        self._lock = threading.Lock()

    def current(self) -> QueryStats:
        try:
            stats: QueryStats = self._local.stats
            return stats
        except AttributeError:
            stats = QueryStats()
            with self._lock:
                self._all.append(stats)
            self._local.stats = stats
            return stats

    def merged(self) -> QueryStats:
        total = QueryStats()
        with self._lock:
            parts = list(self._all)
        for part in parts:
            total.merge(part)
        return total


def zone_label(zone: str | None) -> str:
    return f"{zone}." if zone else "dropped"


