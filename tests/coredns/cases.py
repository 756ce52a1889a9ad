# ruff: noqa: E501  -- zone-file record lines are kept whole so they can be grepped and compared
"""CoreDNS `plugin/kubernetes` test tables, ported as data.

Source: coredns/coredns @ 4b26cced32717eac6dd725e308d7415c8b9db147 (2026-08-20).
Every Case cites the file:line of the Qname in the CoreDNS test it comes from.
Expectations assume CoreDNS's default kubeadm-style options:

    kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure }   # ttl 5

Conventions (see PORTING.md for the full list):
* qname is what CoreDNS's test sends: test.Case.Msg() applies dns.Fqdn, so a
  Qname written without the trailing dot is sent with one. Letter case is kept.
* Records are zone-file text. Owner names keep the letter case CoreDNS
  answers with, which matters in CASE_CASES.
* TTL is 5 wherever CoreDNS really answers 5; the SOA is TTL 5, minttl 5
  (COREDNS_NOTES 8.1). SOA serials are arbitrary: the runner ignores them.
  CoreDNS's test checker compares only the SOA's name, TTL and mname
  (plugin/test/helpers.go:229-233).
* CoreDNS's checker sorts each section before comparing, so order does not
  matter, except that a CNAME must precede its target (helpers.go:293-306).
* Cases marked "adapted" change a CoreDNS expectation because the CoreDNS
  test used something we cannot have (a duplicate ClusterIP, an upstream
  resolver, narrower reverse zones, another zone name). Cases marked
  "derived" have no CoreDNS test: they state what CoreDNS's code does
  (file:line of the code). Cases marked "# deliberate difference" encode our
  RFC 8020-consistent answer where CoreDNS gives NXDOMAIN for an existing name.

Pure data: no imports of the dnsrewrite package.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    qname: str            # as CoreDNS's test sends it (keep its letter case)
    qtype: str            # "A", "AAAA", "SRV", "PTR", "TXT", "NS", "SOA", "CNAME", "ANY", ...
    rcode: str            # "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"
    answer: tuple[str, ...] = ()      # zone-file text lines
    authority: tuple[str, ...] = ()   # e.g. SOA lines
    additional: tuple[str, ...] = ()
    source: str = ""      # "plugin/kubernetes/handler_test.go:123"
    fixture: str = "fixture_cluster.yaml"


# Server configuration the expectations assume.
ZONES = ("cluster.local.", "in-addr.arpa.", "ip6.arpa.")
TTL = 5
# The server's "own" addresses per fixture. CoreDNS uses the IPs it is bound to
# (plugin/kubernetes/local.go:10-37; loopback excluded) to build the apex NS and
# the ns.dns.<zone> address records (ns.go:16-101). CoreDNS's apex test injects
# 127.0.0.1 (kubernetes_apex_test.go:66), which no Service endpoint in
# fixture_cluster.yaml holds, so the NS target is ns.dns.<zone>. Our server must
# therefore be configured (not auto-detected) with own IP 127.0.0.1 when serving
# fixture_cluster.yaml, and with 10.244.0.20 for fixture_apex.yaml (ns_test.go:108).
SERVER_OWN_IPS = {
    "fixture_cluster.yaml": ("127.0.0.1",),
    "fixture_reverse.yaml": ("127.0.0.1",),
    "fixture_apex.yaml": ("10.244.0.20",),
}

_SOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 5"
_SOA_V4 = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5"

_H = "plugin/kubernetes/handler_test.go:"

# ---------------------------------------------------------------------------
# handler_test.go: commonDnsTestCases (:26-301), dnsTestCases (:303-422) and
# nsTestCases (:599-616), run by TestServeDNS / TestServeNamespaceDNS.
# ---------------------------------------------------------------------------
HANDLER_CASES: tuple[Case, ...] = (
    # A Service
    Case("svc1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",),
         source=_H + "29"),
    # adapted: svcempty's ClusterIP is 10.0.0.4 in our fixture (10.0.0.1 in the
    # mock duplicates svc1's, COREDNS_NOTES 8.6). A ClusterIP service with no
    # endpoints still answers.
    Case("svcempty.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4",),
         source=_H + "36"),
    Case("svc1.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.",),
         additional=("svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",),
         source=_H + "43"),
    # adapted: ClusterIP 10.0.0.4 (see :36)
    Case("svcempty.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("svcempty.testns.svc.cluster.local. 5 IN SRV 0 100 80 svcempty.testns.svc.cluster.local.",),
         additional=("svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4",),
         source=_H + "49"),
    Case("svc6.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("svc6.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc6.testns.svc.cluster.local.",),
         additional=("svc6.testns.svc.cluster.local. 5 IN AAAA 1234:abcd::1",),
         source=_H + "55"),
    # SRV Service
    Case("_http._tcp.svc1.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.",),
         additional=("svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",),
         source=_H + "62"),
    # adapted: ClusterIP 10.0.0.4 (see :36)
    Case("_http._tcp.svcempty.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("_http._tcp.svcempty.testns.svc.cluster.local. 5 IN SRV 0 100 80 svcempty.testns.svc.cluster.local.",),
         additional=("svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4",),
         source=_H + "72"),
    # A Service (Headless)
    Case("hdls1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5"),
         source=_H + "83"),
    # A Service (Headless and Portless)
    Case("hdlsprtls.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20",),
         source=_H + "94"),
    # AAAA Service (with an existing A record, but no AAAA record)
    Case("svc1.testns.svc.cluster.local.", "AAAA", "NOERROR",
         authority=(_SOA,), source=_H + "102"),
    # AAAA Service (non-existing service)
    Case("svc0.testns.svc.cluster.local.", "AAAA", "NXDOMAIN",
         authority=(_SOA,), source=_H + "110"),
    # A Service (non-existing service)
    Case("svc0.testns.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source=_H + "118"),
    # A Service (non-existing namespace)
    Case("svc0.svc-nons.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source=_H + "126"),
    # TXT Schema
    Case("dns-version.cluster.local.", "TXT", "NOERROR",
         answer=('dns-version.cluster.local. 28800 IN TXT "1.1.0"',),
         source=_H + "134"),
    # A TXT record does not exist but another record for the same FQDN does
    Case("svc1.testns.svc.cluster.local.", "TXT", "NOERROR",
         authority=(_SOA,), source=_H + "142"),
    # A TXT record does not exist and neither does another record for the same FQDN
    Case("svc0.svc-nons.svc.cluster.local.", "TXT", "NXDOMAIN",
         authority=(_SOA,), source=_H + "150"),
    # A Service (Headless) does not exist
    Case("bogusendpoint.hdls1.testns.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source=_H + "158"),
    # A Service does not exist
    Case("bogusendpoint.svc0.testns.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source=_H + "166"),
    # AAAA Service
    Case("svc6.testns.svc.cluster.local.", "AAAA", "NOERROR",
         answer=("svc6.testns.svc.cluster.local. 5 IN AAAA 1234:abcd::1",),
         source=_H + "174"),
    # SRV
    Case("_http._tcp.svc6.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("_http._tcp.svc6.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc6.testns.svc.cluster.local.",),
         additional=("svc6.testns.svc.cluster.local. 5 IN AAAA 1234:abcd::1",),
         source=_H + "182"),
    # AAAA Service (Headless)
    Case("hdls1.testns.svc.cluster.local.", "AAAA", "NOERROR",
         answer=("hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::1",
                 "hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::2"),
         source=_H + "193"),
    # bare svc / pod / namespace names: NODATA
    Case("svc.cluster.local.", "A", "NOERROR", authority=(_SOA,), source=_H + "202"),
    Case("pod.cluster.local.", "A", "NOERROR", authority=(_SOA,), source=_H + "209"),
    Case("testns.svc.cluster.local.", "A", "NOERROR", authority=(_SOA,), source=_H + "216"),
    # NS query for qname != zone (existing domain)
    Case("svc.cluster.local.", "NS", "NOERROR", authority=(_SOA,), source=_H + "224"),
    Case("testns.svc.cluster.local.", "NS", "NOERROR", authority=(_SOA,), source=_H + "232"),
    # NS query for qname != zone (non existing domain)
    Case("foo.cluster.local.", "NS", "NXDOMAIN", authority=(_SOA,), source=_H + "240"),
    Case("foo.svc.cluster.local.", "NS", "NXDOMAIN", authority=(_SOA,), source=_H + "248"),
    # Dual Stack ClusterIP Services
    Case("svc-dual-stack.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("svc-dual-stack.testns.svc.cluster.local. 5 IN A 10.0.0.3",),
         source=_H + "256"),
    Case("svc-dual-stack.testns.svc.cluster.local.", "AAAA", "NOERROR",
         answer=("svc-dual-stack.testns.svc.cluster.local. 5 IN AAAA 10::3",),
         source=_H + "263"),
    # weight 50: 1 port x 2 ClusterIPs = 2 entries before the SRV dedup
    Case("svc-dual-stack.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("svc-dual-stack.testns.svc.cluster.local. 5 IN SRV 0 50 80 svc-dual-stack.testns.svc.cluster.local.",),
         additional=("svc-dual-stack.testns.svc.cluster.local. 5 IN A 10.0.0.3",
                     "svc-dual-stack.testns.svc.cluster.local. 5 IN AAAA 10::3"),
         source=_H + "270"),
    # SOA below the apex: NODATA (handler.go:46-49)
    Case("svc1.testns.svc.cluster.local.", "SOA", "NOERROR", authority=(_SOA,), source=_H + "279"),
    # A query for a subdomain of an external service should not resolve to the external service
    Case("endpoint.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN",
         authority=(_SOA,), source=_H + "287"),
    Case("subdomain.subdomain.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN",
         authority=(_SOA,), source=_H + "295"),
    # --- dnsTestCases ---
    # SRV Service (Headless): weight 16 = floor(100/6), 6 = 6 addresses x 1 port
    # before dedup; the two dup-name SRVs (same target and port) collapse to one.
    Case("_http._tcp.hdls1.testns.svc.cluster.local.", "SRV", "NOERROR",
         answer=("_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 172-0-0-2.hdls1.testns.svc.cluster.local.",
                 "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 172-0-0-3.hdls1.testns.svc.cluster.local.",
                 "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 5678-abcd--1.hdls1.testns.svc.cluster.local.",
                 "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 5678-abcd--2.hdls1.testns.svc.cluster.local.",
                 "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 dup-name.hdls1.testns.svc.cluster.local."),
         additional=("172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2",
                     "172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3",
                     "5678-abcd--1.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::1",
                     "5678-abcd--2.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::2",
                     "dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4",
                     "dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5"),
         source=_H + "306"),
    # An A record query for an existing headless service should return a record for each of its ipv4 endpoints
    Case("hdls1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4",
                 "hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5"),
         source=_H + "325"),
    # AAAA (the test writes the Qname without the trailing dot; Msg() adds it)
    Case("5678-abcd--2.hdls1.testns.svc.cluster.local.", "AAAA", "NOERROR",
         answer=("5678-abcd--2.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::2",),
         source=_H + "336"),
    # AAAA Endpoint
    Case("5678-abcd--1.hdls1.testns.svc.cluster.local.", "AAAA", "NOERROR",
         answer=("5678-abcd--1.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::1",),
         source=_H + "342"),
    # An Endpoint with no port
    Case("172-0-0-20.hdlsprtls.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("172-0-0-20.hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20",),
         source=_H + "350"),
    # An Endpoint ip
    Case("172-0-0-2.hdls1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2",),
         source=_H + "358"),
    Case("172-0-0-3.hdls1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3",),
         source=_H + "366"),
    # An Endpoint by name: two endpoints share the hostname
    Case("dup-name.hdls1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4",
                 "dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5"),
         source=_H + "374"),
    # CNAME External
    Case("external.testns.svc.cluster.local.", "CNAME", "NOERROR",
         answer=("external.testns.svc.cluster.local. 5 IN CNAME ext.interwebs.test.",),
         source=_H + "383"),
    # adapted: the CoreDNS case injects an upstream resolver (Upstub, :399-410)
    # that returns ext.interwebs.test A 1.2.3.4 with TC set. An authoritative-only
    # server does not resolve an out-of-zone target: the answer is the CNAME
    # alone, NOERROR, TC clear (plugin/backend_lookup.go:63-76; COREDNS_NOTES 3).
    Case("external.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("external.testns.svc.cluster.local. 5 IN CNAME ext.interwebs.test.",),
         source=_H + "392"),
    # CNAME External To Internal Service: the in-zone target is chased; the
    # CNAME must come before its target (helpers.go:293-306).
    Case("external-to-service.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("external-to-service.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.",
                 "svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"),
         source=_H + "415"),
    # --- nsTestCases (TestServeNamespaceDNS: all namespaces exposed) ---
    Case("svc1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",),
         source=_H + "602"),
    # The test expects SOA TTL 300 / minttl 30 but discards the comparison
    # (:648); the real SOA is TTL 5 / minttl 5 (COREDNS_NOTES 8.1).
    Case("svc1.nsnoexist.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source=_H + "610"),
    # --- derived / ported from unit tests onto this fixture ---
    # ported from TestServices (a Services() unit test; its mock has the same
    # svc1 endpoint 172.0.0.1 hostname ep1a): endpoint names also resolve under
    # a ClusterIP service (kubernetes.go:531).
    Case("ep1a.svc1.testns.svc.cluster.local.", "A", "NOERROR",
         answer=("ep1a.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.1",),
         source="plugin/kubernetes/kubernetes_test.go:365"),
    # derived: SRV on an ExternalName service is NODATA (CNAME entries are
    # dropped for SRV, kubernetes.go:172-185).
    Case("external.testns.svc.cluster.local.", "SRV", "NOERROR",
         authority=(_SOA,), source="plugin/kubernetes/kubernetes.go:172"),
    # derived: SRV on a headless service without ports is NODATA (the port -1
    # sentinel is skipped, plugin/backend_lookup.go:190-194).
    Case("hdlsprtls.testns.svc.cluster.local.", "SRV", "NOERROR",
         authority=(_SOA,), source="plugin/backend_lookup.go:190"),
    # deliberate difference: CoreDNS answers NXDOMAIN for TXT on an existing
    # name that has no records of its own (kubernetes.go:114-137), while A on
    # the same name is NODATA (:216). RFC 8020: NXDOMAIN means the name does
    # not exist, so we answer NODATA.
    Case("testns.svc.cluster.local.", "TXT", "NOERROR",
         authority=(_SOA,), source="plugin/kubernetes/kubernetes.go:114"),
    # deliberate difference: same as above for svc.<zone> (A is NODATA, :202);
    # CoreDNS gives NXDOMAIN.
    Case("svc.cluster.local.", "TXT", "NOERROR",
         authority=(_SOA,), source="plugin/kubernetes/kubernetes.go:114"),
    # deliberate difference: dns-version.<zone> exists (its TXT is answered,
    # :134), but CoreDNS gives NXDOMAIN for A/AAAA there because "dns-version"
    # is neither svc nor pod (parse.go:73-76). We answer NODATA.
    Case("dns-version.cluster.local.", "A", "NOERROR",
         authority=(_SOA,), source="plugin/kubernetes/parse.go:73"),
    # deliberate difference: as above, for AAAA. CoreDNS gives NXDOMAIN.
    Case("dns-version.cluster.local.", "AAAA", "NOERROR",
         authority=(_SOA,), source="plugin/kubernetes/parse.go:73"),
)

# ---------------------------------------------------------------------------
# handler_case_test.go: dnsPreserveCaseCases (:13-48). TestPreserveCase sets
# `ignore empty_service` (:53); that does not change these answers, since svc1
# has a ready endpoint (ep1a 172.0.0.1).
# ---------------------------------------------------------------------------
_C = "plugin/kubernetes/handler_case_test.go:"
CASE_CASES: tuple[Case, ...] = (
    # Negative response: the SOA owner is the zone in the query's letter case
    Case("not-a-service.testns.svc.ClUsTeR.lOcAl.", "A", "NXDOMAIN",
         authority=("ClUsTeR.lOcAl. 5 IN SOA ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. 1499347823 7200 1800 86400 5",),
         source=_C + "16"),
    # A Service
    Case("SvC1.TeStNs.SvC.cLuStEr.LoCaL.", "A", "NOERROR",
         answer=("SvC1.TeStNs.SvC.cLuStEr.LoCaL. 5 IN A 10.0.0.1",),
         source=_C + "24"),
    # SRV Service: the target is <svc>.<ns>.svc. in the object's case, then
    # the zone in the query's case
    Case("_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL.", "SRV", "NOERROR",
         answer=("_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL. 5 IN SRV 0 100 80 svc1.testns.svc.cLuStEr.LoCaL.",),
         additional=("svc1.testns.svc.cLuStEr.LoCaL. 5 IN A 10.0.0.1",),
         source=_C + "32"),
    Case("Cluster.local.", "SOA", "NOERROR",
         answer=("Cluster.local. 5 IN SOA ns.dns.Cluster.local. hostmaster.Cluster.local. 1499347823 7200 1800 86400 5",),
         source=_C + "42"),
)

# ---------------------------------------------------------------------------
# handler_pod_insecure_test.go: podModeInsecureCases (:13-63). The expected
# SOAs there say minttl 30; only the SOA mname is compared, the real value is 5.
# ---------------------------------------------------------------------------
_P = "plugin/kubernetes/handler_pod_insecure_test.go:"
POD_INSECURE_CASES: tuple[Case, ...] = (
    Case("10-240-0-1.podns.pod.cluster.local.", "A", "NOERROR",
         answer=("10-240-0-1.podns.pod.cluster.local. 5 IN A 10.240.0.1",),
         source=_P + "15"),
    Case("172-0-0-2.podns.pod.cluster.local.", "A", "NOERROR",
         answer=("172-0-0-2.podns.pod.cluster.local. 5 IN A 172.0.0.2",),
         source=_P + "22"),
    # not an IP address
    Case("blah.podns.pod.cluster.local.", "A", "NXDOMAIN", authority=(_SOA,), source=_P + "29"),
    Case("blah.podns.pod.cluster.local.", "AAAA", "NXDOMAIN", authority=(_SOA,), source=_P + "36"),
    # HINFO has no handler: a pretend A lookup picks NXDOMAIN (handler.go:58-63)
    Case("blah.podns.pod.cluster.local.", "HINFO", "NXDOMAIN", authority=(_SOA,), source=_P + "43"),
    # namespace does not exist
    Case("blah.pod-nons.pod.cluster.local.", "A", "NXDOMAIN", authority=(_SOA,), source=_P + "50"),
    # <ns>.pod.<zone> of an existing namespace: NODATA
    Case("podns.pod.cluster.local.", "A", "NOERROR", authority=(_SOA,), source=_P + "57"),
    # --- from handler_pod_verified_test.go: cases whose answer does not depend
    # on the pod mode (the namespace checks run before any pod lookup,
    # kubernetes.go:360-362, 404-418) ---
    Case("svcns.svc.cluster.local.", "A", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/handler_pod_verified_test.go:29"),
    Case("pod-nons.pod.cluster.local.", "A", "NXDOMAIN", authority=(_SOA,),
         source="plugin/kubernetes/handler_pod_verified_test.go:36"),
    # --- derived from kubernetes.go:399-441 (no CoreDNS test) ---
    # derived: AAAA on an IPv4 pod name is NODATA (the name exists, it only has an A)
    Case("10-240-0-1.podns.pod.cluster.local.", "AAAA", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/kubernetes.go:424"),
    # derived: not exactly 3 dashes (or contains "--") -> every "-" becomes ":" (IPv6)
    Case("fd00-77-30--a.podns.pod.cluster.local.", "AAAA", "NOERROR",
         answer=("fd00-77-30--a.podns.pod.cluster.local. 5 IN AAAA fd00:77:30::a",),
         source="plugin/kubernetes/kubernetes.go:427"),
    # derived: A on an IPv6 pod name is NODATA
    Case("fd00-77-30--a.podns.pod.cluster.local.", "A", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/kubernetes.go:427"),
    # deliberate difference: <ns>.pod.<zone> exists (A is NODATA, :57) but
    # CoreDNS gives NXDOMAIN for TXT there (kubernetes.go:114-137). We answer
    # NODATA (RFC 8020).
    Case("podns.pod.cluster.local.", "TXT", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/kubernetes.go:114"),
)

# ---------------------------------------------------------------------------
# reverse_test.go: TestReverse (:154-259), fixture_reverse.yaml.
# adapted: CoreDNS's test serves the narrow reverse zones 0.10.in-addr.arpa.,
# 168.192.in-addr.arpa. and two /64-ish ip6.arpa zones (:155). With the
# default zones in-addr.arpa. and ip6.arpa. the answers are the same; only the
# SOA owner of a reverse-zone error becomes in-addr.arpa.
# ---------------------------------------------------------------------------
_R = "plugin/kubernetes/reverse_test.go:"
_V6A = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.4.3.2.1.ip6.arpa."
_V6B = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa."
_V6C = "6.a.b.9.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa."
REVERSE_CASES: tuple[Case, ...] = (
    # endpoint IP in two slices of the same Service: one PTR
    Case("100.0.0.10.in-addr.arpa.", "PTR", "NOERROR",
         answer=("100.0.0.10.in-addr.arpa. 5 IN PTR ep1a.svc1.testns.svc.cluster.local.",),
         source=_R + "160", fixture="fixture_reverse.yaml"),
    # ClusterIP
    Case("100.1.168.192.in-addr.arpa.", "PTR", "NOERROR",
         answer=("100.1.168.192.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local.",),
         source=_R + "167", fixture="fixture_reverse.yaml"),
    # A PTR record query for an existing ipv6 endpoint should return a record
    Case(_V6A, "PTR", "NOERROR",
         answer=(_V6A + " 5 IN PTR ep1b.svc1.testns.svc.cluster.local.",),
         source=_R + "174", fixture="fixture_reverse.yaml"),
    Case(_V6B, "PTR", "NOERROR",
         answer=(_V6B + " 5 IN PTR ip6svc1ex.svc1.testns.svc.cluster.local.",),
         source=_R + "181", fixture="fixture_reverse.yaml"),
    Case(_V6C, "PTR", "NOERROR",
         answer=(_V6C + " 5 IN PTR ip6svc1in.svc1.testns.svc.cluster.local.",),
         source=_R + "188", fixture="fixture_reverse.yaml"),
    # unknown IP; adapted SOA owner (CoreDNS test: 0.10.in-addr.arpa.)
    Case("101.0.0.10.in-addr.arpa.", "PTR", "NXDOMAIN", authority=(_SOA_V4,),
         source=_R + "195", fixture="fixture_reverse.yaml"),
    Case("example.org.cluster.local.", "PTR", "NXDOMAIN", authority=(_SOA,),
         source=_R + "202", fixture="fixture_reverse.yaml"),
    # PTR on an existing forward name: NODATA
    Case("svc1.testns.svc.cluster.local.", "PTR", "NOERROR", authority=(_SOA,),
         source=_R + "209", fixture="fixture_reverse.yaml"),
    # forward-looking name inside a reverse zone; adapted SOA owner
    # (CoreDNS test: 0.10.in-addr.arpa.)
    Case("svc1.testns.svc.0.10.in-addr.arpa.", "A", "NXDOMAIN", authority=(_SOA_V4,),
         source=_R + "216", fixture="fixture_reverse.yaml"),
    Case("100.0.0.10.cluster.local.", "PTR", "NXDOMAIN", authority=(_SOA,),
         source=_R + "223", fixture="fixture_reverse.yaml"),
    # endpoint IP selected by two Services: two PTRs
    Case("99.0.0.10.in-addr.arpa.", "PTR", "NOERROR",
         answer=("99.0.0.10.in-addr.arpa. 5 IN PTR double-ep.svc1.testns.svc.cluster.local.",
                 "99.0.0.10.in-addr.arpa. 5 IN PTR double-ep.svc2.testns.svc.cluster.local."),
         source=_R + "230", fixture="fixture_reverse.yaml"),
)

# ---------------------------------------------------------------------------
# kubernetes_apex_test.go: kubeApexCases (:14-60), plus the ns.dns.<zone>
# address records (kubernetes_test.go TestServicesAuthority, :432-495) and the
# in-cluster NS form (ns_test.go TestNsAddrs, :105-142).
# ---------------------------------------------------------------------------
_A = "plugin/kubernetes/kubernetes_apex_test.go:"
APEX_CASES: tuple[Case, ...] = (
    Case("cluster.local.", "SOA", "NOERROR", answer=(_SOA,), source=_A + "16"),
    Case("cluster.local.", "HINFO", "NOERROR", authority=(_SOA,), source=_A + "23"),
    # NS at the apex. The glue 127.0.0.1 is the server's own IP (the test sets
    # k.localIPs = 127.0.0.1, :66). Our server must be configured with own IP
    # 127.0.0.1 for fixture_cluster.yaml (SERVER_OWN_IPS); CoreDNS itself would
    # use its non-loopback bound IPs (local.go:10-37).
    Case("cluster.local.", "NS", "NOERROR",
         answer=("cluster.local. 5 IN NS ns.dns.cluster.local.",),
         additional=("ns.dns.cluster.local. 5 IN A 127.0.0.1",),
         source=_A + "30"),
    Case("cluster.local.", "A", "NOERROR", authority=(_SOA,), source=_A + "40"),
    Case("cluster.local.", "AAAA", "NOERROR", authority=(_SOA,), source=_A + "47"),
    Case("cluster.local.", "SRV", "NOERROR", authority=(_SOA,), source=_A + "54"),
    # adapted (zone interwebs.test. -> cluster.local.): ns.dns.<zone> A answers
    # the server's own IPv4 address(es) (kubernetes.go:155-168, ns.go:70-78).
    # Own IP 127.0.0.1 as above.
    Case("ns.dns.cluster.local.", "A", "NOERROR",
         answer=("ns.dns.cluster.local. 5 IN A 127.0.0.1",),
         source="plugin/kubernetes/kubernetes_test.go:447"),
    # adapted: no IPv6 own address -> AAAA is NODATA
    Case("ns.dns.cluster.local.", "AAAA", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/kubernetes_test.go:448"),
    # deliberate difference: the apex exists (A is NODATA, :40) but CoreDNS
    # gives NXDOMAIN for TXT there (kubernetes.go:114-137). We answer NODATA.
    Case("cluster.local.", "TXT", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/kubernetes.go:114"),
    # deliberate difference: ns.dns.<zone> exists (it has an A record) but
    # CoreDNS gives NXDOMAIN for TXT there ("dns" is neither svc nor pod,
    # parse.go:73-76). We answer NODATA.
    Case("ns.dns.cluster.local.", "TXT", "NOERROR", authority=(_SOA,),
         source="plugin/kubernetes/parse.go:73"),
    # --- fixture_apex.yaml: own IP 10.244.0.20 is an endpoint of three
    # Services. adapted (zone inter.webs.test. -> cluster.local.): TestNsAddrs
    # checks nsAddrs() directly; these are the NS answers CoreDNS builds from it
    # (backend_lookup.go:433-467): one NS per distinct target, glue per address.
    # ClusterIP service -> <svc>.<ns>.svc.<zone> with its ClusterIPs; headless
    # -> <endpoint-hostname>.<svc>.<ns>.svc.<zone> with the endpoint IP.
    Case("cluster.local.", "NS", "NOERROR",
         answer=("cluster.local. 5 IN NS dns-service.kube-system.svc.cluster.local.",
                 "cluster.local. 5 IN NS 10-244-0-20.hdls-dns-service.kube-system.svc.cluster.local.",
                 "cluster.local. 5 IN NS dns6-service.kube-system.svc.cluster.local."),
         additional=("dns-service.kube-system.svc.cluster.local. 5 IN A 10.0.0.111",
                     "10-244-0-20.hdls-dns-service.kube-system.svc.cluster.local. 5 IN A 10.244.0.20",
                     "dns6-service.kube-system.svc.cluster.local. 5 IN AAAA 10::111"),
         source="plugin/kubernetes/ns_test.go:105", fixture="fixture_apex.yaml"),
    # derived: ns.dns.<zone> A/AAAA use the same nsAddrs() list, owner = qname
    # (kubernetes.go:155-168); A answers are deduplicated (backend_lookup.go:79-82).
    Case("ns.dns.cluster.local.", "A", "NOERROR",
         answer=("ns.dns.cluster.local. 5 IN A 10.0.0.111",
                 "ns.dns.cluster.local. 5 IN A 10.244.0.20"),
         source="plugin/kubernetes/kubernetes.go:155", fixture="fixture_apex.yaml"),
    Case("ns.dns.cluster.local.", "AAAA", "NOERROR",
         answer=("ns.dns.cluster.local. 5 IN AAAA 10::111",),
         source="plugin/kubernetes/kubernetes.go:155", fixture="fixture_apex.yaml"),
)

# ---------------------------------------------------------------------------
# Other tables that fix an answer under the default options.
# ---------------------------------------------------------------------------
OTHER_CASES: tuple[Case, ...] = (
    # zonalDisabledTestCases: without the non-default `zonal` option the
    # zone-scoped shape is "too long" -> NXDOMAIN (parse.go:109-117).
    Case("us-west-2a.pin._zone.hdls.testns.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source="plugin/kubernetes/zonal_test.go:204"),
    # adapted from TestParseInvalidRequest (zone inter.webs.tests. ->
    # cluster.local.): a parse error is a name error -> NXDOMAIN.
    # label before the namespace is neither svc nor pod
    Case("webs.mynamespace.pood.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source="plugin/kubernetes/parse_test.go:63"),
    # too many labels
    Case("too.long.for.what.I.am.trying.to.pod.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source="plugin/kubernetes/parse_test.go:64"),
    Case("us-west-2a.pin._zone.webs.mynamespace.svc.cluster.local.", "A", "NXDOMAIN",
         authority=(_SOA,), source="plugin/kubernetes/parse_test.go:65"),
)

ALL_CASES: tuple[Case, ...] = (
    HANDLER_CASES + CASE_CASES + POD_INSECURE_CASES + REVERSE_CASES + APEX_CASES + OTHER_CASES
)
