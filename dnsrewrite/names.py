"""The query-name grammar of the Kubernetes zone (CoreDNS `parse.go`).

``[<endpoint>|_<port>._<proto>].<service>.<namespace>.<svc|pod>.<zone>``, plus
the apex, ``dns-version.<zone>``, ``ns.dns.<zone>`` and reverse names. Labels
arrive lowercased; what a name *means* is decided here, whether it *exists*
is decided against the data in `records.py`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum, auto


class Kind(Enum):
    APEX = auto()  # the zone itself
    INVALID = auto()  # grammar says no such name: NXDOMAIN
    EMPTY = auto()  # svc.<zone>, pod.<zone>: empty non-terminals, NODATA
    DNS_VERSION = auto()  # dns-version.<zone> TXT (SPEC 2.2)
    NS_HOST = auto()  # ns.dns.<zone>: the apex NS target
    NAMESPACE = auto()  # <ns>.svc.<zone> or <ns>.pod.<zone>
    SERVICE = auto()  # <svc>.<ns>.svc.<zone>
    ENDPOINT = auto()  # <label>.<svc>.<ns>.svc.<zone>
    PORT = auto()  # _<port>._<proto>.<svc>.<ns>.svc.<zone>
    POD = auto()  # <a-b-c-d>.<ns>.pod.<zone>
    REVERSE = auto()  # a complete in-addr.arpa / ip6.arpa name
    REVERSE_PARTIAL = auto()  # a reverse name shorter than an address


@dataclass(frozen=True, slots=True)
class ParsedName:
    kind: Kind
    namespace: str = ""
    service: str = ""
    endpoint: str = ""  # endpoint label, or the pod label
    port: str = ""
    protocol: str = ""
    # REVERSE: the address. REVERSE_PARTIAL: the prefix the name stands for, as
    # `cluster.has_addresses_below` reads it: "10.96." for 96.10.in-addr.arpa (IPv4
    # octets each end with a dot), "fd00" for 0.0.d.f.ip6.arpa (IPv6 nibbles).
    ip: str = ""


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def parse_forward(relative: tuple[str, ...]) -> ParsedName:
    """Parse the labels in front of the cluster zone (lowercase, leftmost first)."""
    if not relative:
        return ParsedName(Kind.APEX)
    if relative == ("dns-version",):
        return ParsedName(Kind.DNS_VERSION)
    if relative == ("ns", "dns"):
        return ParsedName(Kind.NS_HOST)
    if relative == ("dns",):
        # The empty non-terminal above ns.dns: NODATA (RFC 8020; CoreDNS: NXDOMAIN).
        return ParsedName(Kind.EMPTY)
    *segments, kind = relative
    if kind not in ("svc", "pod"):
        return ParsedName(Kind.INVALID)
    if not segments:
        return ParsedName(Kind.EMPTY)
    namespace = segments[-1]
    if len(segments) == 1:
        return ParsedName(Kind.NAMESPACE, namespace=namespace)
    if kind == "pod":
        if len(segments) == 2:
            return ParsedName(Kind.POD, namespace=namespace, endpoint=segments[0])
        return ParsedName(Kind.INVALID, namespace=namespace)
    service = segments[-2]
    if len(segments) == 2:
        return ParsedName(Kind.SERVICE, namespace=namespace, service=service)
    if len(segments) == 3:
        return ParsedName(Kind.ENDPOINT, namespace=namespace, service=service, endpoint=segments[0])
    if len(segments) == 4:
        return ParsedName(
            Kind.PORT,
            namespace=namespace,
            service=service,
            port=_strip_underscore(segments[0]),
            protocol=_strip_underscore(segments[1]),
        )
    # More than two labels in front of the service: CoreDNS answers NXDOMAIN.
    return ParsedName(Kind.INVALID, namespace=namespace)


_HEX = frozenset("0123456789abcdef")


def parse_reverse(labels: tuple[str, ...]) -> ParsedName:
    """Parse a full lowercase name ending in in-addr.arpa or ip6.arpa."""
    if labels[-2:] == ("in-addr", "arpa"):
        octets = labels[:-2]
        if len(octets) < 4 and all(_is_octet(o) for o in octets):
            return ParsedName(Kind.REVERSE_PARTIAL, ip="".join(o + "." for o in reversed(octets)))
        if len(octets) == 4 and all(_is_octet(o) for o in octets):
            return ParsedName(Kind.REVERSE, ip=".".join(reversed(octets)))
        return ParsedName(Kind.INVALID)
    nibbles = labels[:-2]
    if len(nibbles) < 32:
        if all(len(n) == 1 and n in _HEX for n in nibbles):
            return ParsedName(Kind.REVERSE_PARTIAL, ip="".join(reversed(nibbles)))
        return ParsedName(Kind.INVALID)
    if len(nibbles) == 32 and all(len(n) == 1 and n in _HEX for n in nibbles):
        text = "".join(reversed(nibbles))
        grouped = ":".join(text[i : i + 4] for i in range(0, 32, 4))
        return ParsedName(Kind.REVERSE, ip=str(ipaddress.IPv6Address(grouped)))
    return ParsedName(Kind.INVALID)


def _is_octet(label: str) -> bool:
    # isascii: str.isdigit() is also true for characters like '²' that int() refuses.
    if not (label.isascii() and label.isdigit() and len(label) <= 3):
        return False
    return int(label) <= 255 and str(int(label)) == label


def pod_ip(label: str) -> str | None:
    """The IP a `pods insecure` name encodes (CoreDNS kubernetes.go findPods).

    Exactly three dashes and no "--" reads as IPv4; otherwise every dash is a
    colon and the label is read as IPv6. Not an IP: None (NXDOMAIN).
    """
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    if not text.isascii() or "%" in text:
        return None  # no IPv6 zone index, no non-ASCII digits
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def reverse_name(ip: str) -> tuple[str, ...]:
    """The reverse-lookup labels of an IP (for export and tests)."""
    return tuple(ipaddress.ip_address(ip).reverse_pointer.split("."))
