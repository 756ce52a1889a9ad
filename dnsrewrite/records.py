"""Kubernetes DNS record synthesis, as CoreDNS's `kubernetes` plugin answers.

`resolve()` turns one in-zone question into a `Reply` from a `ClusterView`:
the Kubernetes DNS-based service discovery spec (schema 1.1.0) with CoreDNS's
default options (`pods insecure`, TTL 5). Sources are cited per rule; see
`../shared/COREDNS_NOTES.md`. Deliberate differences from CoreDNS are marked
"Differs from CoreDNS".

Names are built as label tuples. Owners are the question's own labels and the
zone part of every other name is the zone as the query spelled it, so the
client's letter case comes back as CoreDNS gives it (`handler_case_test.go`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from dnsrewrite.cluster import (
    ClusterView,
    ServiceEntry,
    Target,
    has_addresses_below,
    ptr_names,
)
from dnsrewrite.model import Port, ServiceKind
from dnsrewrite.names import Kind, ParsedName, parse_forward, parse_reverse, pod_ip
from dnsrewrite.wire import (
    AAAA,
    CNAME,
    NOERROR,
    NS,
    NXDOMAIN,
    PTR,
    SERVFAIL,
    SOA,
    SRV,
    TXT,
    A,
    Name,
    Record,
    Reply,
    labels_of,
    txt_data,
)

DNS_SCHEMA_VERSION = "1.1.0"  # SPEC 2.2
DNS_VERSION_TTL = 28800  # kubernetes.go: the one record not at the configured TTL
SOA_TIMES = (7200, 1800, 86400)  # refresh, retry, expire (plugin/backend_lookup.go SOA)
MAX_CNAME_CHAIN = 8
NO_PORT = Port("", -1, "")  # CoreDNS's sentinel for a slice without ports: counted, never emitted


@dataclass(frozen=True)
class Settings:
    """What record synthesis needs from the config, precomputed."""

    cluster_zone: tuple[str, ...]  # lowercase labels of the cluster domain
    ttl: int
    rewrite_ttl: int
    ns_name: tuple[str, ...] | None  # None: ns.dns.<zone>
    ns_addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Question:
    """An in-zone question: labels as sent, lowercase copy, matched zone."""

    labels: Name
    lower: tuple[str, ...]
    qtype: int
    zone_size: int  # how many trailing labels are the zone
    reverse: bool

    @property
    def zone_name(self) -> Name:
        return self.labels[len(self.labels) - self.zone_size :]

    @property
    def relative(self) -> tuple[str, ...]:
        return self.lower[: len(self.lower) - self.zone_size]


def _ip_record(owner: Name, ip: str, ttl: int) -> Record:
    if ":" in ip:
        return Record(owner, AAAA, ttl, socket.inet_pton(socket.AF_INET6, ip))
    return Record(owner, A, ttl, socket.inet_pton(socket.AF_INET, ip))


def _family_matches(ip: str, qtype: int) -> bool:
    return (qtype == AAAA) == (":" in ip)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class Resolver:
    def __init__(self, settings: Settings) -> None:
        self.s = settings

    # --- shared pieces -----------------------------------------------------
    def soa(self, view: ClusterView, zone: Name) -> Record:
        s = self.s
        ns_host = (b"ns", b"dns", *zone)
        data = (ns_host, (b"hostmaster", *zone), view.serial, *SOA_TIMES, s.ttl)
        # The SOA's own TTL is min(ttl, 300) (plugin/backend_lookup.go SOA).
        return Record(zone, SOA, min(s.ttl, 300), data)

    def nodata(self, view: ClusterView, q: Question) -> Reply:
        """NOERROR, empty answer, SOA in authority (RFC 2308 §2.2)."""
        return Reply(NOERROR, authority=(self.soa(view, q.zone_name),))

    def nxdomain(self, view: ClusterView, q: Question) -> Reply:
        """NXDOMAIN with the SOA (RFC 2308 §2.1)."""
        return Reply(NXDOMAIN, authority=(self.soa(view, q.zone_name),))

    def _in_cluster_zone(self, q: Question, relative: tuple[str, ...]) -> Name:
        """`relative` + the cluster domain, spelled as the query spelled it if
        the query is in the cluster domain (CoreDNS handler.go keeps its case)."""
        zone = q.zone_name if not q.reverse else tuple(x.encode() for x in self.s.cluster_zone)
        return tuple(x.encode() for x in relative) + zone

    # --- entry point -------------------------------------------------------
    def resolve(self, view: ClusterView, q: Question) -> Reply:
        if not view.synced:
            # Half-listed data answers nothing: SERVFAIL makes resolvers retry
            # elsewhere, where NXDOMAIN or a partial answer would be cached.
            return Reply(SERVFAIL, aa=False)
        if q.reverse:
            return self._reverse(view, q)
        return self._forward(view, q, parse_forward(q.relative), depth=0)

    def _forward(self, view: ClusterView, q: Question, p: ParsedName, depth: int) -> Reply:
        kind = p.kind
        if kind is Kind.APEX:
            return self._apex(view, q)
        if kind is Kind.INVALID:
            return self.nxdomain(view, q)
        if kind is Kind.EMPTY:
            return self.nodata(view, q)
        if kind is Kind.DNS_VERSION:
            # Differs from CoreDNS: it answers NXDOMAIN for other types on this
            # name (kubernetes.go); the name exists, so NODATA (RFC 8020).
            if q.qtype == TXT:
                rr = Record(q.labels, TXT, DNS_VERSION_TTL, txt_data(DNS_SCHEMA_VERSION))
                return Reply(NOERROR, answer=(rr,))
            return self.nodata(view, q)
        if kind is Kind.NS_HOST:
            # The addresses of every apex NS target, by family (kubernetes.go).
            ips = _unique(
                ip for _, glue in self._nameservers(view, q.zone_name, False) for ip in glue
            )
            records = [
                _ip_record(q.labels, ip, self.s.ttl)
                for ip in ips
                if q.qtype in (A, AAAA) and _family_matches(ip, q.qtype)
            ]
            return Reply(NOERROR, answer=records) if records else self.nodata(view, q)
        if p.namespace not in view.namespaces:
            # Every name under a missing namespace is NXDOMAIN, pods included.
            return self.nxdomain(view, q)
        if kind is Kind.NAMESPACE:
            return self.nodata(view, q)  # an empty non-terminal (parse.go, handler_test.go)
        if kind is Kind.POD:
            return self._pod(view, q, p)
        entry = view.services.get((p.namespace, p.service))
        if entry is None:
            return self.nxdomain(view, q)
        if entry.service.kind is ServiceKind.EXTERNAL_NAME:
            return self._external_name(view, q, p, entry, depth)
        if kind is Kind.ENDPOINT:
            targets = [t for t in entry.targets if t.label == p.endpoint]
            if targets:
                return self._targets(view, q, entry, targets, None)
            if _has_protocol(entry, p.endpoint):
                # `_<proto>.<svc>...` is the empty non-terminal above `_<port>._<proto>`:
                # NODATA (RFC 8020; CoreDNS answers NXDOMAIN).
                return self.nodata(view, q)
            return self.nxdomain(view, q)
        port_filter = (p.port, p.protocol) if kind is Kind.PORT else None
        if entry.service.kind is ServiceKind.HEADLESS:
            return self._headless(view, q, entry, port_filter)
        return self._cluster_ip(view, q, entry, port_filter)

    # --- apex and special names --------------------------------------------
    def _apex(self, view: ClusterView, q: Question) -> Reply:
        zone = q.zone_name
        if q.qtype == SOA:
            return Reply(NOERROR, answer=(self.soa(view, zone),))
        if q.qtype == NS:
            answer: list[Record] = []
            glue: list[Record] = []
            for target, ips in self._nameservers(view, zone, q.reverse):
                answer.append(Record(zone, NS, self.s.ttl, target))
                glue.extend(_ip_record(target, ip, self.s.ttl) for ip in ips)
            return Reply(NOERROR, answer=answer, additional=glue)
        # Differs from CoreDNS for TXT (NXDOMAIN there): the apex exists.
        return self.nodata(view, q)

    def _pod(self, view: ClusterView, q: Question, p: ParsedName) -> Reply:
        ip = pod_ip(p.endpoint)
        if ip is None:
            return self.nxdomain(view, q)
        if q.qtype in (A, AAAA) and _family_matches(ip, q.qtype):
            return Reply(NOERROR, answer=(_ip_record(q.labels, ip, self.s.ttl),))
        return self.nodata(view, q)

    def _nameservers(
        self, view: ClusterView, zone: Name, reverse: bool
    ) -> list[tuple[Name, list[str]]]:
        """The apex NS targets and their glue (CoreDNS ns.go nsAddrs).

        An own IP that is an endpoint of a Service makes that Service the
        target (a ClusterIP Service with its ClusterIPs as glue, a headless
        one by endpoint name); otherwise the target is ns.dns.<zone>.
        """
        if self.s.ns_name:
            target = tuple(x.encode() for x in self.s.ns_name)
            return [(target, list(self.s.ns_addresses))]
        targets: dict[Name, list[str]] = {}
        cluster = tuple(x.encode() for x in self.s.cluster_zone) if reverse else zone
        for ip in self.s.ns_addresses:
            found = False
            for rel in ptr_names(view, ip):
                entry = view.services.get((rel[-2], rel[-3]))
                if entry is None:
                    continue
                found = True
                if entry.service.kind is ServiceKind.CLUSTER_IP:
                    name = tuple(x.encode() for x in rel[-3:]) + cluster
                    glue = entry.service.cluster_ips
                else:
                    name, glue = tuple(x.encode() for x in rel) + cluster, (ip,)
                targets.setdefault(name, [])
                targets[name].extend(g for g in glue if g not in targets[name])
            if not found:
                targets.setdefault((b"ns", b"dns", *zone), []).append(ip)
        return list(targets.items()) or [((b"ns", b"dns", *zone), [])]

    # --- Service kinds -----------------------------------------------------
    def _cluster_ip(
        self, view: ClusterView, q: Question, entry: ServiceEntry, port_filter: tuple[str, str] | None
    ) -> Reply:
        service = entry.service
        ports = service.ports
        if port_filter is not None:
            ports = tuple(pt for pt in ports if _port_matches(pt, port_filter))
            if not ports:
                return self.nxdomain(view, q)  # kubernetes.go: no such port
        decision = entry.decision
        ips = decision.vips if decision.rewritten else service.cluster_ips
        ttl = self.s.rewrite_ttl if decision.rewritten else self.s.ttl
        if q.qtype in (A, AAAA):
            answer = [_ip_record(q.labels, ip, ttl) for ip in ips if _family_matches(ip, q.qtype)]
            if not answer:
                return self.nodata(view, q)
            return Reply(NOERROR, answer=answer, rewritten=decision.rewritten)
        if q.qtype == SRV:
            target = self._in_cluster_zone(q, (service.name, service.namespace, "svc"))
            rows = [(target, ip, pt) for ip in ips for pt in ports]
            return self._srv(view, q, rows, ttl) if ports else self.nodata(view, q)
        return self.nodata(view, q)

    def _headless(
        self, view: ClusterView, q: Question, entry: ServiceEntry, port_filter: tuple[str, str] | None
    ) -> Reply:
        targets = list(entry.targets)
        if port_filter is not None:
            targets = [t for t in targets if any(_port_matches(pt, port_filter) for pt in t.ports)]
        if not targets:
            # No ready endpoint (or no such port): the name does not exist (SPEC 2.4.1).
            return self.nxdomain(view, q)
        return self._targets(view, q, entry, targets, port_filter)

    def _targets(
        self,
        view: ClusterView,
        q: Question,
        entry: ServiceEntry,
        targets: list[Target],
        port_filter: tuple[str, str] | None,
    ) -> Reply:
        """Endpoint addresses: a headless Service, or one endpoint name."""
        ttl = self.s.ttl
        if q.qtype in (A, AAAA):
            ips = _unique(t.ip for t in targets if _family_matches(t.ip, q.qtype))
            answer = [_ip_record(q.labels, ip, ttl) for ip in ips]
            return Reply(NOERROR, answer=answer) if answer else self.nodata(view, q)
        if q.qtype == SRV:
            svc = entry.service
            rows = []
            for t in targets:
                name = self._in_cluster_zone(q, (t.label, svc.name, svc.namespace, "svc"))
                for pt in t.ports or (NO_PORT,):
                    if port_filter is None or _port_matches(pt, port_filter):
                        rows.append((name, t.ip, pt))
            if any(pt is not NO_PORT for _, _, pt in rows):
                return self._srv(view, q, rows, ttl)
        return self.nodata(view, q)

    def _srv(
        self, view: ClusterView, q: Question, rows: list[tuple[Name, str, Port]], ttl: int
    ) -> Reply:
        """SRV records and their address records (plugin/backend_lookup.go SRV).

        Priority 0; weight floor(100 / n) with n counting every (address, port)
        row before duplicates are removed, at least 1.
        """
        weight = max(1, 100 // len(rows))
        answer: dict[tuple[Name, int], Record] = {}
        extra: dict[tuple[Name, str], Record] = {}
        for target, ip, pt in rows:
            if pt is NO_PORT:
                continue
            answer.setdefault(
                (target, pt.port), Record(q.labels, SRV, self.s.ttl, (0, weight, pt.port, target))
            )
            extra.setdefault((target, ip), _ip_record(target, ip, ttl))
        return Reply(NOERROR, answer=list(answer.values()), additional=list(extra.values()))

    def _external_name(
        self, view: ClusterView, q: Question, p: ParsedName, entry: ServiceEntry, depth: int
    ) -> Reply:
        """ExternalName: a CNAME at the service name; nothing below it.

        An in-zone target is chased for A/AAAA, the CNAME first
        (handler_test.go); an outside target is left to the resolver.
        An IP literal as externalName is skipped (kubernetes.go), so NXDOMAIN.
        """
        target_text = entry.service.external_name or ""
        if p.kind is not Kind.SERVICE or _is_ip(target_text):
            return self.nxdomain(view, q)
        if q.qtype == SRV:
            return self.nodata(view, q)  # kubernetes.go: no SRV for ExternalName
        target = labels_of(target_text)
        cname = Record(q.labels, CNAME, self.s.ttl, target)
        chased = self._chase(view, q, target, depth) if q.qtype in (A, AAAA) else []
        return Reply(NOERROR, answer=[cname, *chased])

    def _chase(self, view: ClusterView, q: Question, target: Name, depth: int) -> list[Record]:
        lower = tuple(x.decode("latin-1") for x in target)
        zone = self.s.cluster_zone
        if depth >= MAX_CNAME_CHAIN or lower[len(lower) - len(zone) :] != zone:
            return []
        inner = Question(target, lower, q.qtype, len(zone), reverse=False)
        reply = self._forward(view, inner, parse_forward(inner.relative), depth + 1)
        return list(reply.answer) if reply.rcode == NOERROR else []

    # --- reverse -----------------------------------------------------------
    def _reverse(self, view: ClusterView, q: Question) -> Reply:
        if not q.relative:
            return self._apex(view, q)
        p = parse_reverse(q.lower)
        if p.kind is Kind.REVERSE_PARTIAL and has_addresses_below(view, p.ip):
            # An empty non-terminal above known addresses: NODATA (RFC 8020; CoreDNS
            # answers NXDOMAIN, which tells a resolver that nothing below exists).
            return self.nodata(view, q)
        names = ptr_names(view, p.ip) if p.kind is Kind.REVERSE else None
        if not names:
            # Unknown addresses, and partial names with none below: NXDOMAIN.
            return self.nxdomain(view, q)
        if q.qtype != PTR:
            return self.nodata(view, q)
        zone = tuple(x.encode() for x in self.s.cluster_zone)
        answer = [
            Record(q.labels, PTR, self.s.ttl, tuple(x.encode() for x in rel) + zone)
            for rel in names
        ]
        return Reply(NOERROR, answer=answer)


def _has_protocol(entry: ServiceEntry, label: str) -> bool:
    """Whether `_<proto>` names a protocol of one of the Service's named ports."""
    if not label.startswith("_"):
        return False
    protocol = label[1:]
    ports = entry.service.ports if entry.service.kind is ServiceKind.CLUSTER_IP else [
        p for t in entry.targets for p in t.ports]
    return any(p.name and p.port > 0 and p.protocol.lower() == protocol for p in ports)


def _port_matches(port: Port, wanted: tuple[str, str]) -> bool:
    """Port name and protocol, case-insensitive (kubernetes.go matchPortAndProtocol)."""
    name, protocol = wanted
    return port.port > 0 and port.name == name and port.protocol.lower() == protocol


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
