"""The protocol gate and the encoder, over hand-built bytes (no sockets).

Every query here is raw wire bytes built with `struct`, answered in-process by
`Answerer.answer(bytes, tcp)`, the function the UDP and TCP transports call.
Replies are read back with dnspython, or compared byte for byte where the exact
bytes are the contract (the "golden" tests).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsrewrite.app import App
from tests.conftest import demo_config, loaded_app

# Header flag bits (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2).
QR, AA, TC, RD, RA, Z, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010
A, NS, SOA, AAAA, OPT, IXFR, AXFR = 1, 2, 6, 28, 41, 251, 252
IN, CH, ANY_CLASS = 1, 3, 255
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16

REVIEWS = "reviews.bookinfo.svc.cluster.local"  # enrolled: rewritten to the gateway VIP
OPT_LEN = 11  # an OPT record without options


# --- building queries ------------------------------------------------------------


def header(qid: int = 0x1234, flags: int = RD, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def qname(name: str) -> bytes:
    """Wire form of a name, letter case kept (RFC 1035 §3.1)."""
    labels = [label.encode() for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def question(name: str, qtype: int = A, qclass: int = IN) -> bytes:
    return qname(name) + struct.pack("!HH", qtype, qclass)


def opt(udp_size: int = 1232, version: int = 0, do: bool = False, z: int = 0,
        options: bytes = b"", owner: bytes = b"\x00") -> bytes:
    """An OPT pseudo-RR (RFC 6891 §6.1.2): class is the UDP size, TTL the flags."""
    ttl = (version << 16) | (0x8000 if do else 0) | z
    return owner + struct.pack("!HHIH", OPT, udp_size, ttl, len(options)) + options


def query(name: str = REVIEWS, qtype: int = A, qclass: int = IN, *, qid: int = 0x1234,
          flags: int = RD, edns: bytes | None = None) -> bytes:
    ar = 0 if edns is None else 1
    return header(qid, flags, ar=ar) + question(name, qtype, qclass) + (edns or b"")


def answer(app: App, packet: bytes, tcp: bool = False) -> bytes | None:
    return app.answerer.answer(packet, tcp)


def reply_to(app: App, packet: bytes, tcp: bool = False) -> dns.message.Message:
    raw = answer(app, packet, tcp)
    assert raw is not None, "no reply"
    return dns.message.from_wire(raw)


def flags_of(raw: bytes) -> int:
    return struct.unpack_from("!H", raw, 2)[0]


def counts_of(raw: bytes) -> tuple[int, int, int, int]:
    return struct.unpack_from("!HHHH", raw, 4)  # type: ignore[return-value]


# --- a cluster with big headless Services, for truncation ----------------------------


def headless_service(name: str, endpoints: int, net: int) -> list[dict]:
    """A headless Service and one EndpointSlice of `endpoints` ready addresses."""
    addresses = [f"10.{net}.{i // 250}.{i % 250 + 1}" for i in range(endpoints)]
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": "load"},
         "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{name}-1", "namespace": "load",
                      "labels": {"kubernetes.io/service-name": name}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in addresses],
         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    ]


def external_name(name: str, target: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "load"},
            "spec": {"type": "ExternalName", "externalName": target}}


def write_cluster(path: Path, items: list[dict]) -> str:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}}
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [namespace, *items]}))
    return str(path)


# An A record compressed against the question is 16 bytes: pointer 2, fixed 10, rdata 4.
# A reply to "<svc>.load.svc.cluster.local. A" with OPT is 12 + (len(svc) + 29) + 16n + 11.
BIG_SERVICES = {
    "ep20": 20,  # 376 bytes: fits 512
    "ep40": 40,  # 696 bytes: over 512, under 1232
    "ep73-at-1232": 73,  # exactly 1232 bytes with OPT
    "ep73-at-1233x": 73,  # 1233 bytes with OPT
}


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    items = [item for net, (name, n) in enumerate(BIG_SERVICES.items(), start=1)
             for item in headless_service(name, n, net=net)]
    # Not valid DNS names: the API server would refuse them, a cluster file does not.
    items += [external_name("long-label", "x" * 64 + ".example.com"),
              external_name("empty-label", "a..example.com")]
    path = write_cluster(tmp_path_factory.mktemp("cluster") / "big.json", items)
    return loaded_app(demo_config(cluster_file=path))


def big(name: str) -> str:
    return f"{name}.load.svc.cluster.local"


# --- the gate, row by row (RFC 1035 §4.1.1, RFC 6891, RFC 8906) ---------------------


@pytest.mark.parametrize("length", [0, 1, 11])
def test_fewer_than_12_bytes_get_no_reply(demo_app: App, length: int) -> None:
    # Not even a header to answer (RFC 1035 §4.1.1).
    assert answer(demo_app, query()[:length]) is None


def test_a_response_qr_set_gets_no_reply(demo_app: App) -> None:
    # Answering a response invites reflection loops.
    assert answer(demo_app, query(flags=QR | RD)) is None


OPCODES = {"IQUERY": 1, "STATUS": 2, "NOTIFY": 4, "UPDATE": 5, "unassigned-15": 15}


@pytest.mark.parametrize("opcode", OPCODES.values(), ids=OPCODES.keys())
def test_opcode_other_than_query_is_notimp_echoing_id_and_opcode(demo_app: App,
                                                                 opcode: int) -> None:
    # RFC 1035 §4.1.1, RFC 8906 §3.1.4: NOTIMP, never silence.
    raw = answer(demo_app, query(qid=0xBEEF, flags=(opcode << 11) | RD))
    assert raw is not None
    qid, flags = struct.unpack_from("!HH", raw)
    assert qid == 0xBEEF
    assert flags & 0xF == NOTIMP
    assert (flags >> 11) & 0xF == opcode
    assert flags & QR and not flags & (AA | RA)


def test_notimp_keeps_an_opt_when_the_query_had_one(demo_app: App) -> None:
    # RFC 6891 §7: a responder that saw an OPT includes one in its response.
    reply = reply_to(demo_app, query(flags=(4 << 11), edns=opt(do=True)))
    assert reply.rcode() == NOTIMP
    assert reply.edns == 0 and reply.payload == 1232 and reply.ednsflags & dns.flags.DO


@pytest.mark.parametrize("with_edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize("qdcount", [0, 2])
def test_question_count_other_than_one_is_formerr(demo_app: App, qdcount: int,
                                                  with_edns: bool) -> None:
    # RFC 1035 §4.1.2 allows more, but no server answers them: FORMERR (RFC 8906 §3.1.3).
    # QDCOUNT 0 with an OPT is how RFC 7873 §5.4 clients probe for cookies: keep the OPT.
    edns = opt() if with_edns else b""
    packet = header(qd=qdcount, ar=int(with_edns)) + question(REVIEWS) * qdcount + edns
    reply = reply_to(demo_app, packet)
    assert reply.rcode() == FORMERR and reply.id == 0x1234
    assert reply.edns == (0 if with_edns else -1)


@pytest.mark.parametrize("section", ["answer", "authority"])
def test_records_in_answer_or_authority_of_a_query_are_formerr(demo_app: App, section: str) -> None:
    rr = qname(REVIEWS) + struct.pack("!HHIH", A, IN, 5, 4) + bytes([10, 0, 0, 1])
    counts = {"an": 1} if section == "answer" else {"ns": 1}
    reply = reply_to(demo_app, header(**counts) + question(REVIEWS) + rr)
    assert reply.rcode() == FORMERR


MALFORMED_QUESTIONS = {
    "name cut mid-label": question(REVIEWS)[:10],
    "no root label": qname(REVIEWS)[:-1],
    "type and class missing": qname(REVIEWS),
    "class cut short": qname(REVIEWS) + b"\x00\x01\x00",
    "label runs past the end": b"\x3fabc",
    "compression pointer": b"\x07reviews\xc0\x0c" + struct.pack("!HH", A, IN),
    "extended label type 0x40": b"\x41" + b"a" * 65 + b"\x00" + struct.pack("!HH", A, IN),
}


@pytest.mark.parametrize("body", MALFORMED_QUESTIONS.values(), ids=MALFORMED_QUESTIONS.keys())
def test_malformed_question_is_formerr(demo_app: App, body: bytes) -> None:
    # RFC 1035 §4.1.2/§4.1.4: no compression can point anywhere useful from the question.
    reply = reply_to(demo_app, header() + body)
    assert reply.rcode() == FORMERR and reply.id == 0x1234


@pytest.mark.parametrize("qclass", [CH, ANY_CLASS], ids=["CH", "ANY"])
def test_class_other_than_in_is_refused(demo_app: App, qclass: int) -> None:
    # Only IN data is served; CH version.bind and class ANY are not ours to answer.
    reply = reply_to(demo_app, query(qclass=qclass))
    assert reply.rcode() == REFUSED
    assert not reply.flags & dns.flags.AA and not reply.answer


def test_edns_version_1_is_badvers_with_our_opt_at_version_0(demo_app: App) -> None:
    # RFC 6891 §6.1.3: BADVERS (16) = header RCODE 0 + OPT extended RCODE 1.
    raw = answer(demo_app, query(edns=opt(version=1)))
    assert raw is not None
    assert flags_of(raw) & 0xF == 0
    reply = dns.message.from_wire(raw)
    assert reply.rcode() == BADVERS
    assert reply.edns == 0 and reply.payload == 1232
    assert not reply.answer


def test_badvers_is_checked_before_the_class(demo_app: App) -> None:
    # The gate's order (NSD query.c): EDNS version before class.
    assert reply_to(demo_app, query(qclass=CH, edns=opt(version=1))).rcode() == BADVERS


def test_two_opt_records_are_formerr(demo_app: App) -> None:
    # RFC 6891 §6.1.1: more than one OPT MUST be FORMERR.
    packet = header(ar=2) + question(REVIEWS) + opt() + opt()
    assert reply_to(demo_app, packet).rcode() == FORMERR


def test_opt_owner_other_than_root_is_formerr(demo_app: App) -> None:
    # RFC 6891 §6.1.2: the OPT owner MUST be the root.
    packet = query(edns=opt(owner=qname("cluster.local")))
    assert reply_to(demo_app, packet).rcode() == FORMERR


@pytest.mark.parametrize("options", [
    struct.pack("!HH", 65001, 3) + b"abc",  # unknown option
    struct.pack("!HH", 65001, 0) + struct.pack("!HH", 10, 8) + b"\x01" * 8,  # unknown + cookie
], ids=["unknown-option", "unknown-and-cookie"])
def test_unknown_edns_options_are_ignored(demo_app: App, options: bytes) -> None:
    # RFC 6891 §6.1.2: unknown options MUST be ignored, and are not echoed.
    reply = reply_to(demo_app, query(edns=opt(options=options)))
    assert reply.rcode() == NOERROR
    assert [rr.to_text() for rr in reply.answer] == [f"{REVIEWS}. 5 IN A 10.96.0.100"]
    assert not reply.options


def test_unknown_edns_flag_bits_are_ignored_and_not_echoed(demo_app: App) -> None:
    # RFC 6891 §6.1.4: Z bits MUST be ignored by receivers and sent as zero.
    reply = reply_to(demo_app, query(edns=opt(z=0x7FFF)))
    assert reply.rcode() == NOERROR and len(reply.answer) == 1
    assert reply.ednsflags == 0


@pytest.mark.parametrize("do", [False, True])
def test_do_bit_is_copied_into_the_reply_opt(demo_app: App, do: bool) -> None:
    # RFC 3225 §3: the DO bit of the query is copied in the response.
    reply = reply_to(demo_app, query(edns=opt(do=do)))
    assert bool(reply.ednsflags & dns.flags.DO) is do


@pytest.mark.parametrize("client_size", [None, 512, 1232, 4096])
def test_opt_is_in_the_reply_iff_in_the_query_advertising_1232(demo_app: App,
                                                               client_size: int | None) -> None:
    # RFC 6891 §7: OPT in the response iff in the request; we advertise our own size.
    edns = None if client_size is None else opt(udp_size=client_size)
    raw = answer(demo_app, query(edns=edns))
    assert raw is not None
    reply = dns.message.from_wire(raw)
    if client_size is None:
        assert reply.edns == -1 and counts_of(raw)[3] == 0
    else:
        assert reply.edns == 0 and reply.payload == 1232 and counts_of(raw)[3] == 1


OUT_OF_ZONE = [
    ("example.com.", A),
    (".", NS),  # CoreDNS `forward` health check
    ("xcluster.local.", A),  # shares a suffix, not a label boundary
    ("local.", SOA),
]


@pytest.mark.parametrize("with_edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize(("name", "qtype"), OUT_OF_ZONE, ids=[n for n, _ in OUT_OF_ZONE])
def test_out_of_zone_name_is_refused_without_referral(demo_app: App, name: str, qtype: int,
                                                     with_edns: bool) -> None:
    # RFC 8906 §3.1.5 / RFC 1034 §4.3.2: not authoritative, never recursive, no upward referral.
    packet = query(name, qtype, edns=opt() if with_edns else None)
    raw = answer(demo_app, packet)
    assert raw is not None
    reply = dns.message.from_wire(raw)
    assert reply.rcode() == REFUSED
    assert not reply.flags & (dns.flags.AA | dns.flags.RA)
    assert not reply.answer and not reply.authority and not reply.additional
    # No amplification: the reply is no larger than the question plus our OPT.
    assert len(raw) <= len(query(name, qtype)) + (OPT_LEN if with_edns else 0)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("qtype", [AXFR, IXFR], ids=["AXFR", "IXFR"])
def test_zone_transfers_of_cluster_local_are_refused(demo_app: App, qtype: int, tcp: bool) -> None:
    # RFC 5936 §4.2 allows refusing; the cluster's contents are not for export.
    reply = reply_to(demo_app, query("cluster.local", qtype), tcp=tcp)
    assert reply.rcode() == REFUSED and not reply.answer


@pytest.mark.parametrize("flags", [0, RD, CD, RD | CD, RD | CD | Z | AD | AA | RA | TC])
def test_rd_and_cd_are_copied_ra_and_z_never_set(demo_app: App, flags: int) -> None:
    # RFC 1035 §4.1.1 (RD copied, Z zero), RFC 4035 §3.2.2 (CD copied); we never recurse.
    raw = answer(demo_app, query(flags=flags))
    assert raw is not None
    got = flags_of(raw)
    assert got & (RD | CD) == flags & (RD | CD)
    assert not got & (RA | Z | AD | TC)
    assert got & (QR | AA) == QR | AA


@pytest.mark.parametrize(("name", "qtype", "rcode"), [
    (REVIEWS, A, NOERROR),
    ("billing.legacy.svc.cluster.local", 65280, NOERROR),  # NODATA
    ("nosuch.legacy.svc.cluster.local", A, NXDOMAIN),
    ("cluster.local", SOA, NOERROR),
    ("10.0.96.10.in-addr.arpa", 12, NOERROR),
])
def test_aa_is_set_on_in_zone_answers(demo_app: App, name: str, qtype: int, rcode: int) -> None:
    reply = reply_to(demo_app, query(name, qtype))
    assert reply.rcode() == rcode
    assert reply.flags & dns.flags.AA


def test_unknown_qtype_on_an_existing_name_is_nodata_with_soa(demo_app: App) -> None:
    # RFC 2308 §2.2: NODATA is NOERROR, empty answer, the zone's SOA in authority.
    reply = reply_to(demo_app, query("billing.legacy.svc.cluster.local", 65280))
    assert reply.rcode() == NOERROR and not reply.answer
    assert [(rr.name.to_text(), rr.rdtype) for rr in reply.authority] == [
        ("cluster.local.", dns.rdatatype.SOA)
    ]


@pytest.mark.parametrize("qid", [0, 1, 0x1234, 0xFFFF])
@pytest.mark.parametrize("name", [REVIEWS, "example.com"])
def test_id_is_echoed(demo_app: App, qid: int, name: str) -> None:
    raw = answer(demo_app, query(name, qid=qid))
    assert raw is not None and struct.unpack_from("!H", raw)[0] == qid


def test_internal_error_is_servfail_with_question_and_opt(demo_app: App,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug while answering costs one SERVFAIL and a panic count, never the server.
    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_app.answerer.resolver, "resolve", boom)
    reply = reply_to(demo_app, query(edns=opt(do=True)))
    assert reply.rcode() == SERVFAIL
    assert reply.question[0].name.to_text() == f"{REVIEWS}."
    assert reply.edns == 0 and reply.ednsflags & dns.flags.DO
    assert demo_app.answerer.panics == 1


# --- golden bytes -----------------------------------------------------------------

REVIEWS_QUESTION = (
    "07 72657669657773"  # 7 "reviews"
    " 08 626f6f6b696e666f"  # 8 "bookinfo"
    " 03 737663"  # 3 "svc"
    " 07 636c7573746572"  # 7 "cluster"
    " 05 6c6f63616c 00"  # 5 "local", root
    " 0001 0001"  # type A, class IN
)
REVIEWS_ANSWER = (
    "c00c"  # owner: pointer to the question name at offset 12 (RFC 1035 §4.1.4)
    " 0001 0001 00000005 0004"  # A IN, TTL 5, rdlength 4
    " 0a600064"  # 10.96.0.100: the gateway VIP
)


def test_golden_plain_a_answer_without_edns(demo_app: App) -> None:
    packet = query(qid=0xD1CE, flags=RD)
    reply = answer(demo_app, packet)
    expected = bytes.fromhex(
        "d1ce 8500"  # ID; QR AA RD, opcode QUERY, RCODE NOERROR
        " 0001 0001 0000 0000"  # QD 1, AN 1, NS 0, AR 0
        + REVIEWS_QUESTION + REVIEWS_ANSWER
    )
    assert reply == expected


def test_golden_a_answer_with_edns_and_do(demo_app: App) -> None:
    packet = query(qid=0xD1CE, flags=RD, edns=opt(udp_size=4096, do=True))
    reply = answer(demo_app, packet)
    expected = bytes.fromhex(
        "d1ce 8500"  # ID; QR AA RD, NOERROR
        " 0001 0001 0000 0001"  # QD 1, AN 1, NS 0, AR 1 (our OPT)
        + REVIEWS_QUESTION + REVIEWS_ANSWER
        + " 00 0029 04d0"  # OPT: root owner, type 41, UDP size 1232 (not the client's 4096)
        " 00 00 8000"  # extended RCODE 0, version 0, flags DO
        " 0000"  # no options
    )
    assert reply == expected


EP40_QUESTION = (
    "04 65703430"  # 4 "ep40"
    " 04 6c6f6164"  # 4 "load"
    " 03 737663 07 636c7573746572 05 6c6f63616c 00"  # svc.cluster.local.
    " 0001 0001"  # A IN
)


def test_golden_truncated_udp_reply_keeps_header_and_question(big_app: App) -> None:
    # 40 A records do not fit the 512 bytes of plain DNS (RFC 1035 §4.2.1): the reply
    # is the question with TC set, and the client retries over TCP (RFC 7766 §5).
    reply = answer(big_app, query(big("ep40"), qid=0xBEEF))
    expected = bytes.fromhex(
        "beef 8700"  # ID; QR AA TC RD, NOERROR
        " 0001 0000 0000 0000"  # QD 1, nothing else
        + EP40_QUESTION
    )
    assert reply == expected


def test_golden_truncated_edns_reply_keeps_the_opt(big_app: App) -> None:
    # RFC 6891 §7: the OPT stays on a truncated reply. A client size under 512 counts as 512.
    reply = answer(big_app, query(big("ep40"), qid=0xBEEF, edns=opt(udp_size=300)))
    expected = bytes.fromhex(
        "beef 8700"  # ID; QR AA TC RD, NOERROR
        " 0001 0000 0000 0001"  # QD 1, AR 1: the OPT
        + EP40_QUESTION
        + " 00 0029 04d0 00 00 0000 0000"  # OPT: size 1232, version 0, no flags, no options
    )
    assert reply == expected


# --- UDP size limits and TCP (RFC 1035 §4.2.1, RFC 6891 §6.2.5, RFC 7766) ------------


def full_size(app: App, name: str) -> int:
    """The untruncated reply size with OPT, as TCP gets it."""
    raw = answer(app, query(name, edns=opt()), tcp=True)
    assert raw is not None and not flags_of(raw) & TC
    return len(raw)


def is_truncated(app: App, packet: bytes) -> bool:
    raw = answer(app, packet)
    assert raw is not None
    if flags_of(raw) & TC:
        assert counts_of(raw)[1:3] == (0, 0), "a truncated reply carries no records"
        return True
    return False


def test_the_fixture_sizes_are_what_the_limit_tests_assume(big_app: App) -> None:
    sizes = {name: full_size(big_app, big(name)) for name in BIG_SERVICES}
    assert sizes == {"ep20": 376, "ep40": 696, "ep73-at-1232": 1232, "ep73-at-1233x": 1233}


def test_without_edns_the_udp_limit_is_512(big_app: App) -> None:
    assert not is_truncated(big_app, query(big("ep20")))
    assert is_truncated(big_app, query(big("ep40")))


def test_udp_limit_is_the_clients_size_when_smaller_than_ours(big_app: App) -> None:
    size = full_size(big_app, big("ep40"))
    assert not is_truncated(big_app, query(big("ep40"), edns=opt(udp_size=size)))
    assert is_truncated(big_app, query(big("ep40"), edns=opt(udp_size=size - 1)))


def test_udp_limit_is_capped_at_1232_whatever_the_client_offers(big_app: App) -> None:
    # DNS flag day 2020: 1232 avoids IP fragmentation.
    assert not is_truncated(big_app, query(big("ep73-at-1232"), edns=opt(udp_size=4096)))
    assert is_truncated(big_app, query(big("ep73-at-1233x"), edns=opt(udp_size=4096)))
    assert is_truncated(big_app, query(big("ep73-at-1233x"), edns=opt(udp_size=65535)))


@pytest.mark.parametrize("client_size", [0, 1, 300, 511])
def test_udp_limit_has_a_floor_of_512(big_app: App, client_size: int) -> None:
    # RFC 6891 §6.2.5: values below 512 MUST be treated as 512.
    assert not is_truncated(big_app, query(big("ep20"), edns=opt(udp_size=client_size)))


@pytest.mark.parametrize("with_edns", [False, True], ids=["plain", "edns"])
def test_tcp_gets_the_whole_answer(big_app: App, with_edns: bool) -> None:
    edns = opt() if with_edns else None
    reply = reply_to(big_app, query(big("ep73-at-1233x"), edns=edns), tcp=True)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 73


# --- names -------------------------------------------------------------------------


def test_client_0x20_casing_is_echoed_in_question_and_owner_names(demo_app: App) -> None:
    # DNS 0x20 (draft-vixie-dnsext-dns0x20): the client checks the casing it sent.
    name = "ReViEwS.bOOkInfo.SvC.cLuStEr.LoCaL"
    raw = answer(demo_app, query(name, qid=0x2020))
    assert raw is not None
    assert raw[12 : 12 + len(qname(name))] == qname(name)  # question bytes as sent
    reply = dns.message.from_wire(raw)
    assert reply.answer[0].name.to_text() == name + "."  # owner via pointer to the question


def test_client_casing_is_echoed_in_the_nodata_soa_owner(demo_app: App) -> None:
    name = "Billing.Legacy.SVC.Cluster.LOCAL"
    raw = answer(demo_app, query(name, 65280))
    assert raw is not None
    reply = dns.message.from_wire(raw)
    assert [rr.name.to_text() for rr in reply.authority] == ["Cluster.LOCAL."]


def name_of_wire_length(length: int) -> str:
    """A name under cluster.local. of exactly `length` bytes in wire form."""
    remaining = length - len(qname("cluster.local"))
    labels = []
    while remaining > 0:
        size = min(63, remaining - 1)  # a label costs its length + 1
        labels.append("a" * size)
        remaining -= size + 1
    name = ".".join([*labels, "cluster", "local"])
    assert len(qname(name)) == length
    return name


def test_name_of_255_wire_bytes_is_answered(demo_app: App) -> None:
    # RFC 1035 §3.1: 255 bytes is the limit, inclusive.
    name = name_of_wire_length(255)
    reply = reply_to(demo_app, query(name))
    assert reply.rcode() == NXDOMAIN
    assert reply.question[0].name.to_text() == name + "."


def test_name_of_256_wire_bytes_is_formerr(demo_app: App) -> None:
    name = name_of_wire_length(256)
    assert reply_to(demo_app, query(name)).rcode() == FORMERR


@pytest.mark.parametrize("service", ["long-label", "empty-label"])
def test_invalid_externalname_target_is_servfail_not_a_malformed_reply(big_app: App,
                                                                       service: str) -> None:
    # A 64-byte or empty label cannot be written (RFC 1035 §3.1); the encoder must not try.
    reply = reply_to(big_app, query(big(service)))
    assert reply.rcode() == SERVFAIL


# --- no input escapes the gate ------------------------------------------------------


def _check_reply(packet: bytes, raw: bytes | None) -> None:
    if raw is None:
        return
    reply = dns.message.from_wire(raw)  # well-formed, whatever came in
    assert reply.id == struct.unpack_from("!H", packet)[0]
    assert reply.flags & dns.flags.QR
    assert len(raw) <= 1232  # answered as UDP: never over our advertised size


FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_get_no_reply_or_a_well_formed_one(demo_app: App, packet: bytes) -> None:
    _check_reply(packet, answer(demo_app, packet))


VALID = query(edns=opt(do=True))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(VALID)))
def test_corrupted_queries_get_no_reply_or_a_well_formed_one(
    demo_app: App, edits: list[tuple[int, int]], cut: int
) -> None:
    packet = bytearray(VALID)
    for offset, value in edits:
        packet[offset] = value
    packet = packet[:cut] if cut >= 12 else packet
    _check_reply(bytes(packet), answer(demo_app, bytes(packet)))
    assert demo_app.answerer.panics == 0
