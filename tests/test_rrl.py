"""Response rate limiting: off by default; when on, errors and large replies per client
prefix are limited, with every Nth limited reply slipped as TC=1."""

from __future__ import annotations

import socket

import dns.message
import dns.rcode

from dnsrewrite.rrl import ResponseRateLimiter
from tests.conftest import ServerThread, demo_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reply(name: str, rcode: int = 0, pad: int = 0) -> bytes:
    msg = dns.message.make_response(dns.message.make_query(name, "A"))
    msg.set_rcode(rcode)
    return msg.to_wire() + b"\x00" * pad


def test_small_positive_answers_are_never_limited():
    rrl = ResponseRateLimiter(1, clock=Clock())
    ok = reply("billing.legacy.svc.cluster.local.")
    assert all(rrl.filter("10.0.0.1", ok) == ok for _ in range(100))


def test_errors_over_the_limit_are_dropped_and_every_second_slips_as_tc():
    clock = Clock()
    rrl = ResponseRateLimiter(5, slip=2, clock=clock)
    nx = reply("nope.legacy.svc.cluster.local.", dns.rcode.NXDOMAIN)
    results = [rrl.filter("10.0.0.1", nx) for _ in range(15)]
    assert results[:5] == [nx] * 5  # one second's burst
    limited = results[5:]
    slips = [r for r in limited if r is not None]
    assert len(slips) == 5 and limited.count(None) == 5
    slip = dns.message.from_wire(slips[0])
    assert slip.flags & 0x0200 and not slip.answer and slip.question
    # Same /24: same bucket; another prefix has its own.
    assert rrl.filter("10.0.0.200", nx) != nx
    assert rrl.filter("10.0.1.1", nx) == nx
    clock.now += 1.0  # a second later the bucket has refilled
    assert [rrl.filter("10.0.0.1", nx) for _ in range(5)] == [nx] * 5


def test_large_answers_are_limited_and_slip_zero_drops_all():
    rrl = ResponseRateLimiter(2, slip=0, large_bytes=100, clock=Clock())
    big = reply("db.legacy.svc.cluster.local.", pad=200)
    assert [rrl.filter("fd00::1", big) is None for _ in range(6)] == [False, False] + [True] * 4
    assert rrl.dropped == 4 and rrl.slipped == 0


def test_rrl_on_a_live_server_limits_refused_floods():
    server = ServerThread(demo_config(rrl={"enabled": True, "responses_per_second": 10,
                                           "slip": 0})).start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.5)
        query = dns.message.make_query("example.com.", "A").to_wire()
        for _ in range(50):
            sock.sendto(query, ("127.0.0.1", server.port))
        got = 0
        try:
            while True:
                sock.recvfrom(4096)
                got += 1
        except TimeoutError:
            pass
        assert 10 <= got < 20  # the burst, plus what refilled meanwhile
        assert server.app.rrl.dropped >= 30
        ok = dns.message.make_query("billing.legacy.svc.cluster.local.", "A").to_wire()
        sock.sendto(ok, ("127.0.0.1", server.port))
        assert dns.message.from_wire(sock.recvfrom(4096)[0]).answer  # positives still flow
    finally:
        server.stop()


def test_rrl_is_off_by_default():
    assert ServerThread(demo_config()).cfg.rrl.enabled is False
