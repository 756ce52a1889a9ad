"""`dnsrewrite export-zone`: what the server answers, written as an RFC 1035 zone file.

The zone file is produced by *asking our own Answerer*: every name the data
can hold is queried for every record type the server synthesizes, the
replies go through the same gate, records code and encoder as a query from
the network, and they are parsed back (dnslib). Only answer records owned by
the queried name and of the queried type (or a CNAME) are kept, so the file is
by construction what the server answers; nothing here re-derives a record.
A second server such as NSD can then serve the same data (benchmarks/), and
answers can be diffed name by name.

Names asked, per zone:

* forward zone: the apex (SOA, NS), ``dns-version``, ``ns.dns``, and for every
  Service the bare name, one ``_<port>._<proto>`` name per port of the Service
  and of its EndpointSlices, and one name per endpoint label; each for A, AAAA,
  SRV and TXT (a CNAME is found by the A query). A NODATA reply is recognised
  from its header and an NXDOMAIN ends the name; only answer sections are read.
* reverse zone (``--zone in-addr.arpa`` / ``--zone ip6.arpa``, one file per
  zone): the apex (SOA, NS) and every address the data holds, for PTR.

Where a static zone cannot equal our answers (NSD 4.6 serving the export):

* Empty non-terminals are implicit in a zone file: ``svc.<zone>`` and
  ``<ns>.svc.<zone>`` answer NODATA from both while a name exists under them,
  but a namespace with no Service (``<ns>.svc``), ``pod.<zone>`` and
  ``<ns>.pod.<zone>`` exist for us (NODATA) and not in the file (NXDOMAIN).
* Pod names ``a-b-c-d.<ns>.pod.<zone>`` are synthesized from the query
  (``pods insecure``) and cannot be listed: NXDOMAIN from a static server.
* Empty non-terminals between a record and the zone (``_<proto>.<svc>.<ns>.svc``,
  ``dns.<zone>``, partial reverse names such as ``10.in-addr.arpa``) are NODATA
  from both (RFC 8020; CoreDNS answers NXDOMAIN). ``ns.dns.<zone>`` without glue
  is NODATA for us and absent (NXDOMAIN) from the file.
* ExternalName: we answer SRV with NODATA and chase an in-zone target for
  A/AAAA only, giving the target's answer records without its negative SOA;
  NSD answers the CNAME for every type, chases for every type, and sets
  NXDOMAIN (RFC 6604) when the in-zone target does not exist.
* Truncation: we set TC when the whole reply does not fit; NSD first drops
  additional records (RFC 2181 §9) and sets TC only when the answer does not
  fit, so a large SRV answer can differ over UDP (not over TCP).
* Additional data: NSD adds A/AAAA of in-zone targets for SRV and NS (and
  for a CNAME it follows); we do for SRV and NS glue only.
* The SOA serial is the data's (the time of its last change), so a server
  that loaded the same file at another moment answers another serial.
* ANY: we answer NODATA; NSD answers one RRset of the name (RFC 8482).
* Letter case: both echo the query's spelling in owner names; in targets we
  spell the zone part as the query did, NSD as the file does except where it
  compresses against the question. Names compare case-insensitively.
* NSD with its default ``minimal-responses: no`` also puts the apex NS in the
  authority section of positive answers; we, as CoreDNS, send none.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import dnslib

from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import ClusterView
from dnsrewrite.config import Config, is_reverse_zone
from dnsrewrite.model import Port
from dnsrewrite.names import reverse_name
from dnsrewrite.wire import AAAA, CNAME, NS, NXDOMAIN, PTR, SOA, SRV, TXT, A

# Every type the server synthesizes in each kind of zone. A CNAME is also the answer to
# an A query at its owner (RFC 1034 §3.6.2), so asking A finds it.
FORWARD_TYPES = (A, AAAA, SRV, TXT)
REVERSE_TYPES = (PTR,)
_QUERY_HEADER = struct.Struct("!HHHHHH").pack(0, 0, 1, 0, 0, 0)


class ExportError(Exception):
    pass


@dataclass
class ExportResult:
    zone: str
    serial: int
    names_asked: int = 0
    queries: int = 0
    records: list[str] = field(default_factory=list)


def _query(labels: tuple[str, ...], qtype: int) -> bytes:
    wire = b"".join(bytes((len(raw),)) + raw for raw in (x.encode() for x in labels))
    return _QUERY_HEADER + wire + b"\x00" + struct.pack("!HH", qtype, 1)


def _port_label(port: Port) -> tuple[str, str]:
    return ("_" + port.name, "_" + port.protocol.lower())


def forward_names(view: ClusterView) -> Iterator[tuple[str, ...]]:
    """Every relative name the data can answer with records (no pods: synthesized)."""
    yield ("dns-version",)
    yield ("ns", "dns")
    for (namespace, name), entry in sorted(view.services.items()):
        base = (name, namespace, "svc")
        yield base
        ports = dict.fromkeys(
            [*entry.service.ports, *(pt for t in entry.targets for pt in t.ports)]
        )
        for port_labels in dict.fromkeys(_port_label(pt) for pt in ports):
            yield port_labels + base
        for endpoint in dict.fromkeys(t.label for t in entry.targets):
            yield (endpoint, *base)


def reverse_names(view: ClusterView, zone: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    size = len(zone)

    def order(ip: str) -> tuple[int, int]:
        address = ipaddress.ip_address(ip)
        return address.version, int(address)

    for ip in sorted(view.reverse, key=order):
        labels = reverse_name(ip)
        if labels[len(labels) - size :] == zone and len(labels) > size:
            yield labels[: len(labels) - size]


def export(answerer: Answerer, view: ClusterView, zone: str) -> ExportResult:
    """Ask `answerer` about every name of `zone` in `view`; the zone's records."""
    zone = zone.strip().rstrip(".").lower()
    zone_labels = tuple(zone.split("."))
    if answerer.zones.match(zone_labels) != (len(zone_labels), is_reverse_zone(zone)):
        raise ExportError(f"{zone} is not one of the zones served (see --config zones)")
    result = ExportResult(zone, view.serial)
    seen: set[str] = set()
    names: Iterable[tuple[str, ...]]
    types: tuple[int, ...]
    if is_reverse_zone(zone):
        names, types = reverse_names(view, zone_labels), REVERSE_TYPES
    else:
        names, types = forward_names(view), FORWARD_TYPES

    def ask(relative: tuple[str, ...], qtypes: Iterable[int]) -> None:
        owner = relative + zone_labels
        owner_label = dnslib.DNSLabel(".".join(owner))
        result.names_asked += 1
        for qtype in qtypes:
            result.queries += 1
            reply = answerer.answer(_query(owner, qtype), tcp=True)
            if reply is None:
                raise ExportError(f"no reply for {'.'.join(owner)} type {qtype}")
            rcode = reply[3] & 0xF
            if rcode == NXDOMAIN:
                return  # the name does not exist: no other type can exist either
            if rcode != 0:
                raise ExportError(
                    f"{'.'.join(owner)} {dnslib.QTYPE.get(qtype)}: "
                    f"{dnslib.RCODE.get(rcode)} (data not synced, or an internal error)"
                )
            for rr in _answer_section(reply):  # NODATA: none
                if rr.rname != owner_label or rr.rtype not in (qtype, CNAME):
                    continue  # the records of a chased in-zone CNAME target
                line = _zone_line(rr)
                if line not in seen:
                    seen.add(line)
                    result.records.append(line)

    ask((), (SOA,))
    if not result.records:
        raise ExportError(f"no SOA at {zone}")
    ask((), (NS,))
    for relative in names:
        ask(relative, types)
    return result


def _answer_section(reply: bytes) -> list[dnslib.RR]:
    """The answer records of a reply (dnslib); the other sections are not read."""
    if reply[6:8] == b"\x00\x00":
        return []
    buffer = dnslib.DNSBuffer(reply)
    header = dnslib.DNSHeader.parse(buffer)
    dnslib.DNSQuestion.parse(buffer)
    return [dnslib.RR.parse(buffer) for _ in range(header.a)]


def _zone_line(rr: dnslib.RR) -> str:
    rtype = dnslib.QTYPE.get(rr.rtype)
    return f"{str(rr.rname).lower()}\t{rr.ttl}\tIN\t{rtype}\t{rr.rdata.toZone()}"


def write(result: ExportResult, out: TextIO, now: float | None = None) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time()))
    out.write(
        f"; zone {result.zone}: what `dnsrewrite serve` answers, asked of its Answerer\n"
        f"; by `dnsrewrite export-zone` at {stamp}; SOA serial {result.serial} (the data's)\n"
        f"; {result.names_asked} names, {result.queries} queries, "
        f"{len(result.records)} records\n"
        "; Not here (see dnsrewrite/export.py): pod names (synthesized per query) and empty\n"
        "; names that exist for the server (namespaces without Services, pod.<zone>).\n"
        f"$ORIGIN {result.zone}.\n"
    )
    for line in result.records:
        out.write(line + "\n")


def load_view(cfg: Config, timeout_s: float = 120.0) -> tuple[Answerer, ClusterView]:
    """The data `serve` would answer from: the cluster file, or one sync of the API."""
    from dnsrewrite.app import App

    app = App(cfg)
    if cfg.cluster_file:
        if not app.load_cluster_file():
            raise ExportError("the cluster file could not be loaded (see the log)")
        return app.answerer, app.view
    app.start_kube_source()
    deadline = time.monotonic() + timeout_s
    try:
        while not app.view.synced:
            if time.monotonic() > deadline:
                raise ExportError(f"the Kubernetes API did not sync within {timeout_s:g}s")
            threading.Event().wait(0.1)
        return app.answerer, app.view
    finally:
        if app.kube_source is not None:
            app.kube_source.stop()


def run(cfg: Config, zones: list[str], output_dir: str | None) -> int:
    """The export-zone command: one zone to stdout, or each to OUTPUT_DIR/<zone>.zone."""
    import os

    if len(zones) > 1 and not output_dir:
        print("dnsrewrite: several --zone need --output-dir", file=sys.stderr)
        return 2
    try:
        answerer, view = load_view(cfg)
        for zone in zones:
            result = export(answerer, view, zone)
            if output_dir:
                os.makedirs(output_dir, exist_ok=True)
                path = os.path.join(output_dir, f"{result.zone}.zone")
                with open(path, "w", encoding="utf-8") as handle:
                    write(result, handle)
                print(f"{path}: {len(result.records)} records", file=sys.stderr)
            else:
                write(result, sys.stdout)
    except ExportError as err:
        print(f"dnsrewrite: export-zone: {err}", file=sys.stderr)
        return 2
    return 0
