"""End to end behind a real forwarding resolver: Debian's `unbound` in front of dnsrewrite.

CoreDNS's `forward` stanza (config/coredns/Corefile.snippet) sends the cluster zones to
dnsrewrite and caches the answers. Here unbound plays that part: a `forward-zone` per
cluster zone pointing at a dnsrewrite `ServerThread`, caching on (`forward-no-cache: no`),
no DNSSEC validation. The tests query unbound with dnspython and compare with what
dnsrewrite answers directly.

unbound is required, never skipped: `.ci/run` installs it (`apt-get install -y unbound`).
Nothing here sleeps to wait for a state: unbound's start and the flip after a reload are
polled with deadlines.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from tests.conftest import DEMO_CLUSTER, ServerThread, demo_config
from tests.dnsclient import make_query

HOST = "127.0.0.1"
GATEWAY = "mesh-gateway/internal-gateway"
GATEWAY_VIP = "10.96.0.100"
REVIEWS = "reviews.bookinfo.svc.cluster.local."
BILLING = "billing.legacy.svc.cluster.local."
BILLING_IP = "10.96.20.10"
BIG = "big.load.svc.cluster.local."
# 100 A records are ~1,700 bytes: over the 1232-byte EDNS buffer unbound advertises upstream
# (edns-buffer-size default), so dnsrewrite's UDP reply to unbound is truncated (TC=1).
# 60 would not be: ~1,000 bytes fit in 1232.
BIG_ENDPOINTS = 100
TTL_S = 5  # dnsrewrite's ttl_s and rewrite.ttl_s in config/dnsrewrite.yaml
QTYPE_A = 1

# The reverse zones CoreDNS is given in Corefile.snippet: the Service CIDR 10.96.0.0/12
# (which CoreDNS expands into these sixteen zones), the Pod CIDR and the IPv6 Service CIDR.
REVERSE_ZONES = [f"{n}.10.in-addr.arpa" for n in range(96, 112)] + [
    "244.10.in-addr.arpa",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
]


# --- unbound ---------------------------------------------------------------------------


def unbound_path() -> str:
    path = shutil.which("unbound") or ("/usr/sbin/unbound" if os.path.exists("/usr/sbin/unbound")
                                       else None)
    if path is None:
        pytest.fail("unbound is required for the forwarder tests: apt-get install -y unbound "
                    "(bash .ci/run installs it)", pytrace=False)
    return path


def free_port() -> int:
    """A port free for both UDP and TCP on HOST (unbound listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp_sock, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_sock:
            tcp_sock.bind((HOST, 0))
            port = tcp_sock.getsockname()[1]
            try:
                udp_sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port for unbound")


def unbound_conf(workdir: Path, port: int, dns_port: int) -> str:
    upstream = f"{HOST}@{dns_port}"
    lines = [
        "server:",
        f'    interface: "{HOST}@{port}"',
        "    do-ip6: no",
        "    do-daemonize: no",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{workdir}"',
        f'    pidfile: "{workdir}/unbound.pid"',
        "    use-syslog: no",
        '    logfile: ""',  # stderr, kept in unbound.log for failure messages
        "    verbosity: 1",
        "    log-servfail: yes",
        "    num-threads: 1",
        # Two processes must never share the port (a test would talk to the wrong one).
        "    so-reuseport: no",
        "    access-control: 127.0.0.0/8 allow",
        # The upstream is on 127.0.0.1: by default unbound never sends queries to localhost.
        "    do-not-query-localhost: no",
        # Iterator only: no validator, so no trust anchor and no DNSSEC lookups upstream.
        '    module-config: "iterator"',
        # No private-address lines: unbound would strip RFC 1918 answers (every ClusterIP)
        # unless the zone were also listed as private-domain.
        '    domain-insecure: "cluster.local."',
    ]
    for zone in REVERSE_ZONES:
        # Each sits under an AS112 default local zone (10.in-addr.arpa, d.f.ip6.arpa) that
        # unbound answers NXDOMAIN itself; transparent lets the subzone through to the forward.
        lines += [f'    local-zone: "{zone}." transparent', f'    domain-insecure: "{zone}."']
    for zone in ["cluster.local", *REVERSE_ZONES]:
        lines += [
            "forward-zone:",
            f'    name: "{zone}."',
            f"    forward-addr: {upstream}",
            "    forward-first: no",  # never fall back to recursion from the root
            "    forward-no-cache: no",  # cache as CoreDNS's `cache` plugin does
        ]
    lines += ["remote-control:", "    control-enable: no"]
    return "\n".join(lines) + "\n"


class Unbound:
    """`unbound -d -c CONF` in the foreground on a free port, forwarding to dnsrewrite."""

    def __init__(self, workdir: Path, dns_port: int) -> None:
        self.exe = unbound_path()
        self.workdir = workdir
        self.dns_port = dns_port
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "unbound.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self, attempts: int = 3) -> Unbound:
        for _ in range(attempts):
            self.port = free_port()
            conf = self.workdir / "unbound.conf"
            conf.write_text(unbound_conf(self.workdir, self.port, self.dns_port))
            checkconf = shutil.which("unbound-checkconf") or os.path.join(
                os.path.dirname(self.exe), "unbound-checkconf")
            if os.path.exists(checkconf):
                check = subprocess.run([checkconf, str(conf)], capture_output=True, text=True,
                                       timeout=30)
                assert check.returncode == 0, f"unbound-checkconf: {check.stdout}{check.stderr}"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen([self.exe, "-d", "-c", str(conf)], stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_ready(deadline_s=15):
                return self
            self.stop()  # exited (lost the port race) or never answered: try a new port
        raise AssertionError(f"unbound did not start answering on {HOST}:{self.port}:\n{self.log()}")

    def _wait_ready(self, deadline_s: float) -> bool:
        """Poll with a local-data name (localhost. A) that never reaches dnsrewrite."""
        assert self.proc is not None
        deadline = time.monotonic() + deadline_s
        probe = make_query("localhost.", "A")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                reply = dns.query.udp(probe, HOST, port=self.port, timeout=0.2)
            except (dns.exception.Timeout, OSError):
                continue
            if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                return True
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def query(self, name: str, rdtype: str = "A", *, tcp: bool = False,
              payload: int = 1232) -> dns.message.Message:
        query = make_query(name, rdtype, payload=payload)
        if tcp:
            return dns.query.tcp(query, HOST, port=self.port, timeout=5)
        return dns.query.udp(query, HOST, port=self.port, timeout=5)


# --- the stack: dnsrewrite with unbound in front ------------------------------------------


def demo_items() -> list[dict[str, Any]]:
    with open(DEMO_CLUSTER, encoding="utf-8") as handle:
        return list(yaml.safe_load(handle)["items"])


def big_service_items() -> list[dict[str, Any]]:
    """Namespace `load` with a headless Service of BIG_ENDPOINTS ready endpoints."""
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(BIG_ENDPOINTS)]
    port = {"name": "http", "port": 80, "protocol": "TCP"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big", "namespace": "load"},
         "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [port]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "big-1", "namespace": "load",
                      "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
         "ports": [port]},
    ]


def write_cluster(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))


class Stack:
    def __init__(self, server: ServerThread, unbound: Unbound, cluster_file: Path) -> None:
        self.server = server
        self.unbound = unbound
        self.cluster_file = cluster_file

    def direct(self, name: str, rdtype: str = "A", *, tcp: bool = False,
               payload: int = 1232) -> dns.message.Message:
        query = make_query(name, rdtype, payload=payload)
        if tcp:
            return dns.query.tcp(query, HOST, port=self.server.port, timeout=5)
        return dns.query.udp(query, HOST, port=self.server.port, timeout=5)

    def reload(self, items: list[dict[str, Any]]) -> None:
        write_cluster(self.cluster_file, items)
        assert self.server.app is not None
        assert self.server.call(self.server.app.load_cluster_file)

    def requests(self) -> dict[tuple[str, str, str, int, int], int]:
        """dnsrewrite's request counters: (zone, proto, family, qtype, rcode) -> count."""
        app = self.server.app
        assert app is not None
        return dict(app.answerer.registry.merged().requests)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[tuple[ServerThread, Unbound]] = []

    def make(items: list[dict[str, Any]] | None = None, **overrides: Any) -> Stack:
        unbound_path()  # fail first, with the install hint, if unbound is missing
        cluster_file = tmp_path / "cluster.yaml"
        write_cluster(cluster_file, demo_items() + big_service_items() if items is None else items)
        server = ServerThread(demo_config(cluster_file=str(cluster_file), **overrides)).start()
        workdir = tmp_path / "unbound"
        workdir.mkdir(exist_ok=True)
        unbound = Unbound(workdir, server.port)
        started.append((server, unbound))
        unbound.start()
        return Stack(server, unbound, cluster_file)

    yield make
    for server, unbound in reversed(started):
        unbound.stop()
        server.stop()


def rdata_set(reply: dns.message.Message) -> set[tuple[str, str, str]]:
    """The answer section as (owner, type, rdata) with TTLs left out (unbound counts them down)."""
    return {(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rdata.to_text().lower())
            for rrset in reply.answer for rdata in rrset}


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)


def count(requests: dict[tuple[str, str, str, int, int], int], proto: str, qtype: int) -> int:
    return sum(n for (zone, p, _fam, qt, _rc), n in requests.items()
               if zone == "cluster.local." and p == proto and qt == qtype)


# --- tests --------------------------------------------------------------------------------


# (name, type, rcode, what dnsrewrite answers: checked so the comparison is never empty = empty)
SAME_THROUGH_FORWARDER = [
    (REVIEWS, "A", "NOERROR", {(REVIEWS, "A", GATEWAY_VIP)}),
    (BILLING, "A", "NOERROR", {(BILLING, "A", BILLING_IP)}),
    ("web.legacy.svc.cluster.local.", "AAAA", "NOERROR",
     {("web.legacy.svc.cluster.local.", "AAAA", "fd00:10:96::20")}),
    ("_postgres._tcp.db.legacy.svc.cluster.local.", "SRV", "NOERROR",
     {("_postgres._tcp.db.legacy.svc.cluster.local.", "SRV",
       "0 50 5432 db-0.db.legacy.svc.cluster.local."),
      ("_postgres._tcp.db.legacy.svc.cluster.local.", "SRV",
       "0 50 5432 db-1.db.legacy.svc.cluster.local.")}),
    ("10.20.96.10.in-addr.arpa.", "PTR", "NOERROR", {("10.20.96.10.in-addr.arpa.", "PTR", BILLING)}),
    ("nope.legacy.svc.cluster.local.", "A", "NXDOMAIN", set()),
]


def test_answers_through_the_forwarder_equal_the_direct_ones(make_stack):
    stack = make_stack()
    for name, rdtype, rcode, expected in SAME_THROUGH_FORWARDER:
        direct = stack.direct(name, rdtype)
        assert dns.rcode.to_text(direct.rcode()) == rcode, (name, rdtype, direct)
        assert rdata_set(direct) == expected, (name, rdtype, direct)
        via = stack.unbound.query(name, rdtype)
        assert dns.rcode.to_text(via.rcode()) == rcode, (name, rdtype, via, stack.unbound.log())
        assert rdata_set(via) == rdata_set(direct), (name, rdtype, via)
        assert via.flags & dns.flags.RA  # the answer came from the resolver, not dnsrewrite
    # Every one of them reached dnsrewrite through unbound: its request counters saw each twice
    # (once from us, once from unbound), none of them SERVFAIL.
    requests = stack.requests()
    assert not [key for key in requests if key[4] == dns.rcode.SERVFAIL]
    assert sum(requests.values()) >= 2 * len(SAME_THROUGH_FORWARDER)


def test_a_truncated_udp_answer_arrives_whole_over_tcp_from_the_forwarder(make_stack):
    stack = make_stack()
    # The premise: dnsrewrite's UDP reply at unbound's 1232-byte buffer does not fit.
    truncated = stack.direct(BIG, "A", payload=1232)
    assert truncated.flags & dns.flags.TC and not truncated.answer
    whole = stack.direct(BIG, "A", tcp=True)
    assert len(addresses(whole)) == BIG_ENDPOINTS

    before = stack.requests()
    via = stack.unbound.query(BIG, "A", payload=4096)  # unbound's max-udp-size is 4096
    after = stack.requests()
    assert via.rcode() == dns.rcode.NOERROR, stack.unbound.log()
    assert not via.flags & dns.flags.TC
    assert len(addresses(via)) == BIG_ENDPOINTS
    assert rdata_set(via) == rdata_set(whole)
    # unbound asked over UDP, got TC=1, and asked again over TCP.
    assert count(after, "udp", QTYPE_A) > count(before, "udp", QTYPE_A)
    assert count(after, "tcp", QTYPE_A) > count(before, "tcp", QTYPE_A), after
    assert any(key[1] == "tcp" for key in after)

    # Over TCP from the client too (answered from unbound's cache now): still whole.
    assert rdata_set(stack.unbound.query(BIG, "A", tcp=True)) == rdata_set(whole)


def test_the_forwarder_keeps_getting_answers_no_servfail(make_stack):
    stack = make_stack()
    rcodes: list[tuple[str, str]] = []
    started = time.monotonic()
    for i in range(20):
        # Alternate a cached name with a fresh one each time, so most queries are forwarded.
        if i % 2:
            name, want = f"gone-{i}.legacy.svc.cluster.local.", "NXDOMAIN"
        else:
            name, want = f"{['reviews.bookinfo', 'billing.legacy'][i // 2 % 2]}.svc.cluster.local.", "NOERROR"
        reply = stack.unbound.query(name)
        rcodes.append((name, dns.rcode.to_text(reply.rcode())))
        assert rcodes[-1][1] == want, (rcodes, stack.unbound.log())
        # Spread over about a second: wait for the next 50 ms slot.
        next_slot = started + (i + 1) * 0.05
        while time.monotonic() < next_slot:
            time.sleep(0.005)
    assert time.monotonic() - started >= 0.95
    assert not [r for r in rcodes if r[1] == "SERVFAIL"]
    assert stack.unbound.proc is not None and stack.unbound.proc.poll() is None
    # The fresh names all went through to dnsrewrite.
    nxdomain = sum(n for key, n in stack.requests().items() if key[4] == dns.rcode.NXDOMAIN)
    assert nxdomain >= 10


def test_enrolling_a_namespace_flips_the_forwarded_answer_within_the_ttl(make_stack):
    items = demo_items()
    stack = make_stack(items, rewrite={"gateway": GATEWAY, "require_gateway_ports": False})
    # unbound's clock counts whole seconds: an answer with TTL 5 cached during second s is
    # served until the clock passes s + 5, i.e. for 5 to 6 s. Cache it early in a second so
    # the bound below is not decided by where in a second the entry happened to fall.
    while not 0.2 <= time.time() % 1 < 0.7:
        time.sleep(0.01)
    first = stack.unbound.query(BILLING)
    cached_at = time.monotonic()
    assert addresses(first) == [BILLING_IP], stack.unbound.log()
    assert first.answer[0].ttl <= TTL_S

    legacy = next(i for i in items if i["kind"] == "Namespace" and i["metadata"]["name"] == "legacy")
    legacy["metadata"]["labels"]["dnsrewrite.io/enroll"] = "true"
    stack.reload(items)
    reloaded = time.monotonic()
    assert addresses(stack.direct(BILLING)) == [GATEWAY_VIP]  # dnsrewrite flipped at once

    seen = []
    while True:
        answer = addresses(stack.unbound.query(BILLING))
        seen.append(answer)
        if answer == [GATEWAY_VIP]:
            break
        assert answer == [BILLING_IP], seen
        assert time.monotonic() - reloaded < 3 * TTL_S, f"never flipped: {seen[-3:]}"
        time.sleep(0.01)
    took = time.monotonic() - reloaded
    assert took <= TTL_S + 1, f"flipped after {took:.2f} s, TTL is {TTL_S} s"
    if reloaded - cached_at < 2:
        # unbound cached the old answer (forward-no-cache: no) and served it for a while.
        assert seen[0] == [BILLING_IP]
