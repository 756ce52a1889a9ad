"""The reply cache is an optimisation only: byte-identical replies (but ID) with it on or off,
across data changes."""

from __future__ import annotations

import random

import dns.message

from dnsrewrite.answer import Answerer
from tests.conftest import demo_config, loaded_app
from tests.test_records import CASES


def queries() -> list[bytes]:
    rng = random.Random(7)
    out = []
    for qname, qtype, *_ in CASES:
        for edns, do in ((None, False), (0, False), (0, True)):
            name = "".join(c.upper() if rng.random() < 0.3 else c for c in qname)
            q = dns.message.make_query(name, qtype, use_edns=edns, want_dnssec=do)
            out.append(q.to_wire())
    return out


def test_cache_on_and_off_give_identical_bytes_across_data_changes(tmp_path):
    # One app, two answerers over the same published views: cache on and off.
    on = loaded_app(demo_config())
    off_answerer = Answerer(demo_config(reply_cache_size=0), lambda: on.view)
    assert on.answerer.cache is not None and off_answerer.cache is None
    data = tmp_path / "cluster.yaml"
    with open(on.cfg.cluster_file) as handle:
        original = handle.read()
    for round_ in range(3):
        for wire in queries() * 2:  # the second pass is served from the cache
            for tcp in (False, True):
                got, want = on.answerer.answer(wire, tcp), off_answerer.answer(wire, tcp)
                assert got == want, dns.message.from_wire(wire).question
        # Change the data under both: a cached reply must not survive it.
        data.write_text(original.replace("10.96.20.10", f"10.96.20.{50 + round_}")
                        .replace('dnsrewrite.io/enroll: "true"',
                                 'dnsrewrite.io/enroll: "false"' if round_ % 2 == 0
                                 else 'dnsrewrite.io/enroll: "true"'))
        object.__setattr__(on.cfg, "cluster_file", str(data))
        assert on.load_cluster_file()
    reply = dns.message.from_wire(on.answerer.answer(
        dns.message.make_query("billing.legacy.svc.cluster.local.", "A").to_wire()))
    assert reply.answer[0][0].to_text() == "10.96.20.52"


def test_a_hit_patches_only_the_id():
    app = loaded_app(demo_config())
    q = dns.message.make_query("reviews.bookinfo.svc.cluster.local.", "A")
    q.id = 1
    first = app.answerer.answer(q.to_wire())
    q.id = 2
    second = app.answerer.answer(q.to_wire())
    assert first[2:] == second[2:] and first[:2] == b"\x00\x01" and second[:2] == b"\x00\x02"


def test_a_change_to_one_service_keeps_the_others_cached_and_never_serves_stale():
    from dnsrewrite.model import service_from_api
    from tests.fakeapi import objects as k8s

    on = loaded_app(demo_config())
    off_answerer = Answerer(demo_config(reply_cache_size=0), lambda: on.view)
    legacy = dns.message.make_query("billing.legacy.svc.cluster.local.", "A").to_wire()
    reviews = dns.message.make_query("reviews-pods.bookinfo.svc.cluster.local.", "A").to_wire()
    nx = dns.message.make_query("nope.bookinfo.svc.cluster.local.", "A").to_wire()
    ptr = dns.message.make_query("7.7.96.10.in-addr.arpa.", "PTR").to_wire()
    for wire in (legacy, reviews, nx, ptr):
        on.answerer.answer(wire)
    # A new Service in bookinfo, with a ClusterIP (so the reverse index changes too).
    new = service_from_api(k8s.service("bookinfo", "nope", cluster_ips=["10.96.7.7"],
                                       ports=[("http", 9080, "TCP")]))
    on.writer.submit(lambda b: b.set_service(new)).wait(10)
    cache = on.answerer.cache
    assert cache.get(legacy, False, on.view) is not None  # legacy untouched: still cached
    assert cache.get(reviews, False, on.view) is not None  # its neighbour too
    assert cache.get(nx, False, on.view) is None  # bookinfo/nope changed: invalidated
    assert cache.get(ptr, False, on.view) is None  # the reverse index changed
    for wire in queries() + [legacy, reviews, nx, ptr]:
        assert on.answerer.answer(wire) == off_answerer.answer(wire)
    assert dns.message.from_wire(on.answerer.answer(nx)).answer  # now exists: not stale
