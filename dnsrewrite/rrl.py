"""Response rate limiting (RRL), optional and off by default.

Any pod can send us anything, with any source address it can forge; RRL keeps
the server from being a reflector. Only UDP replies that are errors (any rcode
but NOERROR) or large (more than `large_bytes`) are limited, per client prefix
(/24 for IPv4, /56 for IPv6) and category, with a token bucket refilled at
`responses_per_second`. A reply over the limit is dropped, except every
`slip`-th one, which goes out as a bodiless TC=1 reply so that a real client
retries over TCP (NSD's rrl-slip; 0 never slips).
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Callable

from cachetools import LRUCache

_TC = 0x0200


class ResponseRateLimiter:
    def __init__(
        self,
        responses_per_second: float,
        slip: int = 2,
        large_bytes: int = 512,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 56,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = responses_per_second
        self.burst = max(1.0, responses_per_second)  # one second's worth
        self.slip = slip
        self.large_bytes = large_bytes
        self.ipv4_prefix, self.ipv6_prefix = ipv4_prefix, ipv6_prefix
        self.clock = clock
        self._buckets: LRUCache[tuple[str, str], list[float]] = LRUCache(max_clients)
        self.dropped = 0
        self.slipped = 0

    def _prefix(self, ip: str) -> str:
        bits = self.ipv6_prefix if ":" in ip else self.ipv4_prefix
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))

    def filter(self, client_ip: str, reply: bytes) -> bytes | None:
        """The reply to send (itself, or a TC slip), or None to drop it."""
        rcode = reply[3] & 0xF
        if rcode == 0 and len(reply) <= self.large_bytes:
            return reply  # small positive answers are never limited
        key = (self._prefix(client_ip), "error" if rcode else "large")
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [self.burst, now, 0.0]  # tokens, last refill, limited count
            self._buckets[key] = bucket
        bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return reply
        bucket[2] += 1
        if self.slip and bucket[2] % self.slip == 0:
            self.slipped += 1
            return _slip(reply)
        self.dropped += 1
        return None


def _slip(reply: bytes) -> bytes:
    """Header (TC set, no records) and the question of `reply`."""
    ident, flags, qdcount = struct.unpack_from("!HHH", reply)
    end = 12
    if qdcount:
        while reply[end] != 0:
            end += 1 + reply[end]
        end += 5  # the root label, type and class
    return struct.pack("!HHHHHH", ident, flags | _TC, qdcount, 0, 0, 0) + reply[12:end]
