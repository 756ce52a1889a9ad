"""Bytes <-> messages: the only place untrusted bytes are read.

A small decoder that reads exactly what an authoritative answer needs (header,
the one question, the OPT record) and an encoder with name compression that
writes our synthesized records. Decoding raises `Drop` (no reply: not even a
header to answer) or `FormErr` (the header is readable, the rest is not); no
other exception escapes for any input. Encoding raises `Unencodable` rather
than write a name that is not a valid wire name.

The reply carries the client's question bytes, so its letter case is echoed
(DNS 0x20); names compressed against the question inherit that case.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Name = tuple[bytes, ...]

# RR types and classes we synthesize or inspect (RFC 1035, 2782, 3596, 6891).
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, IXFR, AXFR, ANY = (
    1, 2, 5, 6, 12, 16, 28, 33, 41, 251, 252, 255,
)
CLASS_IN = 1

# RCODEs (RFC 1035 §4.1.1, RFC 6891 §9).
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16

OPCODE_QUERY = 0
MAX_NAME_WIRE = 255  # RFC 1035 §3.1
MAX_LABEL = 63  # RFC 1035 §3.1
PLAIN_UDP_LIMIT = 512  # RFC 1035 §4.2.1, without EDNS
TCP_LIMIT = 65535  # RFC 7766: the 2-byte length prefix

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_SOA_TIMES = struct.Struct("!IIIII")
_SRV_FIXED = struct.Struct("!HHH")

# Header flag bits.
QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010


class Drop(Exception):
    """No reply at all: fewer than 12 bytes, or a response (QR=1)."""


class FormErr(Exception):
    """The header is readable, the rest is not: answer FORMERR."""


class Unencodable(ValueError):
    """A synthesized name cannot be written (empty or >63-byte label, >255 bytes)."""


@dataclass(frozen=True, slots=True)
class Header:
    id: int
    flags: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int
    do: bool


@dataclass(frozen=True, slots=True)
class Question:
    labels: Name  # as sent: original case
    qtype: int
    qclass: int
    wire: bytes  # the question's exact bytes (name, type, class)
    end: int  # offset just past the question


def read_header(packet: bytes) -> Header:
    if len(packet) < 12:
        raise Drop("short packet")
    header = Header(*_HEADER.unpack_from(packet))
    if header.flags & QR:
        raise Drop("QR set: a response, not a query")
    return header


def read_question(packet: bytes) -> Question:
    """The first question (RFC 1035 §4.1.2). No compression may appear in it."""
    labels: list[bytes] = []
    offset, total = 12, 1
    while True:
        if offset >= len(packet):
            raise FormErr("question name runs past the packet")
        length = packet[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:
            raise FormErr("compression or extended label in the question")
        total += length + 1
        if total > MAX_NAME_WIRE:
            raise FormErr("question name longer than 255 bytes")
        label = packet[offset + 1 : offset + 1 + length]
        if len(label) != length:
            raise FormErr("question label runs past the packet")
        labels.append(label)
        offset += 1 + length
    if offset + 4 > len(packet):
        raise FormErr("question type/class missing")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    return Question(tuple(labels), qtype, qclass, packet[12 : offset + 4], offset + 4)


def _skip_name(packet: bytes, offset: int) -> int:
    while True:
        if offset >= len(packet):
            raise FormErr("name runs past the packet")
        length = packet[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length & 0xC0:
            raise FormErr("extended label type")
        offset += 1 + length


def _additional(packet: bytes, header: Header, offset: int) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Walk the additional section from `offset` (the end of the question):
    (owner offset, rtype, rclass, ttl, rdata offset, end offset) per record."""
    for _ in range(header.arcount):
        owner = offset
        offset = _skip_name(packet, offset)
        if offset + 10 > len(packet):
            raise FormErr("additional record runs past the packet")
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(packet, offset)
        rdata = offset + 10
        offset = rdata + rdlength
        if offset > len(packet):
            raise FormErr("rdata runs past the packet")
        yield owner, rtype, rclass, ttl, rdata, offset


def read_edns(packet: bytes, header: Header, offset: int) -> Edns | None:
    """Find the OPT record in the additional section (RFC 6891 §6.1.1).

    More than one OPT, or an OPT whose owner is not the root, is FORMERR.
    Options are length-checked and otherwise ignored (unknown ones included).
    """
    edns = None
    for owner, rtype, rclass, ttl, rdata, end in _additional(packet, header, offset):
        if rtype == OPT:
            if edns is not None:
                raise FormErr("more than one OPT record")
            if packet[owner] != 0:
                raise FormErr("OPT owner is not the root")
            _check_options(packet, rdata, end)
            edns = Edns(max(rclass, PLAIN_UDP_LIMIT), (ttl >> 16) & 0xFF, bool(ttl & 0x8000))
    return edns


TSIG = 250
CLASS_ANY = 255
NOTAUTH = 9
BADKEY = 17


def _name_wire(packet: bytes, offset: int) -> tuple[bytes, int]:
    """A name's uncompressed wire form and the offset past it (pointers followed)."""
    out, end, hops = bytearray(), None, 0
    while True:
        if offset >= len(packet):
            raise FormErr("name runs past the packet")
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(packet) or hops > 20:
                raise FormErr("bad compression pointer")
            end = offset + 2 if end is None else end
            offset, hops = ((length & 0x3F) << 8) | packet[offset + 1], hops + 1
            continue
        if length & 0xC0:
            raise FormErr("extended label type")
        out += packet[offset : offset + 1 + length]
        if length == 0:
            return bytes(out), offset + 1 if end is None else end
        if len(out) > MAX_NAME_WIRE:
            raise FormErr("name longer than 255 bytes")
        offset += 1 + length


def tsig_badkey(packet: bytes, header: Header, offset: int) -> bytes | None:
    """The unsigned BADKEY TSIG record to answer a TSIG-signed query with, or None.

    We hold no keys, so a signed query cannot be verified: RFC 8945 §5.2.1 wants
    NOTAUTH with TSIG error BADKEY, unsigned (§5.3.2). A TSIG that is not the
    last record is FORMERR (§5.1). `offset` is the end of the question.
    """
    records = list(_additional(packet, header, offset))
    for index, (owner, rtype, _rclass, _ttl, rdata, end) in enumerate(records):
        if rtype != TSIG:
            continue
        if index != len(records) - 1:
            raise FormErr("TSIG is not the last record")
        key, _ = _name_wire(packet, owner)
        algorithm, after = _name_wire(packet, rdata)
        if after + 8 > end:
            raise FormErr("truncated TSIG")
        time_and_fudge = packet[after : after + 8]
        body = algorithm + time_and_fudge + struct.pack("!HHHH", 0, header.id, BADKEY, 0)
        return key + _RR_FIXED.pack(TSIG, CLASS_ANY, 0, len(body)) + body
    return None


def find_edns(packet: bytes, header: Header) -> Edns | None:
    """The OPT of a message whose question the gate does not read (NOTIMP, bad
    counts), so that the error reply can still carry one (RFC 6891 §7).

    Walks every section; raises `FormErr` when the message cannot be walked.
    """
    offset = 12
    for _ in range(header.qdcount):
        offset = _skip_name(packet, offset) + 4
    for _ in range(header.ancount + header.nscount):
        offset = _skip_name(packet, offset)
        if offset + 10 > len(packet):
            raise FormErr("record runs past the packet")
        (rdlength,) = struct.unpack_from("!H", packet, offset + 8)
        offset += 10 + rdlength
    if offset > len(packet):
        raise FormErr("section runs past the packet")
    return read_edns(packet, header, offset)


def _check_options(packet: bytes, offset: int, end: int) -> None:
    while offset < end:
        if offset + 4 > end:
            raise FormErr("truncated EDNS option")
        _code, length = struct.unpack_from("!HH", packet, offset)
        offset += 4 + length
        if offset > end:
            raise FormErr("EDNS option runs past its record")


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record; `data` is packed rdata for A/AAAA/TXT, else fields."""

    name: Name
    rtype: int
    ttl: int
    data: object


class _Writer:
    """Appends to a message, compressing names (RFC 1035 §4.1.4)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.names: dict[tuple[bytes, ...], int] = {}

    def name(self, labels: Name, compress: bool = True) -> None:
        # Names from cluster data are not validated at ingest everywhere; a bad
        # one must fail this reply (SERVFAIL), never go out as a malformed packet.
        if sum(map(len, labels)) + len(labels) + 1 > MAX_NAME_WIRE or not all(
            0 < len(label) <= MAX_LABEL for label in labels
        ):
            raise Unencodable(f"not a valid wire name: {labels!r}")
        for i in range(len(labels)):
            suffix = labels[i:]
            pointer = self.names.get(suffix) if compress else None
            if pointer is not None:
                self.buf += struct.pack("!H", 0xC000 | pointer)
                return
            if len(self.buf) < 0x3FFF:
                self.names.setdefault(suffix, len(self.buf))
            self.buf.append(len(labels[i]))
            self.buf += labels[i]
        self.buf.append(0)

    def record(self, rr: Record) -> None:
        self.name(rr.name)
        self.buf += _RR_FIXED.pack(rr.rtype, CLASS_IN, rr.ttl, 0)
        length_at = len(self.buf) - 2
        data: Any = rr.data  # its shape depends on rtype (see Record)
        if rr.rtype in (CNAME, PTR, NS):
            self.name(data)
        elif rr.rtype == SRV:
            priority, weight, port, target = data
            self.buf += _SRV_FIXED.pack(priority, weight, port)
            self.name(target, compress=False)  # RFC 2782: no compression in SRV
        elif rr.rtype == SOA:
            mname, rname, *times = data
            self.name(mname)
            self.name(rname)
            self.buf += _SOA_TIMES.pack(*times)
        else:
            self.buf += data
        struct.pack_into("!H", self.buf, length_at, len(self.buf) - length_at - 2)


def txt_data(*strings: str) -> bytes:
    out = bytearray()
    for text in strings:
        raw = text.encode()
        out.append(len(raw))
        out += raw
    return bytes(out)


def _opt_record(payload: int, rcode: int, do: bool) -> bytes:
    ttl = ((rcode >> 4) << 24) | (0x8000 if do else 0)  # version 0
    return b"\x00" + _RR_FIXED.pack(OPT, payload, ttl, 0)


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer, independent of the wire."""

    rcode: int
    answer: Sequence[Record] = ()
    authority: Sequence[Record] = ()
    additional: Sequence[Record] = ()
    aa: bool = True
    rewritten: bool = False  # answered with a gateway's VIPs (for metrics)


def encode_reply(
    header: Header,
    question: Question | None,
    reply: Reply,
    edns: Edns | None,
    payload: int,
    limit: int,
) -> bytes:
    """The response message, fitted to `limit` bytes.

    Additional records that do not fit are left out without TC, as RFC 2181
    §9 allows and NSD does (they are only hints). If the answer or authority
    section does not fit, the reply keeps header, question and OPT and sets TC
    (RFC 2181 §9, RFC 6891 §7); the client retries over TCP. OPT is present iff
    the query had one, advertising `payload` and copying DO (RFC 3225).
    """
    flags = QR | (header.flags & (0x7800 | RD | CD)) | (reply.rcode & 0xF)
    if reply.aa:
        flags |= AA
    opt = _opt_record(payload, reply.rcode, edns.do) if edns is not None else b""
    room = limit - len(opt)
    writer = _Writer()
    writer.buf += b"\x00" * 12
    if question is not None:
        writer.name(question.labels)
        writer.buf += question.wire[-4:]
    for rr in reply.answer:
        writer.record(rr)
    for rr in reply.authority:
        writer.record(rr)
    if len(writer.buf) > room:
        return _header(header.id, flags | TC, question, 0, 0, 0, opt)
    additional = 0
    for rr in reply.additional:
        mark, names = len(writer.buf), len(writer.names)
        writer.record(rr)
        if len(writer.buf) > room:
            del writer.buf[mark:]  # roll back the record and the names it registered
            while len(writer.names) > names:
                writer.names.popitem()
            break
        additional += 1
    writer.buf += opt
    qd = 1 if question is not None else 0
    struct.pack_into("!HHHHHH", writer.buf, 0, header.id, flags, qd, len(reply.answer),
                     len(reply.authority), additional + (1 if opt else 0))
    return bytes(writer.buf)


def _header(
    ident: int, flags: int, question: Question | None, an: int, ns: int, ar: int, opt: bytes
) -> bytes:
    qd = 1 if question is not None else 0
    body = question.wire if question is not None else b""
    return _HEADER.pack(ident, flags, qd, an, ns, ar + (1 if opt else 0)) + body + opt


def error_reply(
    header: Header, rcode: int, question: Question | None = None, edns: Edns | None = None,
    payload: int = 1232, extra: bytes = b"",
) -> bytes:
    """A bodiless error (FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL, NOTAUTH).

    `extra` is one more additional record after the OPT (the TSIG of NOTAUTH).
    """
    flags = QR | (header.flags & (0x7800 | RD | CD)) | (rcode & 0xF)
    opt = _opt_record(payload, rcode, edns.do) if edns is not None else b""
    reply = _header(header.id, flags, question, 0, 0, 1 if extra else 0, opt)
    return reply + extra


def udp_limit(edns: Edns | None, payload: int) -> int:
    """RFC 1035 512 bytes without EDNS; else min(client's size, ours) (RFC 6891 §6.2.5)."""
    if edns is None:
        return PLAIN_UDP_LIMIT
    return max(PLAIN_UDP_LIMIT, min(edns.udp_size, payload))


def labels_of(text: str) -> Name:
    """'a.b.c' or 'a.b.c.' -> (b'a', b'b', b'c'); '' or '.' -> ()."""
    text = text.rstrip(".")
    return tuple(label.encode() for label in text.split(".")) if text else ()


def lower(labels: Iterable[bytes]) -> tuple[str, ...]:
    """Lowercase text labels for matching; latin-1 keeps every byte distinct."""
    return tuple(label.lower().decode("latin-1") for label in labels)
