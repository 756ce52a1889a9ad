"""Fuzzing in CI: the seed corpus replayed, a short mutation run, and Hypothesis properties.

The long run is `benchmarks/fuzz.sh SECONDS` (atheris); this file needs no atheris. Every
input goes through `tests/fuzz/target.py`: answered as UDP and TCP with the reply cache on
(twice, so once from the cache) and off, all three byte-identical, each reply checked by
`tests/fuzz/oracle.py`, and no panic (an exception caught by the answerer's safety net).
Panics already known and waiting for a fix in dnsrewrite/ are strict xfails here.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsrewrite.app import App
from tests.conftest import DEMO_CLUSTER, demo_config, loaded_app
from tests.fuzz.known import KNOWN_PANICS
from tests.fuzz.make_corpus import header, opt, qname
from tests.fuzz.oracle import OracleError, check, client_opt, question_length
from tests.fuzz.target import Target, mutate
from tests.test_protocol import headless_service

FUZZ = Path(__file__).parent / "fuzz"
CORPUS = sorted((FUZZ / "corpus").iterdir())
KNOWN_BUGS = sorted(p for p in (FUZZ / "known_bugs").iterdir() if not p.name.startswith("."))
NXDOMAIN = 3

# Deterministic in CI: the same examples every run (a long run can drop this).
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target(quiet=False)
    yield t
    t.close()


# --- the corpus ---------------------------------------------------------------------------


def test_the_corpus_has_every_shape() -> None:
    names = {path.name for path in CORPUS}
    assert len(names) >= 60
    for shape in ("a-enrolled", "srv-headless-port", "ptr-v6", "soa-edns1", "soa-optlist",
                  "soa-tsig-signed", "opcode-notify", "malformed-two-opts", "malformed-qr-set",
                  "malformed-empty", "malformed-pointer-in-question"):
        assert shape in names


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_corpus_input_is_answered_within_the_rules(target: Target, path: Path) -> None:
    target.one_input(path.read_bytes())
    assert not target.known, "a corpus input hit a known panic: move it to known_bugs/"


def test_known_panic_reproducers_still_panic() -> None:
    # Each file in known_bugs/ reproduces a panic listed in known.py whose fix is pending.
    # When this fails for one, it is fixed: delete its entry in known.py and move the file
    # into corpus/ (make_corpus.py writes both directories).
    for path in KNOWN_BUGS:
        t = Target(strict=True, quiet=False)
        try:
            with pytest.raises(OracleError, match="panic"):
                t.one_input(path.read_bytes())
        finally:
            t.close()


def test_every_known_panic_has_a_reproducer() -> None:
    assert len(KNOWN_BUGS) == len(KNOWN_PANICS)


def test_a_short_mutation_run_finds_nothing_new(target: Target) -> None:
    # The fallback mutator of fuzz_answer.py, seeded: 3,000 inputs, ~2 s.
    rng = random.Random(20261126)
    seeds = [path.read_bytes() for path in CORPUS]
    for _ in range(3000):
        target.one_input(mutate(rng, rng.choice(seeds), seeds, 1024))


# --- generated queries --------------------------------------------------------------------

EXISTING = [
    "reviews.bookinfo.svc.cluster.local", "productpage.bookinfo.svc.cluster.local",
    "billing.legacy.svc.cluster.local", "web.legacy.svc.cluster.local",
    "db.legacy.svc.cluster.local", "db-0.db.legacy.svc.cluster.local",
    "_postgres._tcp.db.legacy.svc.cluster.local", "_http._tcp.billing.legacy.svc.cluster.local",
    "_https._tcp.web.legacy.svc.cluster.local", "statsd.legacy.svc.cluster.local",
    "10-244-3-60.statsd.legacy.svc.cluster.local", "kafka-1.kafka-peers.legacy.svc.cluster.local",
    "payments-api.legacy.svc.cluster.local", "billing-alias.legacy.svc.cluster.local",
    "kube-dns.kube-system.svc.cluster.local", "10-244-1-5.legacy.pod.cluster.local",
    "fd00--1.bookinfo.pod.cluster.local", "ns.dns.cluster.local", "dns-version.cluster.local",
    "legacy.svc.cluster.local", "svc.cluster.local", "pod.cluster.local", "cluster.local",
    "10.20.96.10.in-addr.arpa", "100.0.96.10.in-addr.arpa", "in-addr.arpa", "ip6.arpa",
    "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
]
VOCAB = ["svc", "pod", "legacy", "bookinfo", "kube-system", "reviews", "billing", "db", "web",
         "db-0", "db-2", "_postgres", "_tcp", "_udp", "_http", "ns", "dns", "x", "10-244-3-50",
         "10", "96", "20", "0", "in-addr", "arpa"]
QTYPES = [1, 28, 33, 12, 16, 6, 2, 5, 255, 48, 666, 65280]


def labels_of(name: str) -> list[str]:
    return [label for label in name.split(".") if label]


@st.composite
def in_zone_names(draw: st.DrawFn) -> list[str]:
    """A name in one of the demo zones: an existing one, with labels added or changed."""
    labels = labels_of(draw(st.sampled_from(EXISTING)))
    zone_size = 2
    for _ in range(draw(st.integers(0, 3))):
        label = draw(st.one_of(st.sampled_from(VOCAB),
                               st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)))
        if draw(st.booleans()) or len(labels) <= zone_size:
            labels.insert(0, label)  # a name below
        else:
            labels[draw(st.integers(0, len(labels) - zone_size - 1))] = label
    return labels


@st.composite
def casings(draw: st.DrawFn, labels: list[str]) -> str:
    """The name with DNS 0x20 random letter case."""
    flips = draw(st.lists(st.booleans(), min_size=sum(map(len, labels)),
                          max_size=sum(map(len, labels))))
    text = ".".join(labels)
    out, i = [], 0
    for char in text:
        if char == ".":
            out.append(char)
            continue
        out.append(char.upper() if flips[i] else char)
        i += 1
    return "".join(out)


EDNS = st.one_of(
    st.none(),
    st.builds(lambda size, do, z, options: opt(size, 0, do, z, options),
              st.sampled_from([0, 511, 512, 600, 1000, 1232, 1233, 4096, 65535]),
              st.booleans(), st.sampled_from([0, 0, 0x80, 0x7FFF]),
              st.sampled_from([b"", struct.pack("!HH", 100, 0),
                               struct.pack("!HH", 10, 8) + bytes(range(8)),
                               struct.pack("!HHHBB", 8, 4, 1, 0, 0)])),
    st.builds(lambda v: opt(version=v), st.integers(1, 255)),
)


@st.composite
def queries(draw: st.DrawFn, names: st.SearchStrategy[list[str]] | None = None) -> bytes:
    labels = draw(names if names is not None else st.one_of(
        in_zone_names(), st.sampled_from([["example", "com"], [], ["local"], ["xcluster", "local"]])))
    name = draw(casings(labels))
    edns = draw(EDNS)
    flags = draw(st.sampled_from([0, 0x0100, 0x0010, 0x0110, 0x0040, 0x0020, 0x0400]))
    qtype, qclass = draw(st.sampled_from(QTYPES)), draw(st.sampled_from([1, 1, 1, 3, 255]))
    return (header(draw(st.integers(0, 0xFFFF)), flags, ar=0 if edns is None else 1)
            + qname(name) + struct.pack("!HH", qtype, qclass) + (edns or b""))


@PROPERTY
@given(packet=queries(), tcp=st.booleans())
def test_id_and_question_are_echoed(target: Target, packet: bytes, tcp: bool) -> None:
    reply = target.on.answer(packet, tcp)
    assert reply is not None
    check(packet, reply, tcp)
    length = question_length(packet)
    assert reply[:2] == packet[:2]
    assert struct.unpack_from("!H", reply, 4)[0] == 1
    assert length is not None and reply[12 : 12 + length] == packet[12 : 12 + length]


@PROPERTY
@given(packet=st.one_of(
    queries(),
    st.builds(lambda base, edits: bytes(edit(base, edits)), queries(),
              st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4)),
    st.binary(max_size=300)), tcp=st.booleans())
def test_reply_cache_on_and_off_give_identical_bytes(target: Target, packet: bytes,
                                                     tcp: bool) -> None:
    # Target.one_input asks the cached answerer twice (a miss, then a hit) and the
    # uncached one once, and requires the three replies to be byte-identical.
    target.one_input(packet)


def edit(base: bytes, edits: list[tuple[int, int]]) -> bytearray:
    data = bytearray(base)
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    return data


# --- size limits, on a cluster with big answers --------------------------------------------

BIG = {"ep20": 20, "ep40": 40, "ep73": 73, "ep200": 200}


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with open(DEMO_CLUSTER) as handle:
        demo = yaml.safe_load(handle)
    items = list(demo["items"]) + [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}}]
    for net, (name, endpoints) in enumerate(BIG.items(), start=1):
        items += headless_service(name, endpoints, net)
    path = tmp_path_factory.mktemp("cluster") / "big.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    app = loaded_app(demo_config(cluster_file=str(path)))
    yield app
    app.writer.stop()


BIG_NAMES = st.one_of(st.sampled_from([["_http", "_tcp", n, "load", "svc", "cluster", "local"]
                                       for n in BIG] + [[n, "load", "svc", "cluster", "local"]
                                                        for n in BIG]), in_zone_names())


@PROPERTY
@given(packet=queries(BIG_NAMES))
def test_udp_replies_fit_the_limit_and_truncate_only_when_they_must(big_app: App,
                                                                    packet: bytes) -> None:
    over_udp = big_app.answerer.answer(packet, False)
    over_tcp = big_app.answerer.answer(packet, True)
    check(packet, over_udp, False)  # <= 512 without EDNS, <= min(max(size, 512), 1232)
    check(packet, over_tcp, True)
    assert over_udp is not None and over_tcp is not None
    has_opt, size = client_opt(packet)
    limit = min(max(size or 0, 512), 1232) if has_opt else 512
    if over_udp[2] & 0x02:  # TC: only when the whole reply does not fit
        assert len(over_tcp) > limit
        assert struct.unpack_from("!HH", over_udp, 6) == (0, 0)
    else:
        assert over_udp == over_tcp


# --- NXDOMAIN consistency (RFC 8020) --------------------------------------------------------


def rcode(app: App, labels: list[str], qtype: int = 1) -> int:
    reply = app.answerer.answer(header() + qname(".".join(labels)) + struct.pack("!HH", qtype, 1))
    assert reply is not None
    return struct.unpack_from("!H", reply, 2)[0] & 0xF


@PROPERTY
@given(labels=in_zone_names())
def test_below_an_nxdomain_name_everything_is_nxdomain(target: Target, labels: list[str]) -> None:
    # RFC 8020 §2: NXDOMAIN means nothing exists at or below the name.
    app = target.app
    zone_size = 2
    chain = [labels[i:] for i in range(len(labels) - zone_size, -1, -1)]  # apex first
    below_nxdomain = None
    for name in chain:
        code = rcode(app, name)
        if below_nxdomain is not None:
            assert code == NXDOMAIN, f"{'.'.join(name)} exists below NXDOMAIN {below_nxdomain}"
        elif code == NXDOMAIN:
            below_nxdomain = ".".join(name)


@PROPERTY
@given(labels=in_zone_names())
def test_nxdomain_does_not_depend_on_the_type(target: Target, labels: list[str]) -> None:
    # RFC 8020 §2 and RFC 2308: NXDOMAIN is about the name, whatever the type asked.
    app = target.app
    nx = {qtype: rcode(app, labels, qtype) == NXDOMAIN for qtype in QTYPES}
    assert len(set(nx.values())) == 1, f"{'.'.join(labels)}: {nx}"


@pytest.mark.parametrize(("empty_non_terminal", "below"), [
    ("dns.cluster.local", "ns.dns.cluster.local"),
    ("_tcp.billing.legacy.svc.cluster.local", "_http._tcp.billing.legacy.svc.cluster.local"),
    ("20.96.10.in-addr.arpa", "10.20.96.10.in-addr.arpa"),
    ("10.in-addr.arpa", "10.20.96.10.in-addr.arpa"),
])
def test_an_empty_non_terminal_is_not_nxdomain(target: Target, empty_non_terminal: str,
                                               below: str) -> None:
    assert rcode(target.app, labels_of(below), 1 if "ns.dns" in below else 12
                 if "arpa" in below else 33) == 0
    assert rcode(target.app, labels_of(empty_non_terminal)) != NXDOMAIN
