"""The watcher against a misbehaving API server (tests/fakeapi), judged by DNS answers.

410 storms, 500s, truncated and malformed streams, objects with missing or absurd fields,
and an outage under steady query load: each is survived, each bad object is logged and
skipped, and nothing spoils the answers for the other Services. tests/test_watch.py covers
the single faults (one 410, 429 with Retry-After, a silent stream, one malformed line).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.dnsclient import rcode_text, tcp
from tests.fakeapi import objects as k8s
from tests.test_watch import Cluster, running_cluster

CART = "cart.shop.svc.cluster.local."


class FaultyCluster(Cluster):
    @property
    def panics(self) -> int:
        return self.dns.app.answerer.panics

    def ready_status(self) -> int:
        host, port = self.dns.app.admin_bound
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/ready", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    def service(self, name: str, ip: str, **kwargs: object) -> dict:
        return self.api.create(k8s.service("shop", name, cluster_ips=[ip],
                                           ports=kwargs.pop("ports", [("http", 80, "TCP")]),
                                           **kwargs))

    def answers(self, name: str, want: list[str]) -> bool:
        try:
            return self.a(name) == want
        except dns.exception.Timeout:
            return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FaultyCluster]:
    with running_cluster(tmp_path, FaultyCluster) as c:
        yield c


# --- 410 storms, 500s, truncated streams ---------------------------------------------------


def missed_while_away(cluster: FaultyCluster, change: Callable[[], object]) -> None:
    """Make `change` while the API is down and compact its history: the watches come back
    too old (410) and must relist."""
    cluster.api.take_down()
    change()
    cluster.api.compact()
    cluster.api.bring_up()


def test_a_410_storm_relists_every_time_and_converges(cluster: FaultyCluster) -> None:
    # Six 410s in a row in-band (an ERROR event, as the real server sends them)...
    cluster.api.fail_next("expired", count=6, verb="watch")
    cluster.api.close_watches()
    cluster.service("s0", "10.96.2.1")
    cluster.until(lambda: cluster.answers("s0.shop.svc.cluster.local.", ["10.96.2.1"]),
                  what="converge after in-band 410s")
    # ...three compactions in a row, each hiding a change made while we were away (all
    # three watches resume too old: 410, relist, replace)...
    for round_ in range(1, 4):
        cluster.api.take_down()
        cluster.api.delete("Service", "shop", f"s{round_ - 1}")
        cluster.service(f"s{round_}", f"10.96.2.{round_ + 1}")
        cluster.api.compact()
        cluster.api.bring_up()
        cluster.until(lambda r=round_: cluster.answers(f"s{r}.shop.svc.cluster.local.",
                                                       [f"10.96.2.{r + 1}"]),
                      what=f"converge after compaction {round_}")
        assert rcode_text(cluster.query(f"s{round_ - 1}.shop.svc.cluster.local.")) == "NXDOMAIN"
    # ...and 410 as an HTTP status, three times.
    cluster.api.server.expired_watch_response = "http"
    cluster.api.fail_next("expired", count=3, verb="watch")
    cluster.api.close_watches()
    cluster.service("last", "10.96.2.9")
    cluster.until(lambda: cluster.answers("last.shop.svc.cluster.local.", ["10.96.2.9"]),
                  what="converge after HTTP 410s")
    assert cluster.a("s3.shop.svc.cluster.local.") == ["10.96.2.4"]
    assert cluster.a(CART) == ["10.96.1.1"]
    # At least: the six in-band 410s, the Service watch after each compaction, the HTTP ones.
    assert cluster.stats.restarts["expired"] >= 6 + 3 + 3
    assert cluster.stats.lists["Service"] >= 1 + 3
    assert cluster.dns.app.ready and cluster.panics == 0


def test_500s_on_lists_and_watches_keep_the_last_good_data(cluster: FaultyCluster) -> None:
    for resource in ("namespaces", "services", "endpointslices"):
        cluster.api.fail_next("500", count=4, resource=resource, verb="watch")
    cluster.api.close_watches()
    cluster.service("during", "10.96.3.1")
    assert cluster.a(CART) == ["10.96.1.1"]  # answered from the last good data meanwhile
    cluster.until(lambda: cluster.answers("during.shop.svc.cluster.local.", ["10.96.3.1"]),
                  what="watch recovers from 500s")
    # A relist that fails too: a change hidden by a compaction forces one, and it gets 500s.
    cluster.api.fail_next("500", count=3, resource="services", verb="list")
    missed_while_away(cluster, lambda: cluster.service("after", "10.96.3.2"))
    cluster.until(lambda: cluster.answers("after.shop.svc.cluster.local.", ["10.96.3.2"]),
                  what="relist recovers from 500s")
    assert cluster.stats.restarts["http_500"] >= 12 + 3
    assert cluster.a(CART) == ["10.96.1.1"] and cluster.dns.app.ready
    assert cluster.panics == 0


@pytest.mark.parametrize("fault", ["truncate", "malformed", "drop"])
def test_truncated_and_malformed_streams_and_lists_are_retried(cluster: FaultyCluster,
                                                               fault: str) -> None:
    cluster.api.fail_next(fault, count=3, resource="services", verb="watch")
    cluster.api.close_watches()
    cluster.service("w", "10.96.4.1")
    cluster.until(lambda: cluster.answers("w.shop.svc.cluster.local.", ["10.96.4.1"]),
                  what=f"watch after {fault}")
    cluster.api.fail_next(fault, count=2, resource="services", verb="list")

    def change() -> None:
        cluster.api.delete("Service", "shop", "w")
        cluster.service("l", "10.96.4.2")

    missed_while_away(cluster, change)
    cluster.until(lambda: cluster.answers("l.shop.svc.cluster.local.", ["10.96.4.2"]),
                  what=f"relist after {fault}")
    assert rcode_text(cluster.query("w.shop.svc.cluster.local.")) == "NXDOMAIN"
    assert cluster.a(CART) == ["10.96.1.1"] and cluster.panics == 0


# --- objects with missing or absurd fields --------------------------------------------------


def bad_service(name: str, **spec: object) -> dict:
    svc = k8s.service("shop", name, cluster_ips=["10.96.5.99"], ports=[("http", 80, "TCP")])
    svc["spec"].update(spec)
    return svc


def no_spec() -> dict:
    svc = bad_service("no-spec")
    del svc["spec"]
    return svc


def nulls() -> dict:
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "nulls", "namespace": "shop", "labels": None,
                         "annotations": None},
            "spec": {"type": None, "clusterIP": None, "clusterIPs": None, "ports": None,
                     "selector": None, "externalName": None}}


def slice_(name: str, service: str | None, endpoints: object, ports: object = None,
           **extra: object) -> dict:
    obj = k8s.endpoint_slice("shop", name, service or "x", endpoints=[], ports=[])
    if service is None:
        del obj["metadata"]["labels"]["kubernetes.io/service-name"]
    obj["endpoints"], obj["ports"] = endpoints, ports
    obj.update(extra)
    return obj


# Objects the API server would mostly refuse, but a watcher must never trust it to:
# each is skipped (and counted) or, where DNS can still use it, served sanely.
SKIPPED_SERVICES = [
    bad_service("bad-ip", clusterIP="not-an-ip", clusterIPs=["not-an-ip"]),
    bad_service("bad-octet", clusterIP="999.1.1.1", clusterIPs=["999.1.1.1"]),
    bad_service("cidr", clusterIP="10.0.0.1/24", clusterIPs=["10.0.0.1/24"]),
    bad_service("ips-not-a-list", clusterIPs={"a": 1}),
    k8s.service("shop", "x" * 64, cluster_ips=["10.96.5.64"]),  # a name over 63 bytes
    k8s.service("shop", "Upper_Case", cluster_ips=["10.96.5.65"]),  # not a DNS label
    no_spec(),
    nulls(),
    bad_service("ports-not-a-list", ports="80"),
    {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "ext-empty", "namespace": "shop"},
     "spec": {"type": "ExternalName", "externalName": ""}},
]
SKIPPED_SLICES = [
    slice_("no-label", None, [{"addresses": ["10.244.9.1"]}]),
    slice_("endpoints-not-a-list", "headless", {"addresses": ["10.244.9.2"]}),
    slice_("null-endpoint", "headless", [None]),
    slice_("addresses-not-a-list", "headless", [{"addresses": "10.244.9.3"}]),
]


def served_oddities() -> list[dict]:
    """Absurd but usable: served as far as DNS can, never a crash."""
    many_ports = [(f"p{i}", 1 + i, "TCP") for i in range(10_000)]
    huge = bad_service("huge-annotation")
    huge["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration":
                                       "x" * 200_000, "dnsrewrite.io/bypass": "false"}
    return [
        k8s.service("shop", "no-ports", cluster_ips=["10.96.6.1"]),
        k8s.service("shop", "many-ports", cluster_ips=["10.96.6.2"], ports=many_ports),
        bad_service("absurd-ports", clusterIP="10.96.6.3", clusterIPs=["10.96.6.3"],
                    ports=[{"port": 0}, {"port": 70_000}, {"port": "80"}, {"port": -1},
                           {"port": True}, {"name": None, "port": 8080, "protocol": None}]),
        huge,
        k8s.service("shop", "headless", headless=True, ports=[("http", 80, "TCP")]),
        slice_("headless-mixed", "headless", [
            {"addresses": ["10.244.8.1", "not-an-ip", "10.244.8.1"], "conditions": None},
            {"addresses": None},
            {"addresses": ["10.244.8.2"], "hostname": "h" * 70, "conditions": {"ready": True}},
        ], ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": None}]),
        slice_("headless-big", "headless",
               [{"addresses": [f"10.245.{i // 250}.{i % 250 + 1}"],
                 "conditions": {"ready": i % 2 == 0}} for i in range(5_000)]),
        k8s.namespace("odd", labels=None),
        {"kind": "Namespace", "apiVersion": "v1",
         "metadata": {"name": "null-labels", "labels": None}},
    ]


def test_bad_objects_are_skipped_and_never_poison_other_answers(cluster: FaultyCluster) -> None:
    for obj in SKIPPED_SERVICES + SKIPPED_SLICES + served_oddities():
        cluster.api.create(obj)
    # Sentinels created last: once they answer, every object before them was processed.
    cluster.service("sentinel", "10.96.7.1")
    cluster.api.create(k8s.endpoint_slice("shop", "sentinel-1", "sentinel", endpoints=[
        {"addresses": ["10.244.7.1"], "hostname": "s0"}], ports=[("http", 80, "TCP")]))
    cluster.until(lambda: cluster.answers("sentinel.shop.svc.cluster.local.", ["10.96.7.1"]))
    cluster.until(lambda: cluster.answers("s0.sentinel.shop.svc.cluster.local.", ["10.244.7.1"]))
    assert_bad_objects_handled(cluster)

    # The same objects through a relist (compaction forces one): skipped again, same answers.
    skipped = dict(cluster.stats.skipped)
    missed_while_away(cluster, lambda: cluster.api.bump_rv(3))
    cluster.until(lambda: cluster.stats.skipped["Service"] >= 2 * skipped["Service"],
                  what="relist")
    cluster.until(lambda: cluster.stats.skipped["EndpointSlice"] >= 2 * skipped["EndpointSlice"],
                  what="relist")
    assert_bad_objects_handled(cluster)


def assert_bad_objects_handled(cluster: FaultyCluster) -> None:
    stats = cluster.stats
    assert stats.skipped["Service"] >= len(SKIPPED_SERVICES)
    assert stats.skipped["EndpointSlice"] >= len(SKIPPED_SLICES)
    for obj in SKIPPED_SERVICES:
        name = obj["metadata"]["name"]
        if len(name) <= 63:
            assert rcode_text(cluster.query(f"{name}.shop.svc.cluster.local.")) == "NXDOMAIN"
    # The others are served as far as DNS can serve them.
    assert cluster.a("no-ports.shop.svc.cluster.local.") == ["10.96.6.1"]
    assert rcode_text(cluster.query("no-ports.shop.svc.cluster.local.", "SRV")) == "NOERROR"
    assert cluster.a("absurd-ports.shop.svc.cluster.local.") == ["10.96.6.3"]
    assert cluster.a("huge-annotation.shop.svc.cluster.local.") == ["10.96.5.99"]
    assert cluster.a("many-ports.shop.svc.cluster.local.") == ["10.96.6.2"]
    one = cluster.query("_p5000._tcp.many-ports.shop.svc.cluster.local.", "SRV")
    assert [rr.port for rrset in one.answer for rr in rrset] == [5001]  # p5000 is port 5001
    started = time.monotonic()
    all_srv = tcp("127.0.0.1", cluster.dns.port, "many-ports.shop.svc.cluster.local.", "SRV")
    assert time.monotonic() - started < 5
    # 10,000 SRV records do not fit 65,535 bytes: TC even over TCP, never a broken message.
    assert all_srv.rcode() == 0 and (all_srv.flags & 0x0200 or len(all_srv.answer[0]) == 10_000)
    over_udp = cluster.query("headless.shop.svc.cluster.local.")
    assert over_udp.flags & 0x0200 and not over_udp.answer  # 2,502 addresses: TC
    ready = [rr.to_text() for rrset in tcp("127.0.0.1", cluster.dns.port,
                                           "headless.shop.svc.cluster.local.", "A").answer
             for rr in rrset]
    assert "10.244.8.1" in ready and "10.244.8.2" in ready
    assert len(ready) == 2 + 2_500  # the ready ones only, the duplicate address once
    # Nothing else was spoiled.
    assert cluster.a(CART) == ["10.96.1.1"]
    assert cluster.a("sentinel.shop.svc.cluster.local.") == ["10.96.7.1"]
    assert cluster.a("gw.mesh.svc.cluster.local.") == ["10.96.0.100"]
    assert cluster.dns.app.ready and cluster.panics == 0


def test_a_scoped_ipv6_cluster_ip_is_skipped_not_served(cluster: FaultyCluster) -> None:
    cluster.api.create(bad_service("scoped", clusterIP="fe80::1%eth0",
                                   clusterIPs=["fe80::1%eth0"], ipFamilies=["IPv6"]))
    cluster.service("sentinel", "10.96.7.1")
    cluster.until(lambda: cluster.answers("sentinel.shop.svc.cluster.local.", ["10.96.7.1"]))
    reply = cluster.query("scoped.shop.svc.cluster.local.", "AAAA")
    assert cluster.panics == 0, f"{cluster.panics} panic(s), rcode {rcode_text(reply)}"
    assert rcode_text(reply) == "NXDOMAIN"


# --- an outage under steady load -------------------------------------------------------------


class SteadyLoad(threading.Thread):
    """UDP queries at a fixed rate, each checked; /ready polled alongside."""

    # Right answers: the last good data, or (for cart, once enrolled) the gateway's VIP.
    NAMES = {CART: (["10.96.1.1"], ["10.96.0.100"]),
             "gw.mesh.svc.cluster.local.": (["10.96.0.100"],)}

    def __init__(self, cluster: FaultyCluster, qps: float = 200.0) -> None:
        super().__init__(name="steady-load", daemon=True)
        self.cluster, self.interval = cluster, 1.0 / qps
        self.stop = threading.Event()
        self.sent = self.answered = self.lost = self.wrong = 0
        self.ready_checks = self.not_ready = 0
        self.errors: list[str] = []

    def run(self) -> None:
        names = list(self.NAMES)
        next_at = time.monotonic()
        while not self.stop.is_set():
            name = names[self.sent % len(names)]
            query = dns.message.make_query(name, "A")
            self.sent += 1
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=self.cluster.dns.port, timeout=1.0)
                got = sorted(rr.to_text() for rrset in reply.answer for rr in rrset)
                if got in self.NAMES[name]:
                    self.answered += 1
                else:
                    self.wrong += 1
                    self.errors.append(f"{name}: {got} rcode {rcode_text(reply)}")
            except dns.exception.Timeout:
                self.lost += 1
            if self.sent % 20 == 0:
                self.ready_checks += 1
                self.not_ready += self.cluster.ready_status() != 200
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def test_a_5_second_outage_under_steady_load_loses_no_answer_and_stays_ready(
        cluster: FaultyCluster) -> None:
    load = SteadyLoad(cluster)
    load.start()
    try:
        time.sleep(0.5)
        cluster.api.take_down()
        time.sleep(5.0)
        cluster.api.update(k8s.namespace("shop", {"dnsrewrite.io/enroll": "true"}))
        cluster.api.bring_up()
        cluster.until(lambda: cluster.answers(CART, ["10.96.0.100"]), timeout=15,
                      what="converge after the outage")
        time.sleep(0.5)
    finally:
        load.stop.set()
        load.join(5)
    assert load.lost == 0, f"{load.lost} of {load.sent} queries lost"
    assert load.wrong == 0, load.errors[:5]
    assert load.sent >= 1000 and load.answered == load.sent
    assert load.not_ready == 0 and load.ready_checks >= 50
    assert cluster.stats.restarts["connection"] >= 1 and cluster.panics == 0
