"""The protocol gate and rcode table: query bytes -> reply bytes.

Every protocol check happens here, in one ordered table, before any data is
looked up (NSD `query.c`). Each row cites the rule it follows. Nothing raised
below escapes: undecodable bytes are dropped or get FORMERR, and a failure
while answering gets SERVFAIL and counts a panic, never a dead server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter

from dnsrewrite.cluster import ANY_DEP, NO_DEP, REVERSE_DEP, ClusterView
from dnsrewrite.config import Config, is_reverse_zone
from dnsrewrite.querystats import QueryStats, StatsRegistry, zone_label
from dnsrewrite.records import Question, Resolver, Settings
from dnsrewrite.wire import (
    AXFR,
    BADVERS,
    CLASS_IN,
    CNAME,
    FORMERR,
    IXFR,
    NOERROR,
    NOTAUTH,
    NOTIMP,
    NXDOMAIN,
    OPCODE_QUERY,
    REFUSED,
    SERVFAIL,
    TCP_LIMIT,
    Drop,
    Edns,
    FormErr,
    Header,
    Reply,
    encode_reply,
    error_reply,
    find_edns,
    lower,
    read_edns,
    read_header,
    read_question,
    tsig_badkey,
    udp_limit,
)

log = logging.getLogger(__name__)


def settings_from(cfg: Config) -> Settings:
    name = cfg.nameserver.name
    ns_name = tuple(name.rstrip(".").lower().split(".")) if name else None
    return Settings(
        cluster_zone=tuple(cfg.cluster_domain.split(".")),
        ttl=cfg.ttl_s,
        rewrite_ttl=cfg.rewrite.ttl_s,
        ns_name=ns_name,
        ns_addresses=cfg.nameserver.addresses,
    )


class Zones:
    """Longest-suffix zone matching on label boundaries (CoreDNS server.go)."""

    def __init__(self, zones: tuple[str, ...]) -> None:
        self._zones = sorted(
            ((tuple(z.split(".")), is_reverse_zone(z)) for z in zones),
            key=lambda item: -len(item[0]),
        )

    def match(self, labels: tuple[str, ...]) -> tuple[int, bool] | None:
        """(zone size in labels, is reverse) of the closest enclosing zone, or None."""
        for zone, reverse in self._zones:
            if labels[len(labels) - len(zone) :] == zone and len(labels) >= len(zone):
                return len(zone), reverse
        return None


# (reply bytes after the ID, zone label, qtype, rcode, rewritten: what metrics need on a hit;
#  global version, dependency, its version: what validity needs)
CachedReply = tuple[bytes, str, int, int, bool, int, tuple[str, str], int]


class ReplyCache:
    """Reply bytes keyed on the query's bytes after its ID.

    The reply is a pure function of (query bytes but ID, transport, data,
    config), so a hit only patches the ID: the client's casing, EDNS options
    and flags are all part of the key. Each entry remembers which part of the
    data it read (its Service, its namespace, the reverse index, or anything:
    see `dependency`) and that part's version; a hit is served only while both
    that version and the view's global version are unchanged, so a change to
    one Service leaves the others' entries valid and no entry is ever stale.
    Bounded: when full it is emptied, which keeps the hot path a single length
    test.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[bytes, bool], CachedReply] = {}

    def get(self, packet: bytes, tcp: bool, view: ClusterView) -> CachedReply | None:
        entry = self._entries.get((packet[2:], tcp))
        if entry is None:
            return None
        if entry[5] != view.global_version or view.versions.get(entry[6], 0) != entry[7]:
            return None
        return entry

    def put(self, packet: bytes, tcp: bool, value: CachedReply) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries = {}
        self._entries[(packet[2:], tcp)] = value


def dependency(q: Question, reply: Reply) -> tuple[str, str]:
    """Which part of the data a reply read, for the reply cache."""
    if q.reverse:
        return REVERSE_DEP
    relative = q.relative
    if not relative or any(rr.rtype == CNAME for rr in reply.answer):
        return ANY_DEP  # the apex NS reads endpoints; a CNAME chase another namespace
    if len(relative) >= 3 and relative[-1] == "svc":
        return (relative[-2], relative[-3])  # <...>.<svc>.<ns>.svc reads that Service only
    if len(relative) >= 2 and relative[-1] in ("svc", "pod"):
        return (relative[-2], "")  # <ns>.svc and pod names read whether <ns> exists
    return NO_DEP  # the grammar alone decided (NXDOMAIN, NODATA, dns-version)


class Answerer:
    """Answers one query at a time against the view given by `get_view`."""

    def __init__(
        self,
        cfg: Config,
        get_view: Callable[[], ClusterView],
        registry: StatsRegistry | None = None,
    ) -> None:
        self.payload = cfg.edns_udp_payload
        self.zones = Zones(cfg.zones)
        self.resolver = Resolver(settings_from(cfg))
        self.get_view = get_view
        self.registry = registry if registry is not None else StatsRegistry()
        self.cache = ReplyCache(cfg.reply_cache_size) if cfg.reply_cache_size else None

    @property
    def stats(self) -> QueryStats:
        """This thread's counters."""
        return self.registry.current()

    @property
    def panics(self) -> int:
        return self.registry.merged().panics

    @property
    def rewritten_answers(self) -> int:
        return self.registry.merged().rewritten

    def answer(self, packet: bytes, tcp: bool = False, family: str = "1") -> bytes | None:
        """The reply to `packet`, or None to send nothing.

        `family` is the client's address family as CoreDNS labels it ("1" IPv4,
        "2" IPv6); it only feeds the request counters.
        """
        started = perf_counter()
        cache = self.cache
        view = self.get_view()  # one view for the whole query: never half an update
        if cache is not None:
            hit = cache.get(packet, tcp, view)
            if hit is not None:
                reply = packet[:2] + hit[0]  # a hit differs only by the ID
                stats = self.registry.current()
                stats.rewritten += hit[4]
                stats.record(hit[1], tcp, family, hit[2], hit[3], len(packet), len(reply),
                             perf_counter() - started)
                return reply
        try:
            header = read_header(packet)
        except Drop:
            return None  # RFC 1035: fewer than 12 bytes or QR=1 has nobody to answer
        zone, qtype, rcode, rewritten, dep = None, 0, SERVFAIL, False, NO_DEP
        try:
            reply, zone, qtype, rcode, rewritten, dep = self._answer(packet, header, tcp, view)
        except FormErr:
            reply, rcode = error_reply(header, FORMERR), FORMERR
        except Exception:
            self.stats.panics += 1
            log.exception("internal error while answering; replying SERVFAIL")
            reply = error_reply(header, SERVFAIL)
        label = zone_label(zone)
        # Only answers from our data are worth keeping: errors to garbage are cheap to
        # redo and, keyed on an attacker's bytes, would only fill memory.
        if cache is not None and zone is not None and rcode in (NOERROR, NXDOMAIN):
            cache.put(packet, tcp, (reply[2:], label, qtype, rcode, rewritten,
                                    view.global_version, dep, view.versions.get(dep) or 0))
        self.stats.record(label, tcp, family, qtype, rcode, len(packet), len(reply),
                          perf_counter() - started)
        return reply

    def _answer(
        self, packet: bytes, header: Header, tcp: bool, view: ClusterView
    ) -> tuple[bytes, str | None, int, int, bool, tuple[str, str]]:
        """(reply, zone, qtype, rcode, rewritten, cache dependency): the gate in order,
        then the lookup."""
        payload = self.payload
        if header.opcode != OPCODE_QUERY:
            # RFC 1035 §4.1.1, RFC 8906 §3.1.4; with an OPT if the query had one (RFC 6891 §7).
            notimp = error_reply(header, NOTIMP, None, _edns_if_any(packet, header), payload)
            return notimp, None, 0, NOTIMP, False, NO_DEP
        if header.qdcount != 1 or header.ancount or header.nscount:
            # RFC 1035 §4.1.2; RFC 8906 §3.1.3. QDCOUNT 0 + OPT is a cookie probe (RFC 7873 §5.4).
            formerr = error_reply(header, FORMERR, None, _edns_if_any(packet, header), payload)
            return formerr, None, 0, FORMERR, False, NO_DEP
        question = read_question(packet)
        edns = read_edns(packet, header, question.end)  # FormErr: RFC 6891 §6.1.1
        qtype = question.qtype
        if edns is not None and edns.version > 0:
            # RFC 6891 §6.1.3: we speak EDNS version 0 only; checked before the class
            # (NSD query.c order, DESIGN.md).
            badvers = error_reply(header, BADVERS, question, edns, payload)
            return badvers, None, qtype, BADVERS, False, NO_DEP
        if header.arcount > (edns is not None):
            tsig = tsig_badkey(packet, header, question.end)
            if tsig is not None:
                # RFC 8945 §5.2.1: signed with a key we do not hold (we hold none).
                notauth = error_reply(header, NOTAUTH, question, edns, payload, tsig)
                return notauth, None, qtype, NOTAUTH, False, NO_DEP
        if question.qclass != CLASS_IN:
            refused = error_reply(header, REFUSED, question, edns, payload)
            return refused, None, qtype, REFUSED, False, NO_DEP  # only IN is served
        labels = lower(question.labels)
        zone = self.zones.match(labels)
        if zone is None:
            # Out of our zones, the root NS health check of CoreDNS `forward`
            # included: REFUSED, RA=0, no referral (RFC 8906 §3.1.5; never recursion).
            refused = error_reply(header, REFUSED, question, edns, payload)
            return refused, None, qtype, REFUSED, False, NO_DEP
        zone_size, reverse = zone
        zone_name = ".".join(labels[len(labels) - zone_size :])
        if edns is not None and edns.do:
            self.stats.do_requests[zone_name + "."] += 1
        if qtype in (AXFR, IXFR):
            # No zone transfers.
            refused = error_reply(header, REFUSED, question, edns, payload)
            return refused, zone_name, qtype, REFUSED, False, NO_DEP
        q = Question(question.labels, labels, qtype, zone_size, reverse)
        try:
            reply = self.resolver.resolve(view, q)
            limit = TCP_LIMIT if tcp else udp_limit(edns, payload)
            wire = encode_reply(header, question, reply, edns, payload, limit)
        except Exception:
            # Past the gate the query is well formed: keep its question and OPT.
            self.stats.panics += 1
            log.exception("internal error while answering; replying SERVFAIL")
            failed = error_reply(header, SERVFAIL, question, edns, payload)
            return failed, zone_name, qtype, SERVFAIL, False, NO_DEP
        if reply.rewritten:
            self.stats.rewritten += 1  # counted here on a miss, from the cache on a hit
        return wire, zone_name, qtype, reply.rcode, reply.rewritten, dependency(q, reply)


def _edns_if_any(packet: bytes, header: Header) -> Edns | None:
    """The query's OPT when the gate rejects it before reading the question."""
    try:
        return find_edns(packet, header)
    except FormErr:
        return None
