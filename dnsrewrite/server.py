"""asyncio UDP and TCP transport for an `answer(packet, tcp) -> bytes | None` function.

UDP: one datagram in, at most one out. TCP (RFC 7766): 2-byte length framing,
pipelined queries answered as they are read, an idle timeout that also ends
slow or stalled clients, a cap on concurrent connections, and reading paused
while a client does not read its replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dnsrewrite.config import ListenAddress

log = logging.getLogger(__name__)

# answer(packet, tcp, family) with family "1" (IPv4) or "2" (IPv6), as CoreDNS labels it.
AnswerFn = Callable[[bytes, bool, str], bytes | None]
QueryLog = Callable[[tuple, bytes, bytes | None, bool], None]
# A last say on each UDP reply (response rate limiting): (client IP, reply) -> reply or None.
UdpFilter = Callable[[str, bytes], bytes | None]

_PORT_ZERO_ATTEMPTS = 20


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, answer: AnswerFn, family: str, query_log: QueryLog | None,
                 udp_filter: UdpFilter | None = None) -> None:
        self._answer = answer
        self._family = family
        self._query_log = query_log
        self._filter = udp_filter
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = self._answer(data, False, self._family)
        if self._query_log is not None:
            self._query_log(addr, data, reply, False)
        if reply is not None and self._filter is not None:
            reply = self._filter(addr[0], reply)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that left: nothing to do.
        log.debug("udp error: %s", exc)


class UdpReader:
    """A dedicated thread with a blocking recvfrom/sendto loop on one UDP socket.

    Measured faster than asyncio's datagram transport (benchmarks/RESULTS.md):
    no event-loop round trip per packet, and the GIL is released in each
    system call. The answer function is thread-safe: it reads one immutable
    view and counts into this thread's own integers.
    """

    def __init__(self, sock: socket.socket, answer: AnswerFn, family: str,
                 query_log: QueryLog | None, udp_filter: UdpFilter | None = None) -> None:
        self.sock = sock
        self._filter = udp_filter
        self._answer = answer
        self._family = family
        self._query_log = query_log
        self._stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"udp-{sock.getsockname()[1]}")

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        recvfrom, sendto = self.sock.recvfrom, self.sock.sendto
        answer, family, query_log = self._answer, self._family, self._query_log
        udp_filter = self._filter
        while True:
            try:
                data, addr = recvfrom(65535)
            except OSError:
                if self._stopping:
                    return
                continue  # e.g. ECONNREFUSED reported for an earlier sendto
            if self._stopping:
                return
            reply = answer(data, False, family)
            if query_log is not None:
                query_log(addr, data, reply, False)
            if reply is not None and udp_filter is not None:
                reply = udp_filter(addr[0], reply)
            if reply is not None:
                try:  # noqa: SIM105 -- per packet: a context manager would cost more
                    sendto(reply, addr)
                except OSError:
                    pass  # the client is gone or its buffer is full: UDP may drop

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recvfrom on Linux
        self.thread.join(5)
        self.sock.close()


class TcpConnection(asyncio.Protocol):
    def __init__(self, server: TcpServerState) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False  # the client is not reading: answer nothing more for now

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._peer = transport.get_extra_info("peername") or ("?", 0)
        state = self._server
        if len(state.connections) >= state.max_connections:
            state.refused += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        state.connections.add(self)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._server.idle_timeout_s, self.shut)

    def shut(self) -> None:
        """End the connection: idle timeout or server stop."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            # Replies the client is not reading: close() would wait for them to
            # drain, forever if the client never reads (reading is paused too).
            transport.abort()
        else:
            transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._answer_buffered()

    def _answer_buffered(self) -> None:
        """Answer the complete queries in the buffer until the write buffer is full.

        Stopping there, not at the end of the read, bounds what one read of
        pipelined queries can make us hold in memory to about one reply.
        """
        answered = False
        while not self._paused and len(self._buffer) >= 2 and self._transport is not None:
            (length,) = struct.unpack_from("!H", self._buffer)
            if len(self._buffer) < 2 + length:
                break
            message = bytes(self._buffer[2 : 2 + length])
            del self._buffer[: 2 + length]
            answered = True
            state = self._server
            reply = state.answer(message, True, state.family)
            if state.query_log is not None:
                state.query_log(self._peer, message, reply, True)
            if reply is None:
                # A message we would drop over UDP: over TCP the stream can no
                # longer be trusted to be a DNS stream, so close it.
                self._transport.close()
                return
            self._transport.write(struct.pack("!H", len(reply)) + reply)
        if answered:
            self._arm_timer()  # only complete queries keep a connection alive

    def pause_writing(self) -> None:
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        self._answer_buffered()  # queries read before the pause
        if not self._paused and self._transport is not None:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # close our side once the client has finished sending

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None


@dataclass
class TcpServerState:
    answer: AnswerFn
    idle_timeout_s: float
    max_connections: int
    connections: set[TcpConnection]
    family: str = "1"
    query_log: QueryLog | None = None
    refused: int = 0


class DnsServer:
    """UDP and TCP listeners on every configured address."""

    def __init__(
        self,
        answer: AnswerFn,
        addresses: tuple[ListenAddress, ...],
        idle_timeout_s: float = 10.0,
        max_connections: int = 1000,
        query_log: QueryLog | None = None,
        udp_mode: str = "thread",
        udp_filter: UdpFilter | None = None,
    ) -> None:
        """`udp_mode`: "thread" (a blocking reader thread per address) or "asyncio"."""
        self.addresses = addresses
        self._query_log = query_log
        self._udp_mode = udp_mode
        self._udp_readers: list[UdpReader] = []
        self._udp_filter = udp_filter
        self._answer = answer
        self._tcp_states: list[TcpServerState] = []
        self._idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self.bound: list[tuple[str, int]] = []  # actual (host, port), port 0 resolved

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for address in self.addresses:
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            family_label = "2" if family == socket.AF_INET6 else "1"
            state = TcpServerState(
                self._answer, self._idle_timeout_s, self._max_connections, set(),
                family_label, self._query_log,
            )
            self._tcp_states.append(state)
            for attempt in range(_PORT_ZERO_ATTEMPTS):
                # Bind TCP first so that with port 0 UDP can take the same number.
                tcp = await loop.create_server(
                    lambda state=state: TcpConnection(state),  # type: ignore[misc]
                    host=address.host,
                    port=address.port,
                    family=family,
                    reuse_address=True,
                    backlog=1024,
                )
                port = tcp.sockets[0].getsockname()[1]
                try:
                    udp = await self._start_udp(loop, address.host, port, family, family_label)
                    break
                except OSError:
                    # With port 0 the kernel chose a TCP port whose UDP twin is
                    # taken (e.g. by some client's ephemeral socket): try another.
                    tcp.close()
                    await tcp.wait_closed()
                    if address.port != 0 or attempt == _PORT_ZERO_ATTEMPTS - 1:
                        raise
            self._tcp.append(tcp)
            if udp is not None:
                self._udp.append(udp)
            self.bound.append((address.host, port))
            log.info("listening", extra={"fields": {"address": f"{address.host}:{port}"}})

    async def _start_udp(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, family: int, label: str
    ) -> asyncio.DatagramTransport | None:
        if self._udp_mode == "asyncio":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: UdpProtocol(self._answer, label, self._query_log, self._udp_filter),
                local_addr=(host, port),
                family=family,
            )
            return udp
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):  # a bigger queue absorbs bursts
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        reader = UdpReader(sock, self._answer, label, self._query_log, self._udp_filter)
        reader.start()
        self._udp_readers.append(reader)
        return None

    async def stop(self) -> None:
        for reader in self._udp_readers:
            await asyncio.get_running_loop().run_in_executor(None, reader.stop)
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            tcp.close()
        for state in self._tcp_states:
            for conn in list(state.connections):
                conn.shut()
        for tcp in self._tcp:
            await tcp.wait_closed()

    @property
    def tcp_connections(self) -> int:
        return sum(len(s.connections) for s in self._tcp_states)
