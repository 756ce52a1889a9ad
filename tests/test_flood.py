"""Floods and TCP abuse against a live `dnsrewrite serve`, scaled down for CI.

benchmarks/flood.py is the full run (200,000 datagrams, 2,000 frames, the connection cap);
this is the same code at a tenth: 20,000 malformed datagrams in two batches, 200 malformed
TCP frames with 20 slowloris connections (idle timeout 1 s), 1,000 pipelined queries.
"""

from __future__ import annotations

import random
import struct
import tracemalloc

import pytest

from benchmarks.flood import run
from tests.conftest import demo_config, loaded_app


@pytest.fixture(scope="module")
def flood() -> dict:
    return run(datagrams=20_000, batch=10_000, frames=200, slowloris=20, rate=10_000,
               probe_ms=1_000, pipeline=1_000, idle_timeout_s=1.0, rss_limit_mb=24,
               log=lambda *_: None)


def test_the_server_survives_and_exits_cleanly(flood: dict) -> None:
    assert flood["alive"], flood["failures"]
    assert flood["exit_code"] == 0  # SIGTERM: a clean stop afterwards
    assert flood["datagrams_sent"] == 20_000 and flood["frames_sent"] == 200
    assert flood["panics"] == 0 and flood["log_tracebacks"] == 0


def test_every_probe_after_a_batch_is_answered(flood: dict) -> None:
    # The full run holds probes to 50 ms; a shared CI machine gets 1 s.
    assert flood["probes_failed"] == 0
    assert flood["failures"] == [], flood["failures"]
    assert flood["final_probe_udp_ms"] is not None and flood["final_probe_tcp_ms"] is not None
    assert flood["ready_status"] == 200


def test_the_server_answered_the_malformed_datagrams_it_should(flood: dict) -> None:
    # QR=1 and short datagrams are dropped; most of the rest gets FORMERR or better.
    assert flood["udp_replies"] > 0.6 * flood["datagrams_sent"]


def test_tcp_abuse_ends_every_connection(flood: dict) -> None:
    for batch in flood["tcp"]:
        assert batch["closed_by_server"] == batch["connections"]
    assert flood["slowloris"]["closed_by_server"] == flood["slowloris"]["held"] == 20


def test_1000_pipelined_queries_are_all_answered_with_matching_ids(flood: dict) -> None:
    pipe = flood["pipelined"]
    assert pipe["answered"] == pipe["sent"] == 1_000
    assert pipe["ids_match"] and pipe["wrong_question"] == 0


def test_rss_stays_bounded(flood: dict) -> None:
    # Replies to garbage are not cached, so memory stays flat (issue 7: < 5 MB).
    assert flood["rss_growth_kb"] < 5 * 1024


def test_formerr_replies_to_garbage_are_not_cached() -> None:
    app = loaded_app(demo_config())
    rng = random.Random(7)
    packets = [struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x3f" + rng.randbytes(400)
               for i in range(5_000)]  # mostly a label that runs past the end: FORMERR
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for packet in packets:
            reply = app.answerer.answer(packet)
            assert reply is not None and reply[3] & 0xF in (1, 5)  # FORMERR, or REFUSED
            # when the random bytes happen to spell a question outside our zones
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        app.writer.stop()
    assert grown < 512 * 1024, f"{grown / 1024:.0f} KB held after 5,000 malformed queries"
