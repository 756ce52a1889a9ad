"""Explain: why a name resolves as it does, as a JSON-ready dict.

Used by `dnsrewrite explain` (offline, against a cluster file) and by the
admin server's /explain. It answers the question through the real gate and
records code, then adds the decision of the Service behind the name, its
rule and reason, the gateway's health, the TTL and the data's generation and age.
"""

from __future__ import annotations

from typing import Any

import dnslib

from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import ClusterView
from dnsrewrite.names import Kind, parse_forward
from dnsrewrite.wire import lower


def _records(section: list[dnslib.RR]) -> list[str]:
    return [" ".join(rr.toZone().split()) for rr in section]


def explain(answerer: Answerer, view: ClusterView, name: str, qtype: str, now: float) -> dict[str, Any]:
    qtype = qtype.upper()
    query = dnslib.DNSRecord.question(name, qtype)
    reply_bytes = answerer.answer(bytes(query.pack()), tcp=True)
    result: dict[str, Any] = {"name": name, "type": qtype}
    if reply_bytes is not None:
        reply = dnslib.DNSRecord.parse(reply_bytes)
        result.update(
            rcode=dnslib.RCODE.get(reply.header.rcode),
            answer=_records(reply.rr),
            authority=_records(reply.auth),
            additional=_records(reply.ar),
        )
    result["data"] = {
        "generation": view.generation,
        "age_s": round(now - view.updated_at, 3) if view.updated_at else None,
        "synced": view.synced,
    }
    labels = lower(tuple(dnslib.DNSLabel(name).label))
    zone = answerer.zones.match(labels)
    if zone is None:
        result["zone"] = None
        result["decision"] = {"state": "refused", "reason": "outside the served zones"}
        return result
    size, reverse = zone
    result["zone"] = ".".join(labels[len(labels) - size :])
    if reverse:
        return result
    parsed = parse_forward(labels[: len(labels) - size])
    if parsed.kind not in (Kind.SERVICE, Kind.PORT, Kind.ENDPOINT):
        result["kind"] = parsed.kind.name.lower()
        return result
    entry = view.services.get((parsed.namespace, parsed.service))
    if entry is None:
        result["service"] = None
        return result
    decision = entry.decision
    result["service"] = f"{parsed.namespace}/{parsed.service}"
    result["service_kind"] = entry.service.kind.value
    result["decision"] = {
        "state": decision.state.value,
        "rule": decision.rule.value,
        "reason": decision.reason,
        "would": decision.would.value if decision.would else None,
        "ttl_s": answerer.resolver.s.rewrite_ttl if decision.rewritten else answerer.resolver.s.ttl,
    }
    if decision.gateway is not None and decision.gateway in view.gateways:
        g = view.gateways[decision.gateway]
        result["gateway"] = {
            "name": g.name,
            "service": "/".join(g.ref),
            "exists": g.exists,
            "vips": list(g.vips),
            "ready_endpoints": g.ready_endpoints,
            "healthy": g.healthy,
            "in_service": g.in_service,
            "healthy_for_s": round(now - g.healthy_since, 3) if g.healthy_since else None,
        }
    return result
