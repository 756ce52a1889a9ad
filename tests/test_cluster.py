"""The builder: relists that change nothing cost nothing, flips leave the reverse index
alone, the reverse index follows Services that share an IP, and partial reverse names
exist exactly while an address lies below them."""

from __future__ import annotations

from dnsrewrite import config
from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import (
    ANY_DEP,
    REVERSE_DEP,
    ClusterBuilder,
    has_addresses_below,
    ptr_names,
)
from dnsrewrite.model import endpoint_slice_from_api, namespace_from_api, service_from_api
from dnsrewrite.policy import Policy
from tests.dnsclient import ask
from tests.fakeapi import objects as k8s


def cluster_objects(namespaces: int = 3) -> tuple[list, list, list]:
    nss, svcs, slices = [], [], []
    for n in range(namespaces):
        ns = f"team-{n}"
        nss.append(namespace_from_api(k8s.namespace(ns)))
        svcs.append(service_from_api(k8s.service(ns, "web", cluster_ips=[f"10.96.{n}.10"])))
        slices.append(endpoint_slice_from_api(k8s.endpoint_slice(
            ns, "web-1", "web", endpoints=[{"addresses": [f"10.244.{n}.{i}"]} for i in (1, 2)])))
    return nss, svcs, slices


def built(namespaces: int = 3) -> ClusterBuilder:
    builder = ClusterBuilder(Policy(config.from_mapping({}).rewrite))
    builder.replace_all(*cluster_objects(namespaces))
    builder.synced = True
    builder.publish(1000.0)
    return builder


def test_a_relist_of_equal_objects_publishes_nothing_new():
    builder = built()
    before = builder.view
    builder.replace_all(*cluster_objects())  # new objects, equal to the held ones
    assert not builder.pending()
    after = builder.publish(2000.0)
    assert after.generation == before.generation
    assert after.services[("team-1", "web")] is before.services[("team-1", "web")]


def test_a_relist_re_derives_only_what_changed_and_drops_what_is_gone():
    builder = built()
    before = builder.view
    nss, svcs, slices = cluster_objects()
    slices[1] = endpoint_slice_from_api(k8s.endpoint_slice(
        "team-1", "web-1", "web", endpoints=[{"addresses": ["10.244.1.99"]}]))
    del svcs[2]
    builder.replace_all(nss, svcs, slices)
    after = builder.publish(2000.0)
    assert after.generation == before.generation + 1
    assert after.global_version == before.global_version  # no global flush of cached replies
    assert after.versions[("team-1", "web")] == after.versions[("team-2", "web")] == after.generation
    assert ("team-0", "web") not in after.versions
    assert after.services[("team-0", "web")] is before.services[("team-0", "web")]
    assert [t.ip for t in after.services[("team-1", "web")].targets] == ["10.244.1.99"]
    assert ("team-2", "web") not in after.services
    assert ptr_names(after, "10.244.1.1") == ()
    assert ptr_names(after, "10.96.2.10") == ()
    assert ptr_names(after, "10.244.1.99") == (("10-244-1-99", "web", "team-1", "svc"),)


def test_a_namespace_flip_re_decides_without_touching_the_reverse_index():
    cfg = config.from_mapping({})
    builder = ClusterBuilder(Policy(cfg.rewrite))
    nss, svcs, slices = cluster_objects()
    builder.replace_all(nss, svcs, slices)
    builder.synced = True
    before = builder.publish(1000.0)
    builder.set_namespace(namespace_from_api(k8s.namespace(
        "team-1", labels={"dnsrewrite.io/mesh": "enabled"})))
    after = builder.publish(1001.0)
    assert after.generation == before.generation + 1
    assert after.versions[("team-1", "")] == after.versions[("team-1", "web")] == after.generation
    assert after.versions.get(REVERSE_DEP) == before.versions.get(REVERSE_DEP)
    assert after.versions[ANY_DEP] == after.generation
    assert all(a is b for a, b in zip(after.reverse._shards, before.reverse._shards,
                                      strict=True))  # not one shard copied


def test_services_sharing_an_endpoint_ip_both_answer_ptr_until_one_goes():
    builder = built(namespaces=1)
    builder.set_service(service_from_api(k8s.service("team-0", "api", cluster_ips=["10.96.0.11"])))
    builder.set_slice(endpoint_slice_from_api(k8s.endpoint_slice(
        "team-0", "api-1", "api", endpoints=[{"addresses": ["10.244.0.1"], "hostname": "pod-a"}])))
    view = builder.publish(1001.0)
    assert ptr_names(view, "10.244.0.1") == (
        ("pod-a", "api", "team-0", "svc"), ("10-244-0-1", "web", "team-0", "svc"))
    answerer = Answerer(config.from_mapping({}), lambda: view)
    reply = ask(answerer, "1.0.244.10.in-addr.arpa.", "PTR")
    assert sorted(r.to_text() for rrset in reply.answer for r in rrset) == [
        "10-244-0-1.web.team-0.svc.cluster.local.", "pod-a.api.team-0.svc.cluster.local."]
    builder.delete_slice("team-0", "web-1")
    view = builder.publish(1002.0)
    assert ptr_names(view, "10.244.0.1") == (("pod-a", "api", "team-0", "svc"),)
    assert view.reverse["10.244.0.1"] == ("team-0", "api")
    builder.delete_service("team-0", "api")
    view = builder.publish(1003.0)
    assert "10.244.0.1" not in view.reverse


def test_an_unchanged_object_from_a_resync_event_marks_nothing_dirty():
    builder = built()
    nss, svcs, slices = cluster_objects()
    builder.set_namespace(nss[0])
    builder.set_service(svcs[0])
    builder.set_slice(slices[0])
    assert not builder.pending()


def test_held_equal_gives_the_held_object_so_a_relist_keeps_one_copy():
    builder = built()
    nss, svcs, slices = cluster_objects()
    assert builder.held_equal(svcs[1]) is builder.services[("team-1", "web")]
    assert builder.held_equal(slices[1]) is builder.slices[("team-1", "web")][0]
    assert builder.held_equal(nss[1]) is builder.namespaces["team-1"]
    changed = service_from_api(k8s.service("team-1", "web", cluster_ips=["10.96.1.77"]))
    assert builder.held_equal(changed) is changed


def test_an_endpoint_with_two_addresses_answers_both_under_its_hostname():
    slice_ = endpoint_slice_from_api(k8s.endpoint_slice("team-0", "db-1", "db", endpoints=[
        {"addresses": ["10.244.7.1", "10.244.7.2", "10.244.7.1"], "hostname": "db-0"}]))
    assert [(e.address, e.hostname) for e in slice_.endpoints] == [
        ("10.244.7.1", "db-0"), ("10.244.7.2", "db-0")]


def test_partial_reverse_names_exist_exactly_while_an_address_lies_below():
    builder = built(namespaces=1)  # 10.96.0.10 (ClusterIP), 10.244.0.1 and .2
    builder.set_service(service_from_api(k8s.service(
        "team-0", "v6", cluster_ips=["fd00:10:96::a"])))
    view = builder.publish(1001.0)
    for prefix in ("10.", "10.244.", "10.244.0.", "10.96.0.", "fd00", "fd000010",
                   "fd00001000960000", "fd000010009600000000000000", "fd00001000960000000000000000000"):
        assert has_addresses_below(view, prefix), prefix
    for prefix in ("11.", "10.245.", "10.96.1.", "fd01", "fd00001000960001",
                   "fd000010009600000000000000b", "fd00001000960000000000000000001"):
        assert not has_addresses_below(view, prefix), prefix
    builder.delete_slice("team-0", "web-1")
    builder.delete_service("team-0", "v6")
    view = builder.publish(1002.0)
    assert not has_addresses_below(view, "10.244.")
    assert not has_addresses_below(view, "fd00")
    assert has_addresses_below(view, "10.96.0.")
    assert "fd00001000960000" not in view.v6_suffixes


def test_a_partial_reverse_name_is_nodata_above_an_address_and_nxdomain_elsewhere():
    builder = built(namespaces=1)
    view = builder.view
    answerer = Answerer(config.from_mapping({}), lambda: view)
    assert ask(answerer, "244.10.in-addr.arpa.", "PTR").rcode() == 0  # NODATA
    assert not ask(answerer, "244.10.in-addr.arpa.", "PTR").answer
    assert ask(answerer, "245.10.in-addr.arpa.", "PTR").rcode() == 3  # NXDOMAIN
    assert ask(answerer, "x.10.in-addr.arpa.", "PTR").rcode() == 3


def test_versions_of_services_that_came_and_went_are_bounded():
    builder = built(namespaces=1)
    first = builder.view.global_version
    for i in range(12_000):
        builder.set_service(service_from_api(k8s.service("team-0", f"tmp-{i}")))
        builder.delete_service("team-0", f"tmp-{i}")
        if i % 1000 == 999:
            builder.publish(1000.0 + i)
    view = builder.view
    assert view.global_version > first  # one global change reset them
    assert len(view.versions) <= 2 * len(builder.services) + 10_000 + 1_000  # + one publish


def test_the_prefix_index_agrees_with_a_scan_of_the_addresses_through_adds_and_removes():
    import ipaddress
    import random

    from dnsrewrite.cluster import ClusterView, _ReverseEditor

    rng = random.Random(5)
    pool = [f"10.{rng.choice((1, 2))}.{rng.randrange(3)}.{rng.randrange(4)}" for _ in range(40)]
    pool += [f"fd00::{rng.choice((1, 2))}:0:{rng.randrange(3)}:{rng.randrange(4)}" for _ in range(40)]
    view, held = ClusterView(), set()
    for step in range(300):
        editor = _ReverseEditor(view)
        ip = rng.choice(pool)
        if ip in held:
            editor.remove(("ns", "svc"), [ip])
            held.discard(ip)
        else:
            editor.add(("ns", "svc"), [ip])
            held.add(ip)
        owners, prefixes, v6_suffixes = editor.freeze()
        view = ClusterView(reverse=owners, reverse_prefixes=prefixes, v6_suffixes=v6_suffixes)
        if step % 10:
            continue
        v4 = [ip.split(".") for ip in held if ":" not in ip]
        v6 = [ipaddress.IPv6Address(ip).exploded.replace(":", "") for ip in held if ":" in ip]
        for probe in (rng.choice(pool) for _ in range(10)):
            if ":" in probe:
                nibbles = ipaddress.IPv6Address(probe).exploded.replace(":", "")
                for n in range(1, 32):
                    want = any(x.startswith(nibbles[:n]) for x in v6)
                    assert has_addresses_below(view, nibbles[:n]) == want, (nibbles[:n], held)
            else:
                octets = probe.split(".")
                for n in range(1, 4):
                    want = any(x[:n] == octets[:n] for x in v4)
                    prefix = "".join(o + "." for o in octets[:n])
                    assert has_addresses_below(view, prefix) == want, (prefix, held)
