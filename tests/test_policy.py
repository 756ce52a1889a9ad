"""The rewrite policy: every rule as a case table, then end-to-end flips over sockets."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from dnsrewrite import config
from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import ClusterBuilder
from dnsrewrite.model import endpoint_slice_from_api, namespace_from_api, service_from_api
from dnsrewrite.policy import Policy
from tests.conftest import ServerThread
from tests.dnsclient import ask, rcode_text, udp
from tests.fakeapi import objects as k8s

GW_V4, GW_V6 = "10.96.0.100", "fd00::100"
ENROLL = {"dnsrewrite.io/enroll": "true"}


def gateway_objects(ready: int = 2, ips: tuple[str, ...] = (GW_V4, GW_V6), name: str =
                    "internal-gateway", ns: str = "mesh") -> list[dict]:
    svc = k8s.service(ns, name, cluster_ips=list(ips), ports=[("http", 80, "TCP"),
                                                              ("grpc", 9090, "TCP")])
    eps = [{"addresses": [f"10.244.9.{i + 1}"], "ready": True} for i in range(ready)]
    return [k8s.namespace(ns), svc, k8s.endpoint_slice(ns, f"{name}-1", name, endpoints=eps,
                                                        ports=[("http", 8080, "TCP")])]


class World:
    """Cluster objects fed to a real builder + answerer, with a controllable clock."""

    def __init__(self, **rewrite: Any) -> None:
        rewrite.setdefault("gateway", "mesh/internal-gateway")
        self.cfg = config.from_mapping({"rewrite": rewrite})
        self.builder = ClusterBuilder(Policy(self.cfg.rewrite))
        self.builder.synced = True
        self.view = self.builder.view
        self.answerer = Answerer(self.cfg, lambda: self.view)
        self.now = 1_000_000.0

    def apply(self, *objs: dict) -> World:
        for obj in objs:
            kind = obj["kind"]
            if kind == "Namespace":
                self.builder.set_namespace(namespace_from_api(obj))
            elif kind == "Service":
                keys = self.cfg.rewrite.annotation_keys
                self.builder.set_service(service_from_api(obj, keys))
            else:
                self.builder.set_slice(endpoint_slice_from_api(obj))
        return self.publish()

    def publish(self, after_s: float = 0.0) -> World:
        self.now += after_s
        self.view = self.builder.publish(self.now)
        self.builder.flush_decision_log()
        return self

    def decision(self, ns: str, name: str):
        return self.view.services[(ns, name)].decision

    def a(self, name: str, rdtype: str = "A") -> list[str]:
        reply = ask(self.answerer, name, rdtype)
        return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def svc(ns="shop", name="cart", ports=(("http", 80, "TCP"),), **kw) -> dict:
    return k8s.service(ns, name, cluster_ips=kw.pop("cluster_ips", ["10.96.5.5"]), ports=ports,
                       **kw)


# (id, rewrite config, namespace labels, service kwargs, state, rule, A answer)
CASES = [
    ("enrolled-namespace", {}, ENROLL, {}, "rewritten", "namespace-selector", [GW_V4]),
    ("not-enrolled", {}, {}, {}, "real", "namespace-selector", ["10.96.5.5"]),
    ("label-false", {}, {"dnsrewrite.io/enroll": "false"}, {}, "real", "namespace-selector",
     ["10.96.5.5"]),
    ("bypass-annotation", {}, ENROLL, {"annotations": {"dnsrewrite.io/bypass": "true"}},
     "real", "annotation", ["10.96.5.5"]),
    ("enroll-annotation", {}, {}, {"annotations": {"dnsrewrite.io/enroll": "true"}},
     "rewritten", "annotation", [GW_V4]),
    ("custom-annotation-keys", {"bypass_annotation": "acme.io/no-mesh"}, ENROLL,
     {"annotations": {"acme.io/no-mesh": "true"}}, "real", "annotation", ["10.96.5.5"]),
    ("set-based-selector", {"enroll_selector": "mesh in (on, yes),!legacy"}, {"mesh": "yes"}, {},
     "rewritten", "namespace-selector", [GW_V4]),
    ("set-based-selector-notin", {"enroll_selector": "mesh in (on, yes),!legacy"},
     {"mesh": "yes", "legacy": ""}, {}, "real", "namespace-selector", ["10.96.5.5"]),
    ("headless", {}, ENROLL, {"headless": True}, "excluded", "exclusion", []),
    ("external-name", {}, ENROLL, {"type": "ExternalName", "external_name": "db.example.com"},
     "excluded", "exclusion", ["db.example.com."]),
    ("excluded-namespace", {"exclude_namespaces": ["shop"]}, ENROLL, {}, "excluded",
     "exclusion", ["10.96.5.5"]),
    ("port-not-on-gateway", {}, ENROLL, {"ports": (("pg", 5432, "TCP"),)}, "excluded",
     "port-mismatch", ["10.96.5.5"]),
    ("protocol-not-on-gateway", {}, ENROLL, {"ports": (("http", 80, "UDP"),)}, "excluded",
     "port-mismatch", ["10.96.5.5"]),
    ("port-check-off", {"require_gateway_ports": False}, ENROLL,
     {"ports": (("pg", 5432, "TCP"),)}, "rewritten", "namespace-selector", [GW_V4]),
    ("shadow-namespace", {}, {"dnsrewrite.io/enroll": "shadow"}, {}, "shadow",
     "namespace-selector", ["10.96.5.5"]),
    ("global-shadow", {"shadow": True}, ENROLL, {}, "shadow", "namespace-selector",
     ["10.96.5.5"]),
    ("unknown-gateway-label", {}, {**ENROLL, "dnsrewrite.io/gateway": "nope"}, {}, "fail-open",
     "gateway-health", ["10.96.5.5"]),
    ("no-gateway-configured", {"gateway": None}, ENROLL, {}, "real", "no-gateway",
     ["10.96.5.5"]),
]


@pytest.mark.parametrize(("rewrite", "labels", "kwargs", "state", "rule", "answer"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision_table(rewrite, labels, kwargs, state, rule, answer):
    world = World(**rewrite).apply(*gateway_objects(), k8s.namespace("shop", labels), svc(**kwargs))
    decision = world.decision("shop", "cart")
    assert (decision.state.value, decision.rule.value) == (state, rule), decision.reason
    assert decision.reason
    assert world.a("cart.shop.svc.cluster.local.") == answer


def test_gateway_service_itself_and_kube_system_are_never_rewritten():
    world = World(enroll_selector="").apply(
        *gateway_objects(), k8s.namespace("kube-system"),
        svc("kube-system", "kube-dns"))
    assert world.decision("mesh", "internal-gateway").state.value == "excluded"
    assert world.decision("kube-system", "kube-dns").state.value == "excluded"
    assert world.a("internal-gateway.mesh.svc.cluster.local.") == [GW_V4]


def test_aaaa_with_a_v4_only_gateway_is_nodata_never_nxdomain():
    world = World().apply(*gateway_objects(ips=(GW_V4,)), k8s.namespace("shop", ENROLL), svc())
    reply = ask(world.answerer, "cart.shop.svc.cluster.local.", "AAAA")
    assert rcode_text(reply) == "NOERROR" and not reply.answer and reply.authority
    v6 = World().apply(*gateway_objects(ips=(GW_V6,)), k8s.namespace("shop", ENROLL), svc())
    reply = ask(v6.answerer, "cart.shop.svc.cluster.local.", "A")
    assert rcode_text(reply) == "NOERROR" and not reply.answer
    assert v6.a("cart.shop.svc.cluster.local.", "AAAA") == [GW_V6]


def test_namespace_picks_a_named_gateway():
    world = World(gateways={"east": "mesh-east/gw"}).apply(
        *gateway_objects(), *gateway_objects(ips=("10.96.0.200",), name="gw", ns="mesh-east"),
        k8s.namespace("shop", {**ENROLL, "dnsrewrite.io/gateway": "east"}), svc())
    assert world.decision("shop", "cart").gateway == "east"
    assert world.a("cart.shop.svc.cluster.local.") == ["10.96.0.200"]


def test_rewritten_records_keep_owner_srv_target_and_ptr():
    world = World().apply(*gateway_objects(), k8s.namespace("shop", ENROLL), svc())
    reply = ask(world.answerer, "cart.shop.svc.cluster.local.", "A")
    assert [rrset.rdtype for rrset in reply.answer] == [1]  # an A, never a CNAME
    assert reply.answer[0].name.to_text() == "cart.shop.svc.cluster.local."
    srv = ask(world.answerer, "_http._tcp.cart.shop.svc.cluster.local.", "SRV")
    assert [r.to_text() for r in srv.answer[0]] == ["0 50 80 cart.shop.svc.cluster.local."]
    extra = sorted(r.to_text() for rrset in srv.additional for r in rrset)
    assert extra == [GW_V4, GW_V6]  # consistent with the rewrite
    assert world.a("5.5.96.10.in-addr.arpa.", "PTR") == ["cart.shop.svc.cluster.local."]
    assert world.a("100.0.96.10.in-addr.arpa.", "PTR") == ["internal-gateway.mesh.svc.cluster.local."]


def test_rewrite_ttl_applies_to_rewritten_answers_only():
    world = World(ttl_s=30).apply(*gateway_objects(), k8s.namespace("shop", ENROLL), svc(),
                                  svc(name="other", annotations={"dnsrewrite.io/bypass": "true"}))
    assert ask(world.answerer, "cart.shop.svc.cluster.local.").answer[0].ttl == 30
    assert ask(world.answerer, "other.shop.svc.cluster.local.").answer[0].ttl == 5


def test_fail_open_at_once_and_fail_back_after_hold_down():
    world = World(hold_down_s=10).apply(*gateway_objects(), k8s.namespace("shop", ENROLL), svc())
    name = "cart.shop.svc.cluster.local."
    assert world.a(name) == [GW_V4]
    world.apply(*gateway_objects(ready=0))
    assert world.decision("shop", "cart").state.value == "fail-open"
    assert world.a(name) == ["10.96.5.5"]
    assert world.view.gateways["default"].ready_endpoints == 0
    world.apply(*gateway_objects(ready=1))  # healthy again: hold-down starts
    assert world.a(name) == ["10.96.5.5"]
    assert world.builder.policy.next_deadline() == pytest.approx(world.now + 10)
    world.publish(after_s=9.9)
    assert world.a(name) == ["10.96.5.5"]
    world.publish(after_s=0.2)
    assert world.a(name) == [GW_V4]
    assert world.builder.policy.transitions == 2  # out once, back once


def test_flapping_gateway_restarts_the_hold_down():
    world = World(hold_down_s=10).apply(*gateway_objects(), k8s.namespace("shop", ENROLL), svc())
    world.apply(*gateway_objects(ready=0))
    world.apply(*gateway_objects(ready=1))
    world.publish(after_s=8)
    world.apply(*gateway_objects(ready=0))
    world.apply(*gateway_objects(ready=1))
    world.publish(after_s=8)
    assert world.decision("shop", "cart").state.value == "fail-open"
    world.publish(after_s=2.5)
    assert world.decision("shop", "cart").state.value == "rewritten"


def test_min_ready_endpoints_and_missing_gateway():
    world = World(min_ready_endpoints=2).apply(*gateway_objects(ready=1),
                                                k8s.namespace("shop", ENROLL), svc())
    assert world.decision("shop", "cart").state.value == "fail-open"
    missing = World().apply(k8s.namespace("mesh"), k8s.namespace("shop", ENROLL), svc())
    decision = missing.decision("shop", "cart")
    assert decision.state.value == "fail-open" and "missing" in decision.reason


def test_a_label_change_redecides_the_namespace_and_logs_once_per_service(caplog):
    world = World().apply(*gateway_objects(), k8s.namespace("shop", {}), svc(),
                          svc(name="b", cluster_ips=["10.96.5.6"]))
    caplog.set_level("INFO", logger="dnsrewrite.cluster")
    world.apply(k8s.namespace("shop", ENROLL))
    assert world.a("b.shop.svc.cluster.local.") == [GW_V4]
    lines = [r for r in caplog.records if r.getMessage() == "decision changed"]
    assert sorted(r.fields["service"] for r in lines) == ["shop/b", "shop/cart"]
    assert all(r.fields["from"] == "real" and r.fields["to"] == "rewritten" for r in lines)
    for _ in range(5):
        ask(world.answerer, "b.shop.svc.cluster.local.")
    world.publish()
    assert len([r for r in caplog.records if r.getMessage() == "decision changed"]) == 2


def test_decision_counts_by_state():
    world = World().apply(*gateway_objects(), k8s.namespace("shop", ENROLL), svc(),
                          svc(name="h", headless=True))
    counts = {state.value: n for state, n in world.view.decisions.items()}
    # cart rewritten, h headless (excluded), the gateway in its unenrolled namespace real.
    assert counts == {"rewritten": 1, "excluded": 1, "real": 1}


# --- end to end: a cluster file rewritten and reloaded under a running server -------------

def write_cluster(path, objs: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs}))


def test_answers_flip_over_real_sockets_as_the_cluster_file_changes(tmp_path):
    data = tmp_path / "cluster.yaml"
    shop = k8s.namespace("shop", {})
    objs = [*gateway_objects(), shop, svc(), svc(name="pay", cluster_ips=["10.96.5.7"])]
    write_cluster(data, objs)
    cfg = config.load(None, {"listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
                             "cluster_file": str(data),
                             "rewrite.gateway": "mesh/internal-gateway",
                             "rewrite.hold_down_s": 0.5})
    server = ServerThread(cfg).start()
    try:
        def answer(name="cart"):
            reply = udp("127.0.0.1", server.port, f"{name}.shop.svc.cluster.local.")
            return sorted(r.to_text() for rrset in reply.answer for r in rrset)

        def reload(new_objs):
            write_cluster(data, new_objs)
            assert server.call(server.app.load_cluster_file)

        assert answer() == ["10.96.5.5"]
        objs[3] = k8s.namespace("shop", ENROLL)  # label added
        reload(objs)
        assert answer() == [GW_V4] and answer("pay") == [GW_V4]
        objs[5] = svc(name="pay", cluster_ips=["10.96.5.7"],
                      annotations={"dnsrewrite.io/bypass": "true"})
        reload(objs)
        assert answer("pay") == ["10.96.5.7"] and answer() == [GW_V4]
        objs[:3] = gateway_objects(ready=0)  # the gateway loses its endpoints: fail open at once
        reload(objs)
        assert answer() == ["10.96.5.5"]
        objs[:3] = gateway_objects(ready=2)  # back: real records until the hold-down has passed
        reload(objs)
        started = time.monotonic()
        assert answer() == ["10.96.5.5"]
        while answer() != [GW_V4]:
            assert time.monotonic() - started < 5, "never failed back"
            time.sleep(0.02)
        assert time.monotonic() - started >= 0.45
        objs[3] = k8s.namespace("shop", {"dnsrewrite.io/enroll": "shadow"})  # rehearse
        reload(objs)
        assert answer() == ["10.96.5.5"]
        assert server.app.view.services[("shop", "cart")].decision.would.value == "rewritten"
        objs[3] = k8s.namespace("shop", {})  # label removed
        reload(objs)
        assert answer() == ["10.96.5.5"]
    finally:
        server.stop()
