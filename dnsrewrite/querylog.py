"""The optional query log, in CoreDNS `log` plugin format, sampled.

`{remote}:{port} - {id} "{type} {class} {name} {proto} {size} {do} {bufsize}"
{rcode} {rflags} {rsize}` — one line per sampled query, on the
`dnsrewrite.query` logger (CoreDNS's trailing duration is left out: the time
is in coredns_dns_request_duration_seconds). Off by default; off costs nothing.
"""

from __future__ import annotations

import logging
import random
import struct

from dnsrewrite.querystats import RCODE_NAMES, TYPE_NAMES
from dnsrewrite.wire import AA, QR, RD, TC, Drop, FormErr, read_edns, read_header, read_question

log = logging.getLogger("dnsrewrite.query")


def _flags(reply: bytes) -> str:
    (bits,) = struct.unpack_from("!H", reply, 2)
    names = [("qr", QR), ("aa", AA), ("tc", TC), ("rd", RD)]
    return ",".join(name for name, bit in names if bits & bit)


class QueryLog:
    def __init__(self, sample: float) -> None:
        self.sample = sample

    def __call__(self, peer: tuple, query: bytes, reply: bytes | None, tcp: bool) -> None:
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        try:
            header = read_header(query)
            question = read_question(query)
            edns = read_edns(query, header, question.end)
        except (Drop, FormErr):
            return  # nothing readable to log
        name = b".".join(question.labels).decode("latin-1") + "."
        qtype = TYPE_NAMES.get(question.qtype, f"TYPE{question.qtype}")
        qclass = "IN" if question.qclass == 1 else f"CLASS{question.qclass}"
        rcode = RCODE_NAMES.get(reply[3] & 0xF, "?") if reply and len(reply) >= 12 else "-"
        log.info(
            '%s:%s - %d "%s %s %s %s %d %s %d" %s %s %d',
            peer[0], peer[1], header.id, qtype, qclass, name, "tcp" if tcp else "udp",
            len(query), "true" if edns and edns.do else "false",
            edns.udp_size if edns else 512, rcode, _flags(reply) if reply else "-",
            len(reply) if reply else 0,
        )
