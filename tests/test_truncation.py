"""Fitting replies to the UDP limit: additional records are dropped silently (RFC 2181 §9,
as NSD does); only an answer that does not fit sets TC."""

from __future__ import annotations

import yaml

from tests.conftest import demo_config, loaded_app
from tests.dnsclient import ask
from tests.fakeapi import objects as k8s


def app_with_headless(tmp_path, endpoints: int):
    eps = [{"addresses": [f"10.244.7.{i + 1}"], "hostname": f"member-{i:02d}", "ready": True}
           for i in range(endpoints)]
    items = [k8s.namespace("big"),
             k8s.service("big", "pool", headless=True, ports=[("peer", 7000, "TCP")]),
             k8s.endpoint_slice("big", "pool-1", "pool", endpoints=eps, ports=[("peer", 7000, "TCP")])]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return loaded_app(demo_config(cluster_file=str(path)))


def test_srv_answer_that_fits_keeps_all_srv_and_drops_additional_without_tc(tmp_path):
    app = app_with_headless(tmp_path, 8)
    name = "_peer._tcp.pool.big.svc.cluster.local."
    udp = ask(app.answerer, name, "SRV", edns=None)
    assert not udp.flags & 0x0200  # no TC: the answer section is whole
    assert len(udp.answer[0]) == 8
    assert len(udp.to_wire()) <= 512
    kept = sum(len(rrset) for rrset in udp.additional)
    assert 0 <= kept < 8
    full = ask(app.answerer, name, "SRV", tcp=True)
    assert sum(len(rrset) for rrset in full.additional) == 8
    # What was kept is a prefix of the full additional section, records intact.
    kept_lines = [r.to_text() for rrset in udp.additional for r in rrset]
    assert all(line in [r.to_text() for rrset in full.additional for r in rrset]
               for line in kept_lines)


def test_an_answer_that_does_not_fit_sets_tc_with_empty_sections(tmp_path):
    app = app_with_headless(tmp_path, 40)
    udp = ask(app.answerer, "pool.big.svc.cluster.local.", "SRV", edns=None)
    assert udp.flags & 0x0200
    assert not udp.answer and not udp.additional and len(udp.question) == 1
    full = ask(app.answerer, "pool.big.svc.cluster.local.", "SRV", tcp=True)
    assert len(full.answer[0]) == 40
