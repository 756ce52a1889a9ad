"""Protocol conformance over real sockets: RFC 8906 §8 and ISC's EDNS compliance probes.

Each probe is the `dig` command line of RFC 8906 §8 or of ISC's genreport (the tool behind
ednscomp.isc.org; its test table names are kept: dns, edns, edns1, edns@512, ednsopt,
edns1opt, do, ednsflags, optlist, ednstcp, bind11, dig11, ...), run against a live server
with the zone `cluster.local`, and its reply is checked for the rcode, flags and OPT that
compliant servers give. Then: truncation with and without EDNS, out-of-zone REFUSED no
bigger than the query plus an OPT, no reply to QR=1 or short packets, FORMERR for QDCOUNT
0 or 2, REFUSED for CH and AXFR, 0x20 casing, and `dig +tcp` equal to UDP for many names.
tests/test_protocol.py holds the same rules in-process with exact bytes; here they go
through the kernel, the transports and a real client.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import pytest

from tests.conftest import ServerThread, demo_config
from tests.dnsclient import dig
from tests.test_protocol import headless_service

HOST = "127.0.0.1"
ZONE = "cluster.local"
REVIEWS = "reviews.bookinfo.svc.cluster.local"
OPT_LEN = 11  # an OPT record without options


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    running = ServerThread(demo_config()).start()
    yield running
    running.stop()


BIG = {"ep40": 40, "big": 100}  # 696 and 1,772 bytes of A records with OPT


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    items: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}}]
    for net, (name, endpoints) in enumerate(BIG.items(), start=1):
        items += headless_service(name, endpoints, net)
    path = tmp_path_factory.mktemp("cluster") / "big.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    running = ServerThread(demo_config(cluster_file=str(path))).start()
    yield running
    running.stop()


# --- dig's output, parsed ------------------------------------------------------------------


@dataclass
class Dig:
    text: str
    status: str
    flags: set[str]
    mbz: bool  # dig shows "MBZ" when a must-be-zero bit (header Z or EDNS flag) is set
    counts: tuple[int, int, int, int]
    edns: dict | None  # {"version", "flags", "udp", "options"}
    answer: list[str]
    size: int
    transport: str

    def answer_types(self) -> list[str]:
        return [line.split()[3] for line in self.answer]


def run_dig(port: int, *args: str) -> Dig:
    text = dig(port, *args)
    status = re.search(r"status: (\w+)", text)
    assert status, f"no reply:\n{text}"
    flag_line = re.search(r";; flags:([^;]*);(.*)", text)
    assert flag_line
    counts = re.search(r"QUERY: (\d+), ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)", text)
    assert counts
    edns = None
    found = re.search(r"; EDNS: version: (\d+), flags:([^;]*);(.*)udp: (\d+)", text)
    if found:
        pseudo = text.split(";; OPT PSEUDOSECTION:")[1].split("\n;; ")[0].splitlines()
        options = [line for line in pseudo[2:] if line.startswith("; ")]
        edns = {"version": int(found.group(1)), "flags": set(found.group(2).split()),
                "mbz": "MBZ" in found.group(3), "udp": int(found.group(4)), "options": options}
    answer = []
    if ";; ANSWER SECTION:" in text:
        block = text.split(";; ANSWER SECTION:\n")[1].split("\n\n")[0]
        answer = [line for line in block.splitlines() if line and not line.startswith(";")]
    size = re.search(r"MSG SIZE\s+rcvd: (\d+)", text)
    transport = re.search(r";; SERVER: .*\((UDP|TCP)\)", text)
    return Dig(text, status.group(1), set(flag_line.group(1).split()),
               "MBZ" in flag_line.group(2), tuple(int(c) for c in counts.groups()),  # type: ignore[arg-type]
               edns, answer, int(size.group(1)) if size else 0,
               transport.group(1) if transport else "?")


# --- the probes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    args: str  # the dig flags of the source, then type and name
    status: str = "NOERROR"
    soa: bool = True  # the zone's SOA in the answer
    edns: bool = False  # an OPT (version 0, our 1232) in the reply
    do: bool = False  # DO copied into it
    max_size: int | None = None
    tcp: bool = False
    echoed: tuple[str, ...] = ()  # header flags the reply must carry (copied from the query)


# RFC 8906 §8.1 (plain DNS) and §8.2 (EDNS), and the matching rows of genreport's table.
PROBES = {
    # §8.1: plain DNS; genreport "dns"
    "dns": Probe("+noedns +noad +norec SOA"),
    # genreport header-bit rows: flags the server must ignore (aa, ad, z) or copy (rd, cd)
    "aa": Probe("+noedns +noad +norec +aaflag SOA"),
    "ad": Probe("+noedns +ad +norec SOA"),
    "cd": Probe("+noedns +noad +norec +cd SOA", echoed=("cd",)),
    "rd": Probe("+noedns +noad +rec SOA", echoed=("rd",)),
    "zflag": Probe("+noedns +noad +norec +zflag SOA"),  # §8.1.2: Z is not echoed
    # §8.1.3 unknown opcode; genreport "opcode": NOTIMP, not silence
    "opcode": Probe("+noedns +noad +norec +header-only +opcode=15", status="NOTIMP", soa=False),
    # §8.1.1 unknown types; genreport "type666": NODATA with the SOA in authority
    "type666": Probe("+noedns +noad +norec TYPE666", soa=False),
    "type1000": Probe("+noedns +noad +norec TYPE1000", soa=False),
    # §8.1.4 TCP; genreport "tcp"
    "tcp": Probe("+noedns +noad +norec +tcp SOA", tcp=True),
    # §8.2.1 EDNS; genreport "edns"
    "edns": Probe("+edns=0 +nocookie +noad +norec SOA", edns=True),
    # §8.2.2 unknown version: BADVERS with an OPT at version 0, no answer; "edns1"
    "edns1": Probe("+edns=1 +noednsneg +nocookie +noad +norec SOA", "BADVERS", False, True),
    # §8.2.8 truncated EDNS responses; "edns@512": within 512 bytes, DO copied
    "edns@512": Probe("+edns=0 +nocookie +noad +norec +dnssec +ignore +bufsize=512 DNSKEY",
                      soa=False, edns=True, do=True, max_size=512),
    # §8.2.3 unknown option: ignored, not echoed; "ednsopt"
    "ednsopt": Probe("+edns=0 +nocookie +noad +norec +ednsopt=100 SOA", edns=True),
    # §8.2.5 unknown version and option; "edns1opt"
    "edns1opt": Probe("+edns=1 +noednsneg +nocookie +noad +norec +ednsopt=100 SOA",
                      "BADVERS", False, True),
    # §8.2.9 DO=1: copied; "do", "docd", "edns1do"
    "do": Probe("+edns=0 +nocookie +noad +norec +dnssec SOA", edns=True, do=True),
    "docd": Probe("+edns=0 +nocookie +noad +norec +dnssec +cd SOA", edns=True, do=True,
                  echoed=("cd",)),
    "edns1do": Probe("+edns=1 +noednsneg +nocookie +noad +norec +dnssec SOA", "BADVERS", False,
                     True, do=True),
    # §8.2.4 unknown EDNS flag: ignored, not echoed; "ednsflags"
    "ednsflags": Probe("+edns=0 +nocookie +noad +norec +ednsflags=0x0080 SOA", edns=True),
    # §8.2.6 and §8.2.7: unknown version with an unknown flag (and option)
    "edns1flags": Probe("+edns=1 +noednsneg +nocookie +noad +norec +ednsflags=0x0080 SOA",
                        "BADVERS", False, True),
    "edns1optflags": Probe("+edns=1 +noednsneg +nocookie +noad +norec +ednsopt=100 "
                           "+ednsflags=0x0080 SOA", "BADVERS", False, True),
    # genreport "optlist": NSID, ECS, EXPIRE and COOKIE at once, none implemented: ignored
    "optlist": Probe("+edns=0 +noad +norec +nsid +subnet=0.0.0.0/0 +expire "
                     "+cookie=0102030405060708 SOA", edns=True),
    "ednsnsid": Probe("+edns=0 +nocookie +noad +norec +nsid SOA", edns=True),
    "ednscookie": Probe("+edns=0 +noad +norec +cookie=0102030405060708 SOA", edns=True),
    "ednsexpire": Probe("+edns=0 +nocookie +noad +norec +expire SOA", edns=True),
    "ednssubnet": Probe("+edns=0 +nocookie +noad +norec +subnet=0.0.0.0/0 SOA", edns=True),
    "edns1nsid": Probe("+edns=1 +noednsneg +nocookie +noad +norec +nsid SOA", "BADVERS", False,
                       True),
    "edns1cookie": Probe("+edns=1 +noednsneg +noad +norec +cookie=0102030405060708 SOA",
                         "BADVERS", False, True),
    "edns1expire": Probe("+edns=1 +noednsneg +nocookie +noad +norec +expire SOA", "BADVERS",
                         False, True),
    "edns1subnet": Probe("+edns=1 +noednsneg +nocookie +noad +norec +subnet=0.0.0.0/0 SOA",
                         "BADVERS", False, True),
    # §8.2.10 EDNS over TCP; "ednstcp"
    "ednstcp": Probe("+edns=0 +nocookie +noad +norec +dnssec +bufsize=512 +tcp DNSKEY",
                     soa=False, edns=True, do=True, tcp=True),
    # genreport "bind11" and "dig11": what BIND 9.11 and its dig send
    "bind11": Probe("+edns=0 +cookie=0102030405060708 +noad +norec +dnssec SOA", edns=True,
                    do=True),
    "dig11": Probe("+edns=0 +cookie=0102030405060708 +ad +rec SOA", edns=True, echoed=("rd",)),
}


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_edns_compliance_probe(server: ServerThread, probe: Probe) -> None:
    reply = run_dig(server.port, *probe.args.split(), ZONE)
    assert reply.status == probe.status, reply.text
    # Never recursion, never AD (nothing is validated), nothing the query did not ask for.
    assert not reply.flags & {"ra", "ad", "tc"}, reply.text
    assert not reply.mbz, "a must-be-zero bit echoed:\n" + reply.text
    assert set(probe.echoed) <= reply.flags
    if "+norec" in probe.args:
        assert "rd" not in reply.flags
    if probe.status == "NOERROR":
        assert "aa" in reply.flags  # authoritative for the zone, unknown types included
    if probe.soa:
        assert reply.answer_types() == ["SOA"], reply.text
    else:
        assert reply.counts[1] == 0
    if probe.edns:
        assert reply.edns is not None, "no OPT in the reply to an EDNS query\n" + reply.text
        assert reply.edns["version"] == 0 and reply.edns["udp"] == 1232
        assert not reply.edns["mbz"], "unknown EDNS flags echoed"
        assert reply.edns["options"] == [], "options echoed or invented: " + str(reply.edns)
        assert ("do" in reply.edns["flags"]) is probe.do
    else:
        assert reply.edns is None
    if probe.max_size is not None:
        assert reply.size <= probe.max_size
    assert reply.transport == ("TCP" if probe.tcp else "UDP")


@pytest.mark.parametrize("name", [ZONE, "billing.legacy.svc.cluster.local",
                                  "db-0.db.legacy.svc.cluster.local",
                                  "10.20.96.10.in-addr.arpa"])
@pytest.mark.parametrize("rdtype", ["TYPE1000", "TYPE65280", "NULL", "HINFO", "CAA"])
def test_unknown_and_unserved_types_are_nodata_with_the_soa(server: ServerThread, name: str,
                                                           rdtype: str) -> None:
    # RFC 8906 §8.1.1 / RFC 3597: an existing name, a type we have no data for: NOERROR,
    # an empty answer and the zone's SOA in authority (RFC 2308 §2.2), over UDP and TCP.
    for transport in ("+notcp", "+tcp"):
        text = dig(server.port, transport, "+noedns", "+norec", name, rdtype)
        assert "status: NOERROR" in text and "ANSWER: 0, AUTHORITY: 1" in text, text
        assert re.search(r"\n\S+\s+\d+\s+IN\s+SOA\s", text.split("AUTHORITY SECTION:")[1])


def test_tsig_with_an_unknown_key_is_notauth(server: ServerThread) -> None:
    reply = run_dig(server.port, "+noedns", "+noad", "+norec", "-y",
                    "hmac-sha256:.:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "SOA", ZONE)
    assert reply.status == "NOTAUTH"


def test_tsig_badkey_is_reported_to_a_tsig_client(server: ServerThread) -> None:
    # RFC 8945 §5.2.1: NOTAUTH with an unsigned TSIG carrying BADKEY; dnspython says so.
    import dns.message
    import dns.query
    import dns.tsig
    import dns.tsigkeyring

    keyring = dns.tsigkeyring.from_text({"k.": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    query = dns.message.make_query(ZONE, "SOA")
    query.use_tsig(keyring, keyname="k.")
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.query.udp(query, "127.0.0.1", port=server.port, timeout=3)


def test_tsig_signed_query_is_still_answered_not_dropped(server: ServerThread) -> None:
    # Whatever the TSIG verdict, RFC 8906 §3: a server must answer, never drop.
    reply = run_dig(server.port, "+noedns", "+noad", "+norec", "-y",
                    "hmac-sha256:.:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "SOA", ZONE)
    assert reply.status in ("NOERROR", "NOTAUTH")


# --- truncation with and without EDNS (RFC 1035 §4.2.1, RFC 6891 §7, RFC 7766) ---------------

TRUNCATION = {
    # (dig flags, name): (TC expected, size limit, OPT in reply)
    "plain-40-records-over-512": ("+noedns +ignore", "ep40", True, 512, False),
    "edns-512-40-records": ("+bufsize=512 +ignore", "ep40", True, 512, True),
    "edns-1232-40-records-fit": ("+bufsize=1232 +ignore", "ep40", False, 1232, True),
    "edns-1232-100-records": ("+bufsize=1232 +ignore", "big", True, 1232, True),
    "edns-4096-capped-at-1232": ("+bufsize=4096 +ignore", "big", True, 1232, True),
    "edns-do-512": ("+dnssec +bufsize=512 +ignore", "big", True, 512, True),
}


@pytest.mark.parametrize(("flags", "service", "tc", "limit", "opt"), TRUNCATION.values(),
                         ids=TRUNCATION.keys())
def test_udp_truncation(big_server: ServerThread, flags: str, service: str, tc: bool,
                        limit: int, opt: bool) -> None:
    reply = run_dig(big_server.port, *flags.split(), f"{service}.load.svc.cluster.local", "A")
    assert reply.status == "NOERROR" and reply.transport == "UDP"
    assert ("tc" in reply.flags) is tc
    assert reply.size <= limit
    assert (reply.edns is not None) is opt
    if tc:
        # Header, question and OPT only: a partial RRset would be cached as complete.
        assert reply.counts[1:3] == (0, 0)
        if "+dnssec" in flags:
            assert reply.edns is not None and "do" in reply.edns["flags"]  # RFC 3225
    else:
        assert reply.counts[1] == BIG[service]


@pytest.mark.parametrize("flags", ["+noedns", "+bufsize=512", "+bufsize=4096 +dnssec"])
def test_tcp_carries_what_udp_truncates(big_server: ServerThread, flags: str) -> None:
    over_tcp = run_dig(big_server.port, "+tcp", *flags.split(), "big.load.svc.cluster.local", "A")
    assert over_tcp.transport == "TCP" and "tc" not in over_tcp.flags
    assert over_tcp.counts[1] == BIG["big"] and over_tcp.size > 1232
    assert (over_tcp.edns is not None) is ("+noedns" not in flags)


def test_dig_retries_a_truncated_plain_dns_reply_over_tcp(big_server: ServerThread) -> None:
    text = dig(big_server.port, "+noedns", "ep40.load.svc.cluster.local", "A")
    assert "Truncated, retrying in TCP mode" in text and "(TCP)" in text
    assert "ANSWER: 40," in text


# --- raw sockets: what dig cannot send ------------------------------------------------------


def raw_query(name: str, qtype: int = 1, qclass: int = 1, *, qid: int = 0x5A5A, flags: int = 0,
              qd: int = 1, edns: bytes = b"") -> bytes:
    labels = [label.encode() for label in name.rstrip(".").split(".") if label]
    question = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00" + struct.pack("!HH", qtype,
                                                                                  qclass)
    return (struct.pack("!HHHHHH", qid, flags, qd, 0, 0, 1 if edns else 0) + question * qd
            + edns)


def opt_rr(options: bytes = b"", do: bool = False) -> bytes:
    return b"\x00" + struct.pack("!HHIH", 41, 4096, 0x8000 if do else 0, len(options)) + options


COOKIE = struct.pack("!HH", 10, 8) + bytes(range(1, 9))


def udp_exchange(port: int, packets: list[bytes], timeout: float = 3.0) -> list[bytes]:
    """Send `packets` in order from one socket; every datagram that comes back, until the
    reply to the last one (a well-formed probe) arrives."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        for packet in packets:
            sock.sendto(packet, (HOST, port))
        got = []
        last_id = packets[-1][:2]
        while True:
            data, _ = sock.recvfrom(65535)
            got.append(data)
            if data[:2] == last_id:
                return got


def test_a_response_and_a_short_packet_get_no_reply(server: ServerThread) -> None:
    # Replying to QR=1 invites loops between servers; under 12 bytes there is no header.
    probe = raw_query(REVIEWS, qid=0x0B0B)
    got = udp_exchange(server.port, [raw_query(REVIEWS, qid=0x0A0A, flags=0x8000),
                                     b"\x0c\x0c\x00", b"", raw_query(REVIEWS, qid=0x0D0D)[:11],
                                     probe])
    assert [data[:2] for data in got] == [b"\x0b\x0b"]  # only the probe was answered


def test_a_response_over_tcp_closes_the_connection_without_a_reply(server: ServerThread) -> None:
    query = raw_query(REVIEWS, flags=0x8000)
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        assert sock.recv(1) == b""


@pytest.mark.parametrize("with_edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize("qd", [0, 2])
def test_question_count_other_than_one_is_formerr_over_udp(server: ServerThread, qd: int,
                                                           with_edns: bool) -> None:
    packet = raw_query(REVIEWS, qd=qd, edns=opt_rr(COOKIE) if with_edns else b"")
    reply = dns.message.from_wire(udp_exchange(server.port, [packet])[0])
    assert reply.rcode() == 1 and reply.id == 0x5A5A
    assert reply.edns == (0 if with_edns else -1)  # RFC 7873 §5.4: the cookie probe's OPT


def test_dig_header_only_cookie_probe_is_formerr_with_an_opt(server: ServerThread) -> None:
    reply = run_dig(server.port, "+header-only", "+cookie")
    assert reply.status == "FORMERR" and reply.edns is not None


@pytest.mark.parametrize(("name", "klass"), [("version.bind", "CH"), ("hostname.bind", "CH"),
                                             (REVIEWS, "CH"), (REVIEWS, "HS"), (REVIEWS, "CLASS255")])
def test_a_class_other_than_in_is_refused(server: ServerThread, name: str, klass: str) -> None:
    reply = run_dig(server.port, name, "TXT", klass)
    assert reply.status == "REFUSED" and reply.counts[1:] == (0, 0, 1)  # the OPT only
    assert reply.edns is not None and reply.edns["options"] == []
    assert "aa" not in reply.flags


def test_axfr_and_ixfr_are_refused(server: ServerThread) -> None:
    assert "Transfer failed." in dig(server.port, "AXFR", ZONE)
    assert "Transfer failed." in dig(server.port, "+tcp", "IXFR=1", ZONE)
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        query = raw_query(ZONE, 252)
        sock.sendall(struct.pack("!H", len(query)) + query)
        length = struct.unpack("!H", sock.recv(2))[0]
        reply = dns.message.from_wire(sock.recv(length))
    assert reply.rcode() == 5 and not reply.answer


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_the_clients_letter_case_is_echoed(server: ServerThread, transport: str) -> None:
    # DNS 0x20: the question and the owner names come back in the case they were sent.
    name = "ReViEwS.bOoKiNfO.SvC.cLuStEr.LoCaL"
    text = dig(server.port, transport, "+noall", "+question", "+answer", name, "A")
    assert re.search(rf"^;{re.escape(name)}\.\s+IN\s+A$", text, re.M), text
    assert re.search(rf"^{re.escape(name)}\.\s+5\s+IN\s+A\s+10\.96\.0\.100$", text, re.M), text


OUT_OF_ZONE = ["example.com", ".", "xcluster.local", "local", "cluster.local.evil.example",
               "svc", "in-addr.arpa.example", "a." * 60 + "example.org"]


@pytest.mark.parametrize("qtype", [1, 2, 6, 16, 255])
@pytest.mark.parametrize("name", OUT_OF_ZONE, ids=[n[:20] for n in OUT_OF_ZONE])
def test_out_of_zone_refused_is_no_bigger_than_the_query_plus_an_opt(server: ServerThread,
                                                                      name: str,
                                                                      qtype: int) -> None:
    # No amplification: REFUSED, no records, no referral, no RA, and at most the query's
    # own size (an OPT of ours in place of the client's, options never echoed).
    for edns in (b"", opt_rr(), opt_rr(COOKIE, do=True)):
        packet = raw_query(name, qtype, edns=edns)
        for over_tcp in (False, True):
            raw = tcp_exchange(server.port, packet) if over_tcp else udp_exchange(
                server.port, [packet])[0]
            reply = dns.message.from_wire(raw)
            assert reply.rcode() == 5
            assert not reply.answer and not reply.authority and not reply.additional
            assert not reply.flags & 0x0480  # neither AA nor RA
            assert len(raw) <= len(raw_query(name, qtype)) + (OPT_LEN if edns else 0)
            assert len(raw) <= len(packet) + (OPT_LEN if edns else 0)


def tcp_exchange(port: int, packet: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack_from("!H", data)[0]:
            chunk = sock.recv(65535)
            assert chunk, "closed without a reply"
            data += chunk
        return data[2:]


# --- dig +tcp and UDP give the same answers -------------------------------------------------

SAME_OVER_TCP = [
    (REVIEWS, "A"), (REVIEWS, "AAAA"), (REVIEWS, "SRV"), (REVIEWS, "TXT"),
    ("productpage.bookinfo.svc.cluster.local", "A"), ("billing.legacy.svc.cluster.local", "A"),
    ("billing.legacy.svc.cluster.local", "SRV"), ("_http._tcp.billing.legacy.svc.cluster.local",
                                                  "SRV"),
    ("web.legacy.svc.cluster.local", "A"), ("web.legacy.svc.cluster.local", "AAAA"),
    ("_quic._udp.web.legacy.svc.cluster.local", "SRV"), ("db.legacy.svc.cluster.local", "A"),
    ("db.legacy.svc.cluster.local", "SRV"), ("db-0.db.legacy.svc.cluster.local", "A"),
    ("db-2.db.legacy.svc.cluster.local", "A"), ("statsd.legacy.svc.cluster.local", "SRV"),
    ("kafka-peers.legacy.svc.cluster.local", "A"), ("payments-api.legacy.svc.cluster.local", "A"),
    ("billing-alias.legacy.svc.cluster.local", "A"), ("kube-dns.kube-system.svc.cluster.local",
                                                      "SRV"),
    ("internal-gateway.mesh-gateway.svc.cluster.local", "A"),
    ("10-244-1-5.legacy.pod.cluster.local", "A"), ("nosuch.legacy.svc.cluster.local", "A"),
    ("nosuch.svc.cluster.local", "AAAA"), ("legacy.svc.cluster.local", "A"),
    ("cluster.local", "SOA"), ("cluster.local", "NS"), ("ns.dns.cluster.local", "A"),
    ("dns-version.cluster.local", "TXT"), ("10.20.96.10.in-addr.arpa", "PTR"),
    ("100.0.96.10.in-addr.arpa", "PTR"), ("1.1.1.1.in-addr.arpa", "PTR"), ("example.com", "A"),
]


@pytest.mark.parametrize("edns", ["+noedns", "+edns=0"])
def test_dig_tcp_and_udp_give_identical_sections(server: ServerThread, tmp_path: Path,
                                                  edns: str) -> None:
    batch = tmp_path / "queries.txt"
    batch.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in SAME_OVER_TCP))
    common = ["+noall", "+comments", "+question", "+answer", "+authority", "+additional", edns,
              "-f", str(batch)]
    over_udp = dig(server.port, "+notcp", *common)
    over_tcp = dig(server.port, "+tcp", *common)

    def sections(text: str) -> list[str]:
        # Everything but the per-query IDs, timings and dig's mDNS warnings.
        return [re.sub(r"id: \d+", "id", line) for line in text.splitlines()
                if line and not line.startswith((";; WARNING", ";; You are currently"))]

    assert over_udp.count("status:") == len(SAME_OVER_TCP)
    assert sections(over_udp) == sections(over_tcp)
