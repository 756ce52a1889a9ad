"""Record synthesis on the demo cluster: case tables in zone-file text.

Each row: query, expected rcode, answer, authority, additional (order-free,
SOA serial ignored), as CoreDNS's own tests are written.
"""

from __future__ import annotations

import pytest

from tests.dnsclient import ask, expected_lines, rcode_text, section_lines

SOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"
REV_SOA = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 0 7200 1800 86400 5"
REV6_SOA = "ip6.arpa. 5 IN SOA ns.dns.ip6.arpa. hostmaster.ip6.arpa. 0 7200 1800 86400 5"

CASES = [
    # Enrolled namespace: ClusterIP services answer the gateway's VIPs, same owner name.
    ("reviews.bookinfo.svc.cluster.local.", "A", "NOERROR",
     ["reviews.bookinfo.svc.cluster.local. 5 IN A 10.96.0.100"], [], []),
    ("reviews.bookinfo.svc.cluster.local.", "AAAA", "NOERROR",
     ["reviews.bookinfo.svc.cluster.local. 5 IN AAAA fd00:10:96::100"], [], []),
    ("_http._tcp.reviews.bookinfo.svc.cluster.local.", "SRV", "NOERROR",
     ["_http._tcp.reviews.bookinfo.svc.cluster.local. 5 IN SRV 0 50 9080 "
      "reviews.bookinfo.svc.cluster.local."], [],
     ["reviews.bookinfo.svc.cluster.local. 5 IN A 10.96.0.100",
      "reviews.bookinfo.svc.cluster.local. 5 IN AAAA fd00:10:96::100"]),
    # ...but a headless service there keeps its endpoints (never rewritten).
    ("reviews-pods.bookinfo.svc.cluster.local.", "A", "NOERROR",
     ["reviews-pods.bookinfo.svc.cluster.local. 5 IN A 10.244.1.21",
      "reviews-pods.bookinfo.svc.cluster.local. 5 IN A 10.244.2.22"], [], []),
    # Plain namespace: the real ClusterIP.
    ("billing.legacy.svc.cluster.local.", "A", "NOERROR",
     ["billing.legacy.svc.cluster.local. 5 IN A 10.96.20.10"], [], []),
    ("billing.legacy.svc.cluster.local.", "AAAA", "NOERROR", [], [SOA], []),
    ("billing.legacy.svc.cluster.local.", "TXT", "NOERROR", [], [SOA], []),
    ("billing.legacy.svc.cluster.local.", "SRV", "NOERROR",
     ["billing.legacy.svc.cluster.local. 5 IN SRV 0 50 8080 billing.legacy.svc.cluster.local.",
      "billing.legacy.svc.cluster.local. 5 IN SRV 0 50 9090 billing.legacy.svc.cluster.local."],
     [], ["billing.legacy.svc.cluster.local. 5 IN A 10.96.20.10"]),
    ("_metrics._tcp.billing.legacy.svc.cluster.local.", "SRV", "NOERROR",
     ["_metrics._tcp.billing.legacy.svc.cluster.local. 5 IN SRV 0 100 9090 "
      "billing.legacy.svc.cluster.local."],
     [], ["billing.legacy.svc.cluster.local. 5 IN A 10.96.20.10"]),
    ("_metrics._udp.billing.legacy.svc.cluster.local.", "SRV", "NXDOMAIN", [], [SOA], []),
    ("_nope._tcp.billing.legacy.svc.cluster.local.", "SRV", "NXDOMAIN", [], [SOA], []),
    # The _port._proto name exists, so an A query on it answers the service's address.
    ("_http._tcp.billing.legacy.svc.cluster.local.", "A", "NOERROR",
     ["_http._tcp.billing.legacy.svc.cluster.local. 5 IN A 10.96.20.10"], [], []),
    # Dual-stack (a LoadBalancer answers its ClusterIPs): one record per family.
    ("web.legacy.svc.cluster.local.", "A", "NOERROR",
     ["web.legacy.svc.cluster.local. 5 IN A 10.96.20.20"], [], []),
    ("web.legacy.svc.cluster.local.", "AAAA", "NOERROR",
     ["web.legacy.svc.cluster.local. 5 IN AAAA fd00:10:96::20"], [], []),
    ("_quic._udp.web.legacy.svc.cluster.local.", "SRV", "NOERROR",
     ["_quic._udp.web.legacy.svc.cluster.local. 5 IN SRV 0 50 443 web.legacy.svc.cluster.local."],
     [], ["web.legacy.svc.cluster.local. 5 IN A 10.96.20.20",
          "web.legacy.svc.cluster.local. 5 IN AAAA fd00:10:96::20"]),
    # Endpoint names resolve under a ClusterIP service too (dashed IPv6, CoreDNS style).
    ("fd00-10-244-3--40.web.legacy.svc.cluster.local.", "AAAA", "NOERROR",
     ["fd00-10-244-3--40.web.legacy.svc.cluster.local. 5 IN AAAA fd00:10:244:3::40"], [], []),
    # Headless with hostnames: ready endpoints only (db-2 is not ready).
    ("db.legacy.svc.cluster.local.", "A", "NOERROR",
     ["db.legacy.svc.cluster.local. 5 IN A 10.244.3.50",
      "db.legacy.svc.cluster.local. 5 IN A 10.244.4.51"], [], []),
    ("db.legacy.svc.cluster.local.", "AAAA", "NOERROR", [], [SOA], []),
    ("db-1.db.legacy.svc.cluster.local.", "A", "NOERROR",
     ["db-1.db.legacy.svc.cluster.local. 5 IN A 10.244.4.51"], [], []),
    ("db-2.db.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("_postgres._tcp.db.legacy.svc.cluster.local.", "SRV", "NOERROR",
     ["_postgres._tcp.db.legacy.svc.cluster.local. 5 IN SRV 0 50 5432 "
      "db-0.db.legacy.svc.cluster.local.",
      "_postgres._tcp.db.legacy.svc.cluster.local. 5 IN SRV 0 50 5432 "
      "db-1.db.legacy.svc.cluster.local."], [],
     ["db-0.db.legacy.svc.cluster.local. 5 IN A 10.244.3.50",
      "db-1.db.legacy.svc.cluster.local. 5 IN A 10.244.4.51"]),
    # Headless without hostnames: dashed-IP names; unnamed UDP port in the bare SRV form.
    ("statsd.legacy.svc.cluster.local.", "SRV", "NOERROR",
     ["statsd.legacy.svc.cluster.local. 5 IN SRV 0 50 8125 10-244-3-60.statsd.legacy.svc.cluster.local.",
      "statsd.legacy.svc.cluster.local. 5 IN SRV 0 50 8125 10-244-4-61.statsd.legacy.svc.cluster.local."],
     [], ["10-244-3-60.statsd.legacy.svc.cluster.local. 5 IN A 10.244.3.60",
          "10-244-4-61.statsd.legacy.svc.cluster.local. 5 IN A 10.244.4.61"]),
    ("10-244-4-61.statsd.legacy.svc.cluster.local.", "A", "NOERROR",
     ["10-244-4-61.statsd.legacy.svc.cluster.local. 5 IN A 10.244.4.61"], [], []),
    ("10-244-4-62.statsd.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    # publishNotReadyAddresses: not-ready peers are answered.
    ("kafka-peers.legacy.svc.cluster.local.", "A", "NOERROR",
     ["kafka-peers.legacy.svc.cluster.local. 5 IN A 10.244.3.70",
      "kafka-peers.legacy.svc.cluster.local. 5 IN A 10.244.4.71"], [], []),
    # ExternalName: a CNAME; an in-zone target is chased, an outside one is not.
    ("payments-api.legacy.svc.cluster.local.", "A", "NOERROR",
     ["payments-api.legacy.svc.cluster.local. 5 IN CNAME api.payments.example.com."], [], []),
    ("payments-api.legacy.svc.cluster.local.", "CNAME", "NOERROR",
     ["payments-api.legacy.svc.cluster.local. 5 IN CNAME api.payments.example.com."], [], []),
    ("payments-api.legacy.svc.cluster.local.", "SRV", "NOERROR", [], [SOA], []),
    ("x.payments-api.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("billing-alias.legacy.svc.cluster.local.", "A", "NOERROR",
     ["billing-alias.legacy.svc.cluster.local. 5 IN CNAME billing.legacy.svc.cluster.local.",
      "billing.legacy.svc.cluster.local. 5 IN A 10.96.20.10"], [], []),
    # kube-dns with an empty slice ("endpoints": null) still answers its ClusterIP.
    ("kube-dns.kube-system.svc.cluster.local.", "A", "NOERROR",
     ["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"], [], []),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local.", "SRV", "NOERROR",
     ["_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 "
      "kube-dns.kube-system.svc.cluster.local."], [],
     ["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"]),
    # Names that do not exist, empty non-terminals, the apex.
    ("nope.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("legacy.svc.cluster.local.", "A", "NOERROR", [], [SOA], []),
    ("nons.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("svc.cluster.local.", "A", "NOERROR", [], [SOA], []),
    ("pod.cluster.local.", "A", "NOERROR", [], [SOA], []),
    ("foo.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("a.b.c.billing.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("*.legacy.svc.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("cluster.local.", "SOA", "NOERROR", [SOA], [], []),
    ("cluster.local.", "NS", "NOERROR", ["cluster.local. 5 IN NS ns.dns.cluster.local."], [], []),
    ("cluster.local.", "A", "NOERROR", [], [SOA], []),
    ("dns-version.cluster.local.", "TXT", "NOERROR",
     ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'], [], []),
    ("dns-version.cluster.local.", "A", "NOERROR", [], [SOA], []),
    # Pods (insecure): the IP comes from the name, the namespace must exist.
    ("10-244-1-21.bookinfo.pod.cluster.local.", "A", "NOERROR",
     ["10-244-1-21.bookinfo.pod.cluster.local. 5 IN A 10.244.1.21"], [], []),
    ("10-244-1-21.bookinfo.pod.cluster.local.", "AAAA", "NOERROR", [], [SOA], []),
    ("fd00-10-244-3--40.legacy.pod.cluster.local.", "AAAA", "NOERROR",
     ["fd00-10-244-3--40.legacy.pod.cluster.local. 5 IN AAAA fd00:10:244:3::40"], [], []),
    ("10-244-1-21.nons.pod.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    ("not-an-ip.legacy.pod.cluster.local.", "A", "NXDOMAIN", [], [SOA], []),
    # PTR: ClusterIPs give the service, endpoint IPs every endpoint name holding them.
    ("10.20.96.10.in-addr.arpa.", "PTR", "NOERROR",
     ["10.20.96.10.in-addr.arpa. 5 IN PTR billing.legacy.svc.cluster.local."], [], []),
    ("100.0.96.10.in-addr.arpa.", "PTR", "NOERROR",
     ["100.0.96.10.in-addr.arpa. 5 IN PTR internal-gateway.mesh-gateway.svc.cluster.local."],
     [], []),
    # A rewritten service's real ClusterIP still names the service.
    ("11.10.96.10.in-addr.arpa.", "PTR", "NOERROR",
     ["11.10.96.10.in-addr.arpa. 5 IN PTR reviews.bookinfo.svc.cluster.local."], [], []),
    # One pod IP behind two services: two PTRs.
    ("21.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
     ["21.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-21.reviews.bookinfo.svc.cluster.local.",
      "21.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-21.reviews-pods.bookinfo.svc.cluster.local."],
     [], []),
    ("50.3.244.10.in-addr.arpa.", "PTR", "NOERROR",
     ["50.3.244.10.in-addr.arpa. 5 IN PTR db-0.db.legacy.svc.cluster.local."], [], []),
    ("52.4.244.10.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REV_SOA], []),
    ("1.2.3.4.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REV_SOA], []),
    ("10.20.96.10.in-addr.arpa.", "A", "NOERROR", [], [REV_SOA], []),
    ("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "PTR", "NOERROR",
     ["0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 IN PTR "
      "web.legacy.svc.cluster.local."], [], []),
    ("0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa.", "PTR",
     "NOERROR",
     ["0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 IN PTR "
      "fd00-10-244-3--40.web.legacy.svc.cluster.local."], [], []),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR",
     "NXDOMAIN", [], [REV6_SOA], []),
    ("in-addr.arpa.", "SOA", "NOERROR", [REV_SOA], [], []),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answer", "authority", "additional"), CASES,
                         ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_demo_cluster_answers(demo_app, qname, qtype, rcode, answer, authority, additional):
    reply = ask(demo_app.answerer, qname, qtype)
    assert rcode_text(reply) == rcode
    assert section_lines(reply.answer) == expected_lines(answer)
    assert section_lines(reply.authority) == expected_lines(authority)
    assert section_lines(reply.additional) == expected_lines(additional)


def test_every_answer_is_authoritative_without_recursion(demo_app):
    for qname, qtype, *_ in CASES:
        reply = ask(demo_app.answerer, qname, qtype)
        assert reply.flags & 0x0400, qname  # AA
        assert not reply.flags & 0x0080, qname  # RA


def test_client_casing_is_echoed_in_owner_and_zone(demo_app):
    reply = ask(demo_app.answerer, "_HTTP._Tcp.Billing.LEGACY.svc.Cluster.Local.", "SRV")
    assert reply.question[0].name.to_text() == "_HTTP._Tcp.Billing.LEGACY.svc.Cluster.Local."
    srv = reply.answer[0]
    assert srv.name.to_text() == "_HTTP._Tcp.Billing.LEGACY.svc.Cluster.Local."
    # As CoreDNS: the target is the service name with the zone in the query's case.
    assert srv[0].target.to_text() == "billing.legacy.svc.Cluster.Local."
    nx = ask(demo_app.answerer, "NOPE.legacy.svc.CLUSTER.local.", "A")
    assert nx.authority[0].name.to_text() == "CLUSTER.local."


def test_ttl_is_configurable():
    from tests.conftest import demo_config, loaded_app

    app = loaded_app(demo_config(ttl_s=30, rewrite={"ttl_s": 2, "gateway":
                                                    "mesh-gateway/internal-gateway"}))
    assert ask(app.answerer, "billing.legacy.svc.cluster.local.").answer[0].ttl == 30
    assert ask(app.answerer, "reviews.bookinfo.svc.cluster.local.").answer[0].ttl == 2
    soa = ask(app.answerer, "nope.legacy.svc.cluster.local.").authority[0]
    assert soa.ttl == 30 and soa[0].minimum == 30


def test_without_a_gateway_nothing_is_rewritten():
    from tests.conftest import demo_config, loaded_app

    app = loaded_app(demo_config(rewrite={"gateway": None}))
    reply = ask(app.answerer, "reviews.bookinfo.svc.cluster.local.")
    assert [r.to_text() for r in reply.answer[0]] == ["10.96.10.11"]


def test_enroll_selector_is_configurable():
    from tests.conftest import demo_config, loaded_app

    app = loaded_app(demo_config(rewrite={"gateway": "mesh-gateway/internal-gateway",
                                          "require_gateway_ports": False,
                                          "enroll_selector": "kubernetes.io/metadata.name in "
                                                             "(legacy)"}))
    assert ask(app.answerer, "billing.legacy.svc.cluster.local.").answer[0][0].to_text() == \
        "10.96.0.100"
    assert ask(app.answerer, "reviews.bookinfo.svc.cluster.local.").answer[0][0].to_text() == \
        "10.96.10.11"
