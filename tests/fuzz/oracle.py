"""What every reply to any bytes must satisfy: shared by the atheris harness, the
corpus replay in CI and the Hypothesis properties.

The oracle reads the query with its own small walker, not with `dnsrewrite.wire`,
so a decoding bug in the server cannot hide itself; replies are read with dnspython.
"""

from __future__ import annotations

import struct

import dns.exception
import dns.message
import dns.tsig

QR, TC = 0x8000, 0x0200
OPT = 41
UDP_PLAIN, OUR_PAYLOAD, TCP_MAX = 512, 1232, 65535
RCODES = {0, 1, 2, 3, 4, 5, 16}  # NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED BADVERS


class OracleError(AssertionError):
    pass


def _skip_name(packet: bytes, offset: int) -> int:
    """Offset past a name (a pointer ends it); IndexError when it runs off the end."""
    while True:
        length = packet[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 2 > len(packet):
                raise IndexError("pointer cut")
            return offset + 2
        if length & 0xC0:
            raise IndexError("extended label")
        offset += 1 + length


def question_length(packet: bytes) -> int | None:
    """Bytes of the first question (name, type, class), or None if it is not readable."""
    try:
        end = _skip_name(packet, 12) + 4
    except IndexError:
        return None
    return end - 12 if end <= len(packet) else None


def client_opt(packet: bytes) -> tuple[bool, int | None]:
    """(the message holds an OPT record, the UDP size of the first one found).

    (False, None) when there is none or the sections cannot be walked."""
    try:
        qd, an, ns, ar = struct.unpack_from("!HHHH", packet, 4)
        offset = 12
        for _ in range(qd):
            offset = _skip_name(packet, offset) + 4
        for section, count in ((0, an + ns), (1, ar)):
            for _ in range(count):
                offset = _skip_name(packet, offset)
                rtype, rclass, _ttl, rdlength = struct.unpack_from("!HHIH", packet, offset)
                if section == 1 and rtype == OPT:
                    return True, rclass
                offset += 10 + rdlength
    except (IndexError, struct.error):
        pass
    return False, None


def check(packet: bytes, reply: bytes | None, tcp: bool) -> dns.message.Message | None:
    """Raise OracleError if `reply` is not an acceptable answer to `packet`."""
    droppable = len(packet) < 12 or bool(packet[2] & 0x80)
    if reply is None:
        if not droppable:
            raise OracleError("no reply to a query with a readable header and QR=0")
        return None
    if droppable:
        raise OracleError("a reply to a response (QR=1) or to fewer than 12 bytes")
    if reply[:2] != packet[:2]:
        raise OracleError(f"reply ID {reply[:2].hex()} != query ID {packet[:2].hex()}")
    flags = struct.unpack_from("!H", reply, 2)[0]
    if not flags & QR:
        raise OracleError("QR not set in the reply")
    if (flags >> 11) & 0xF != (packet[2] >> 3) & 0xF:
        raise OracleError("opcode not echoed")
    if tcp:
        limit = TCP_MAX
    else:
        has_opt, size = client_opt(packet)
        limit = min(max(size or 0, UDP_PLAIN), OUR_PAYLOAD) if has_opt else UDP_PLAIN
    try:
        message = dns.message.from_wire(reply)
    except dns.message.UnknownTSIGKey:
        # A signed query gets NOTAUTH with an unsigned BADKEY TSIG (RFC 8945 §5.2.1):
        # a TSIG client must see exactly that, and the size rules still hold.
        if reply[3] & 0xF != 9:
            raise OracleError("a TSIG in a reply that is not NOTAUTH") from None
        try:
            dns.message.from_wire(reply, keyring=lambda _m, name: dns.tsig.Key(name, b"x"))
        except dns.tsig.PeerBadKey:
            if len(reply) > limit:
                raise OracleError(f"{len(reply)}-byte reply over the {limit}-byte limit") from None
            return
        except dns.exception.DNSException as err:
            raise OracleError(f"bad TSIG in the reply: {err!r}") from err
        raise OracleError("a TSIG reply that is not BADKEY") from None
    except dns.exception.DNSException as err:
        raise OracleError(f"dnspython cannot parse the reply: {err!r}") from err
    if message.edns >= 0 and not client_opt(packet)[0] and b"\x00\x00\x29" not in packet:
        raise OracleError("an OPT in the reply to a query without one")
    if message.edns < 0 and not tcp and len(reply) > UDP_PLAIN:
        raise OracleError(f"{len(reply)}-byte UDP reply without EDNS")
    if len(reply) > limit:
        raise OracleError(f"{len(reply)}-byte reply over the {limit}-byte limit")
    if message.rcode() not in RCODES:
        raise OracleError(f"unexpected rcode {message.rcode()}")
    if flags & TC and (message.answer or message.authority):
        raise OracleError("a truncated reply carries records")
    qd = struct.unpack_from("!H", reply, 4)[0]
    if qd:
        length = question_length(packet)
        if length is None or reply[12 : 12 + length] != packet[12 : 12 + length]:
            raise OracleError("the question is not echoed byte for byte")
    return message
