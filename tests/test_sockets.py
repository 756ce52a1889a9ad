"""The server over real UDP and TCP sockets: dig, dnspython and raw bytes.

Each test talks to a real `App` serving on a free port from a background
thread (`ServerThread`). Nothing here sleeps to wait: replies and closes are
awaited on the socket with a timeout, server state is polled with a deadline.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from dnsrewrite import config
from dnsrewrite.server import TcpConnection, TcpServerState
from tests.conftest import ServerThread, demo_config
from tests.dnsclient import dig, make_query, section_lines, tcp, udp

HOST = "127.0.0.1"
REVIEWS = "reviews.bookinfo.svc.cluster.local"
BILLING = "billing.legacy.svc.cluster.local"
BIG = "big.load.svc.cluster.local"
BIG_ENDPOINTS = 100  # 1,700 bytes of A records: over dig's 1232-byte EDNS buffer


# --- helpers -------------------------------------------------------------------------


def wire(name: str = REVIEWS, rdtype: str = "A", qid: int = 0x1234) -> bytes:
    return make_query(name, rdtype, qid=qid).to_wire()


def frame(message: bytes) -> bytes:
    """RFC 7766 §8 / RFC 1035 §4.2.2: a two-byte length, then the message."""
    return struct.pack("!H", len(message)) + message


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def read_reply(sock: socket.socket) -> dns.message.Message:
    (length,) = struct.unpack("!H", recv_exactly(sock, 2))
    return dns.message.from_wire(recv_exactly(sock, length))


def ask_on(sock: socket.socket, name: str = REVIEWS, qid: int = 0x1234) -> dns.message.Message:
    sock.sendall(frame(wire(name, qid=qid)))
    reply = read_reply(sock)
    assert reply.id == qid
    return reply


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Block until the server closes (EOF or reset); False if it is still open at `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def poll(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def serving(cfg: config.Config) -> Iterator[ServerThread]:
    server = ServerThread(cfg).start()
    try:
        yield server
    finally:
        server.stop()


def tcp_connections(server: ServerThread) -> int:
    assert server.app is not None
    return server.call(lambda: server.app.server.tcp_connections)  # type: ignore[union-attr]


def write_big_cluster(path: Path) -> str:
    """One namespace with a headless Service of BIG_ENDPOINTS ready endpoints."""
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(BIG_ENDPOINTS)]
    items: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big", "namespace": "load"},
         "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "big-1", "namespace": "load",
                      "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    ]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return str(path)


@pytest.fixture
def big_server(tmp_path: Path) -> Iterator[ServerThread]:
    path = write_big_cluster(tmp_path / "big.json")
    yield from serving(demo_config(cluster_file=path, tcp={"idle_timeout_s": 0.5}))


@pytest.fixture
def quick_idle_server() -> Iterator[ServerThread]:
    yield from serving(demo_config(tcp={"idle_timeout_s": 0.3}))


@pytest.fixture
def capped_server() -> Iterator[ServerThread]:
    yield from serving(demo_config(tcp={"max_connections": 3}))


# --- dig and dnspython against the demo cluster ----------------------------------------


def test_dig_gets_the_gateway_vip_for_an_enrolled_service(demo_server: ServerThread) -> None:
    assert dig(demo_server.port, "+short", REVIEWS).split() == ["10.96.0.100"]


def test_dig_gets_the_real_cluster_ip_for_a_plain_service(demo_server: ServerThread) -> None:
    assert dig(demo_server.port, "+short", BILLING).split() == ["10.96.20.10"]


def test_dig_gets_refused_outside_the_zone(demo_server: ServerThread) -> None:
    out = dig(demo_server.port, "example.com", "A")
    assert "status: REFUSED" in out
    assert " ra" not in out.split("flags:")[1].split(";")[0]  # never recursion available


@pytest.mark.parametrize(("name", "rdtype"), [
    (REVIEWS, "A"),
    (BILLING, "A"),
    ("db.legacy.svc.cluster.local", "A"),
    ("_postgres._tcp.db.legacy.svc.cluster.local", "SRV"),
    ("web.legacy.svc.cluster.local", "AAAA"),
    ("payments-api.legacy.svc.cluster.local", "CNAME"),
])
def test_dig_over_tcp_gives_the_same_answer_as_udp(demo_server: ServerThread, name: str,
                                                   rdtype: str) -> None:
    over_udp = dig(demo_server.port, "+noall", "+answer", name, rdtype)
    over_tcp = dig(demo_server.port, "+tcp", "+noall", "+answer", name, rdtype)
    assert over_udp.strip(), "no answer"
    assert over_tcp == over_udp


@pytest.mark.parametrize(("name", "rdtype"), [
    (REVIEWS, "A"),
    ("db.legacy.svc.cluster.local", "SRV"),
    ("nosuch.legacy.svc.cluster.local", "A"),  # NXDOMAIN with SOA
    ("example.com", "A"),  # REFUSED
])
def test_dnspython_udp_and_tcp_replies_are_equal(demo_server: ServerThread, name: str,
                                                 rdtype: str) -> None:
    over_udp = udp(HOST, demo_server.port, name, rdtype)
    over_tcp = tcp(HOST, demo_server.port, name, rdtype)
    assert over_udp.rcode() == over_tcp.rcode()
    assert over_udp.flags == over_tcp.flags
    for section in ("question", "answer", "authority", "additional"):
        udp_lines = section_lines(getattr(over_udp, section))
        assert udp_lines == section_lines(getattr(over_tcp, section))


def test_truncated_udp_reply_makes_dig_retry_over_tcp(big_server: ServerThread) -> None:
    # RFC 7766 §5: TC=1 over UDP, the client retries over TCP and gets everything.
    out = dig(big_server.port, BIG, "A")
    assert "Truncated, retrying in TCP mode" in out
    assert "(TCP)" in out  # dig's ";; SERVER:" line names the transport that answered
    assert "status: NOERROR" in out
    answers = [line for line in out.splitlines() if line.startswith(f"{BIG}.") and "\tA\t" in line]
    assert len(answers) == BIG_ENDPOINTS


def test_udp_reply_too_large_sets_tc_and_carries_no_records(big_server: ServerThread) -> None:
    reply = dns.query.udp(make_query(BIG), HOST, port=big_server.port, timeout=3,
                          ignore_trailing=False, raise_on_truncation=False)
    assert reply.flags & dns.flags.TC
    assert not reply.answer and reply.edns == 0


# --- TCP framing, pipelining and lifetime (RFC 7766) ------------------------------------


def test_200_pipelined_queries_in_one_send_are_all_answered(demo_server: ServerThread) -> None:
    # RFC 7766 §6.2.1.1: a server processes pipelined queries on one connection.
    names = [REVIEWS, BILLING, "db.legacy.svc.cluster.local", "example.com"]
    sent = {qid: names[qid % len(names)] for qid in range(1000, 1200)}
    with connect(demo_server.port) as sock:
        sock.sendall(b"".join(frame(wire(name, qid=qid)) for qid, name in sent.items()))
        replies = [read_reply(sock) for _ in sent]
    assert sorted(reply.id for reply in replies) == sorted(sent)
    for reply in replies:
        assert reply.question[0].name.to_text() == sent[reply.id] + "."


def test_messages_split_across_many_small_writes_are_reassembled(demo_server: ServerThread) -> None:
    # RFC 7766 §8: the length and the message may arrive in any number of segments.
    stream = frame(wire(REVIEWS, qid=1)) + frame(wire(BILLING, qid=2))
    with connect(demo_server.port) as sock:
        for i in range(0, len(stream), 3):
            sock.send(stream[i : i + 3])
        first, second = read_reply(sock), read_reply(sock)
    assert (first.id, second.id) == (1, 2)
    assert first.answer[0].to_text() == f"{REVIEWS}. 5 IN A 10.96.0.100"
    assert second.answer[0].to_text() == f"{BILLING}. 5 IN A 10.96.20.10"


class _RecordingTransport:
    """Just enough of asyncio.Transport to watch what TcpConnection writes.

    With `high_water`, a write that fills the buffer to it calls the protocol's
    pause_writing(), as asyncio's transports do.
    """

    def __init__(self, protocol: TcpConnection, high_water: int | None = None) -> None:
        self.protocol = protocol
        self.high_water = high_water
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written += data
        if self.high_water is not None and len(self.written) >= self.high_water:
            self.high_water = None
            self.protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("192.0.2.1", 5353) if name == "peername" else None

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    abort = close


def echo_connection(high_water: int | None = None) -> tuple[TcpConnection, _RecordingTransport]:
    """A TcpConnection whose answer is b"R" + the query."""
    state = TcpServerState(lambda msg, _tcp, _family: b"R" + msg, 10.0, 10, set())
    conn = TcpConnection(state)
    transport = _RecordingTransport(conn, high_water)
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def test_framing_survives_one_byte_per_read() -> None:
    # The same framing without a kernel in between: every byte is its own read.
    conn, transport = echo_connection()
    for byte in frame(b"x" * 12) + frame(b"y" * 300):
        conn.data_received(bytes([byte]))
    conn.connection_lost(None)
    assert transport.written == frame(b"R" + b"x" * 12) + frame(b"R" + b"y" * 300)
    assert not transport.closed


async def test_pipelined_queries_wait_while_the_client_is_not_reading() -> None:
    # Backpressure: once the write buffer is full, the rest of a read waits for
    # resume_writing(), so one read of queries cannot pile up unbounded replies.
    queries = [bytes([i]) * 12 for i in range(3)]
    conn, transport = echo_connection(high_water=1)
    conn.data_received(b"".join(frame(q) for q in queries))
    assert transport.written == frame(b"R" + queries[0])
    assert not transport.reading
    conn.resume_writing()  # the client caught up
    conn.connection_lost(None)
    assert transport.written == b"".join(frame(b"R" + q) for q in queries)
    assert transport.reading


def test_zero_length_frame_closes_the_connection_after_earlier_replies(
    demo_server: ServerThread,
) -> None:
    # An empty message is no DNS message (RFC 1035 §4.1.1): the stream is not DNS, so
    # the server answers what came before it and then closes.
    with connect(demo_server.port) as sock:
        sock.sendall(frame(wire(qid=7)) + frame(b"") + frame(wire(qid=8)))
        assert read_reply(sock).id == 7
        assert closed_by_server(sock)


def test_idle_connection_is_closed_at_the_idle_timeout(quick_idle_server: ServerThread) -> None:
    # RFC 7766 §6.2.3: the server may close idle connections; ours after 0.3 s.
    with connect(quick_idle_server.port) as sock:
        ask_on(sock)
        started = time.monotonic()
        assert closed_by_server(sock)
        assert time.monotonic() - started >= 0.2
    assert poll(lambda: tcp_connections(quick_idle_server) == 0)


def test_queries_keep_a_connection_open_past_the_idle_timeout(
    quick_idle_server: ServerThread,
) -> None:
    with connect(quick_idle_server.port) as sock:
        deadline = time.monotonic() + 1.0  # more than three idle timeouts
        qid = 0
        while time.monotonic() < deadline:
            qid += 1
            ask_on(sock, qid=qid)


def test_slow_client_with_half_a_message_is_closed(quick_idle_server: ServerThread) -> None:
    # Slowloris: bytes that never complete a query do not keep the connection alive.
    message = frame(wire())
    with connect(quick_idle_server.port) as sock:
        sock.sendall(message[: len(message) // 2])
        assert closed_by_server(sock)


def test_client_that_never_reads_its_replies_is_cut_off(big_server: ServerThread) -> None:
    # The server stops reading while its replies back up; the idle timeout (0.5 s) must
    # still end the connection, even with unsent replies queued.
    sock = socket.create_connection((HOST, big_server.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    batch = frame(wire(BIG)) * 100  # ~170 KB of replies per 4 KB sent
    with sock:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                sock.send(batch)
            except BlockingIOError:
                break  # the server has stopped reading: its side is backed up
        else:
            pytest.fail("the server kept reading from a client that reads nothing")
        assert poll(lambda: tcp_connections(big_server) == 0, timeout=10)


def test_connection_over_the_cap_is_closed_at_once(capped_server: ServerThread) -> None:
    # A cap on concurrent connections (RFC 7766 §6.2.2 resource limits): the 4th is
    # closed straight away, the 3 already open keep working.
    port = capped_server.port
    first = [connect(port) for _ in range(3)]
    try:
        for qid, sock in enumerate(first):
            ask_on(sock, qid=qid)  # each one is accepted and counted
        with connect(port) as extra:
            assert closed_by_server(extra, timeout=2)
        for qid, sock in enumerate(first):
            ask_on(sock, qid=100 + qid)
        first.pop().close()
        assert poll(lambda: tcp_connections(capped_server) == 2)
        with connect(port) as replacement:  # a freed slot can be taken again
            ask_on(replacement, qid=200)
    finally:
        for sock in first:
            sock.close()


# --- UDP robustness ------------------------------------------------------------------------


def probe(port: int, replies: list[dns.message.Message]) -> bool:
    query = make_query(REVIEWS)
    try:
        replies.append(dns.query.udp(query, HOST, port=port, timeout=0.5))
    except dns.exception.Timeout:
        return False
    return True


def test_garbage_datagrams_never_stop_the_server(demo_server: ServerThread) -> None:
    rng = random.Random(20240611)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(2000):
            sock.sendto(rng.randbytes(rng.randrange(0, 600)), (HOST, demo_server.port))
    # The kernel drops what overflows the socket buffer, perhaps a first probe too:
    # like any UDP client, ask again until a deadline.
    replies: list[dns.message.Message] = []
    assert poll(lambda: probe(demo_server.port, replies), timeout=10)
    assert replies[0].answer[0].to_text() == f"{REVIEWS}. 5 IN A 10.96.0.100"
    over_tcp = tcp(HOST, demo_server.port, BILLING)
    assert over_tcp.answer[0].to_text() == f"{BILLING}. 5 IN A 10.96.20.10"
    assert demo_server.app is not None and demo_server.app.answerer.panics == 0
