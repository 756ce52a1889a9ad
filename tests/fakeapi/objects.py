"""Builders for realistic Namespace / Service / EndpointSlice dicts.

They look like what ``kubectl get -o json`` shows for objects made by the
usual controllers (defaults filled in, IPs allocated), minus the fields the
server stamps itself (uid, resourceVersion, creationTimestamp).  Pass them to
``FakeApiServer.create``/``update``/``load``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable

# Deterministic, unique ClusterIPs / nodePorts per process, like the
# allocators.  Integer arithmetic: ipaddress is too slow for 100k services.
_SERVICE_CIDR_BASE = int(ipaddress.IPv4Address("10.96.0.0"))  # a /12
_next_ip = itertools.count(10)
_next_node_port = itertools.count(30000)


def _alloc_cluster_ip() -> str:
    n = _SERVICE_CIDR_BASE + next(_next_ip)
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def namespace(name: str, labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name,
                     "labels": {**(labels or {}), "kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _ports(ports: Iterable) -> list[dict]:
    """(name, port, protocol) tuples -> API dicts; dicts pass through."""
    out = []
    for p in ports:
        if isinstance(p, dict):
            out.append(p)
            continue
        name, port, proto = p
        out.append({"name": name, "port": port, "protocol": proto})
    return out


def service(ns: str, name: str, cluster_ips: list[str] | None = None,
            ports: Iterable = (), type: str = "ClusterIP", external_name: str | None = None,
            headless: bool = False, annotations: dict | None = None,
            publish_not_ready: bool = False, labels: dict | None = None,
            selector: dict | None = None) -> dict:
    """A Service.  ClusterIPs are allocated from 10.96.0.0/12 unless given;
    headless gives clusterIP "None"; type="ExternalName" needs external_name."""
    meta: dict = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    spec: dict = {}
    svc_ports = []
    for p in _ports(ports):
        p = {**p}
        if "targetPort" not in p and type != "ExternalName":
            p["targetPort"] = p["port"]
        if type in ("NodePort", "LoadBalancer") and "nodePort" not in p:
            p["nodePort"] = next(_next_node_port)
        svc_ports.append(p)
    if svc_ports:
        spec["ports"] = svc_ports
    if selector is None and type != "ExternalName":
        selector = {"app": name}
    if selector:
        spec["selector"] = dict(selector)
    if type == "ExternalName":
        if not external_name:
            raise ValueError("type ExternalName needs external_name")
        spec.update(type="ExternalName", externalName=external_name, sessionAffinity="None")
    else:
        if headless:
            ips = ["None"]
            families = [_family(ip) for ip in cluster_ips or []] or ["IPv4"]
        else:
            ips = list(cluster_ips) if cluster_ips else [_alloc_cluster_ip()]
            families = [_family(ip) for ip in ips]
        spec.update(
            clusterIP=ips[0], clusterIPs=ips, type=type, sessionAffinity="None",
            ipFamilies=families,
            ipFamilyPolicy="RequireDualStack" if len(families) > 1 else "SingleStack",
            internalTrafficPolicy="Cluster",
        )
        if type in ("NodePort", "LoadBalancer"):
            spec["externalTrafficPolicy"] = "Cluster"
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {}}}


def _endpoint(e: dict) -> dict:
    """{addresses, hostname?, ready?, serving?, terminating?, node_name?,
    zone?, target_ref?} -> API Endpoint.  API-shaped dicts pass through."""
    if "conditions" in e:
        return e
    ready = e.get("ready", True)
    out: dict = {
        "addresses": list(e["addresses"]),
        "conditions": {"ready": ready, "serving": e.get("serving", ready),
                       "terminating": e.get("terminating", False)},
    }
    if e.get("hostname"):
        out["hostname"] = e["hostname"]
    if e.get("node_name") or e.get("nodeName"):
        out["nodeName"] = e.get("node_name") or e.get("nodeName")
    if e.get("target_ref") or e.get("targetRef"):
        out["targetRef"] = e.get("target_ref") or e.get("targetRef")
    if e.get("zone"):
        out["zone"] = e["zone"]
    return out


def endpoint_slice(ns: str, name: str, service: str, address_type: str = "IPv4",
                   endpoints: Iterable[dict] = (), ports: Iterable = (),
                   labels: dict | None = None) -> dict:
    """An EndpointSlice as the endpointslice controller writes it.  Empty
    endpoints/ports are stored and served as null (real quirk)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "generateName": f"{service}-",
            "labels": {**(labels or {}),
                       "kubernetes.io/service-name": service,
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
        },
        "addressType": address_type,
        "endpoints": [_endpoint(e) for e in endpoints],
        "ports": _ports(ports),
    }
