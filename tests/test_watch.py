"""The Kubernetes watcher against the fake API server, asserting on DNS answers over
real sockets: the official client talks HTTP to tests/fakeapi as to a real API server."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from dnsrewrite import config
from tests.conftest import ServerThread
from tests.dnsclient import rcode_text, udp
from tests.fakeapi import objects as k8s
from tests.fakeapi.server import FakeApiServerThread

ENROLL = {"dnsrewrite.io/enroll": "true"}


def base_objects() -> list[dict]:
    return [
        k8s.namespace("mesh"),
        k8s.service("mesh", "gw", cluster_ips=["10.96.0.100"], ports=[("http", 80, "TCP")]),
        k8s.endpoint_slice("mesh", "gw-1", "gw", endpoints=[{"addresses": ["10.244.0.5"],
                                                             "ready": True}],
                           ports=[("http", 8080, "TCP")]),
        k8s.namespace("shop"),
        k8s.service("shop", "cart", cluster_ips=["10.96.1.1"], ports=[("http", 80, "TCP")]),
    ]


def kubeconfig(path, url: str) -> str:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{url}"}}}}]
users: [{{name: test, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: test}}}}]
current-context: fake
""")
    return str(path)


class Cluster:
    def __init__(self, api: FakeApiServerThread, dns: ServerThread) -> None:
        self.api, self.dns = api, dns

    def query(self, name: str, rdtype: str = "A"):
        return udp("127.0.0.1", self.dns.port, name, rdtype)

    def a(self, name: str) -> list[str]:
        reply = self.query(name)
        return sorted(r.to_text() for rrset in reply.answer for r in rrset)

    def until(self, check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> float:
        """Poll `check` until true; returns the seconds it took."""
        start = time.monotonic()
        while not check():
            assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
            time.sleep(0.01)
        return time.monotonic() - start

    @property
    def stats(self):
        return self.dns.app.kube_source.stats


C = TypeVar("C", bound="Cluster")


@contextlib.contextmanager
def running_cluster(tmp_path, kind: type[C]) -> Iterator[C]:
    """A fake API with the base objects and a synced dnsrewrite watching it (short backoff)."""
    with FakeApiServerThread(bookmark_interval=0.2) as api:
        api.load(base_objects())
        cfg = config.load(None, {
            "listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
            "rewrite": {"gateway": "mesh/gw", "hold_down_s": 0},
            "kubernetes": {"kubeconfig": kubeconfig(tmp_path / "kubeconfig", api.url),
                           "backoff_initial_s": 0.05, "backoff_max_s": 0.3,
                           "inactivity_timeout_s": 1.0, "watch_timeout_s": 30},
        })
        dns = ServerThread(cfg).start()
        try:
            c = kind(api, dns)
            c.until(lambda: dns.app.ready, what="initial sync")
            yield c
        finally:
            dns.stop()


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, Cluster) as c:
        yield c


def test_watch_resumes_from_the_list_resource_version(cluster):
    assert cluster.a("cart.shop.svc.cluster.local.") == ["10.96.1.1"]
    lists = cluster.api.requests(path="/api/v1/services", watch=False)
    watches = cluster.api.requests(path="/api/v1/services", watch=True)
    assert lists and watches
    assert watches[0].query["resourceVersion"] not in ("", "0")
    assert watches[0].query.get("allowWatchBookmarks") == "true"
    assert int(watches[0].query["timeoutSeconds"]) >= 30


def test_service_and_endpoint_changes_show_in_answers(cluster):
    name = "web.shop.svc.cluster.local."
    assert rcode_text(cluster.query(name)) == "NXDOMAIN"
    cluster.api.create(k8s.service("shop", "web", headless=True, ports=[("http", 80, "TCP")]))
    cluster.api.create(k8s.endpoint_slice("shop", "web-1", "web", endpoints=[
        {"addresses": ["10.244.1.1"], "ready": True}], ports=[("http", 80, "TCP")]))
    cluster.until(lambda: cluster.a(name) == ["10.244.1.1"], what="add")
    cluster.api.update(k8s.endpoint_slice("shop", "web-1", "web", endpoints=[
        {"addresses": ["10.244.1.1"], "ready": False}, {"addresses": ["10.244.1.2"],
                                                        "ready": True}],
        ports=[("http", 80, "TCP")]))
    cluster.until(lambda: cluster.a(name) == ["10.244.1.2"], what="change")
    cluster.api.delete("EndpointSlice", "shop", "web-1")
    cluster.until(lambda: rcode_text(cluster.query(name)) == "NXDOMAIN", what="no endpoints")
    cluster.api.delete("Service", "shop", "web")
    cluster.until(lambda: rcode_text(cluster.query(name)) == "NXDOMAIN", what="delete")


def test_enrolling_and_unenrolling_a_namespace_flips_its_services(cluster):
    name = "cart.shop.svc.cluster.local."
    cluster.api.update(k8s.namespace("shop", ENROLL))
    took = cluster.until(lambda: cluster.a(name) == ["10.96.0.100"], what="enroll")
    cluster.api.update(k8s.namespace("shop", {}))
    cluster.until(lambda: cluster.a(name) == ["10.96.1.1"], what="unenroll")
    assert took < 2.0


def test_410_relist_replaces_the_store_so_gap_deletions_leave_no_stale_record(cluster):
    cluster.api.create(k8s.service("shop", "old", cluster_ips=["10.96.1.9"],
                                   ports=[("http", 80, "TCP")]))
    cluster.until(lambda: cluster.a("old.shop.svc.cluster.local.") == ["10.96.1.9"])
    cluster.api.take_down()
    cluster.api.delete("Service", "shop", "old")  # deleted while we are away...
    cluster.api.compact()  # ...and the history that would tell us is gone: 410 on resume
    cluster.api.create(k8s.service("shop", "new", cluster_ips=["10.96.1.10"],
                                   ports=[("http", 80, "TCP")]))
    assert cluster.a("old.shop.svc.cluster.local.") == ["10.96.1.9"]  # last good data
    cluster.api.bring_up()
    cluster.until(lambda: rcode_text(cluster.query("old.shop.svc.cluster.local.")) ==
                  "NXDOMAIN", what="stale record removed")
    assert cluster.a("new.shop.svc.cluster.local.") == ["10.96.1.10"]
    assert cluster.stats.restarts["expired"] >= 1


def test_api_outage_keeps_answers_and_readiness_and_converges_after(cluster):
    cluster.api.take_down()
    deadline = time.monotonic() + 1.5
    answered = 0
    while time.monotonic() < deadline:
        assert cluster.a("cart.shop.svc.cluster.local.") == ["10.96.1.1"]
        assert cluster.dns.app.ready
        answered += 1
    assert answered > 50
    cluster.api.update(k8s.namespace("shop", ENROLL))  # changed during the outage
    cluster.api.bring_up()
    cluster.until(lambda: cluster.a("cart.shop.svc.cluster.local.") == ["10.96.0.100"],
                  what="converge after outage")
    assert cluster.stats.restarts["connection"] + cluster.stats.restarts["expired"] >= 1


def test_429_with_retry_after_is_honoured(cluster):
    cluster.api.fail_next("429", count=1, resource="services", verb="watch", retry_after=1)
    cluster.api.close_watches()
    cluster.api.create(k8s.service("shop", "later", cluster_ips=["10.96.1.20"],
                                   ports=[("http", 80, "TCP")]))
    took = cluster.until(lambda: cluster.a("later.shop.svc.cluster.local.") == ["10.96.1.20"])
    assert cluster.stats.restarts["throttled"] == 1
    assert took >= 0.45  # waited (jittered) Retry-After rather than hammering


def test_a_silent_stream_is_reopened_after_the_inactivity_timeout(cluster):
    cluster.api.fail_next("silent", count=1, resource="namespaces", verb="watch")
    cluster.api.close_watches()
    cluster.api.update(k8s.namespace("shop", ENROLL))
    cluster.until(lambda: cluster.a("cart.shop.svc.cluster.local.") == ["10.96.0.100"],
                  what="change after silence")
    assert cluster.stats.restarts["timeout"] >= 1


def test_malformed_watch_lines_and_objects_are_skipped(cluster):
    cluster.api.fail_next("malformed", count=1, resource="services", verb="watch")
    cluster.api.close_watches()
    bad = k8s.service("shop", "bad", cluster_ips=["10.96.1.30"], ports=[("http", 80, "TCP")])
    bad["spec"]["clusterIPs"] = ["not-an-ip"]
    cluster.api.create(bad)
    cluster.api.create(k8s.service("shop", "good", cluster_ips=["10.96.1.31"],
                                   ports=[("http", 80, "TCP")]))
    cluster.until(lambda: cluster.a("good.shop.svc.cluster.local.") == ["10.96.1.31"])
    assert rcode_text(cluster.query("bad.shop.svc.cluster.local.")) == "NXDOMAIN"
    assert cluster.stats.skipped["Service"] >= 2  # the malformed line and the bad object
    assert cluster.a("cart.shop.svc.cluster.local.") == ["10.96.1.1"]


def test_not_ready_until_all_three_lists_then_servfail_never_nxdomain(tmp_path):
    with FakeApiServerThread() as api:
        api.load(base_objects())
        api.fail_next("500", count=12, resource="endpointslices", verb="list")
        cfg = config.load(None, {
            "listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
            "kubernetes": {"kubeconfig": kubeconfig(tmp_path / "kc", api.url),
                           "backoff_initial_s": 0.2, "backoff_max_s": 0.4},
        })
        dns = ServerThread(cfg).start()
        try:
            c = Cluster(api, dns)
            assert not dns.app.ready
            assert rcode_text(c.query("cart.shop.svc.cluster.local.")) == "SERVFAIL"
            assert rcode_text(c.query("nope.shop.svc.cluster.local.")) == "SERVFAIL"
            c.until(lambda: dns.app.ready, timeout=30, what="sync after 500s")
            assert c.a("cart.shop.svc.cluster.local.") == ["10.96.1.1"]
            assert rcode_text(c.query("nope.shop.svc.cluster.local.")) == "NXDOMAIN"
            assert c.stats.restarts["http_500"] == 12
        finally:
            dns.stop()
