"""Compact, immutable cluster objects holding only what DNS needs.

Raw API dicts (camelCase JSON, as `kubectl -o yaml` and the API server give
them) stop here: `namespace_from_api`, `service_from_api` and
`endpoint_slice_from_api` cut them down at ingest, as CoreDNS's
`plugin/kubernetes/object` does ("extra fields lead to OOMs"). A bad object
raises `ModelError` with the reason; callers log it and skip the object.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Annotations worth keeping by default; the rest (last-applied-configuration above
# all) are big. Callers with configured keys pass them to service_from_api.
DEFAULT_ANNOTATION_KEYS = frozenset({"dnsrewrite.io/bypass", "dnsrewrite.io/enroll"})

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EMPTY: Mapping[str, str] = MappingProxyType({})


class ModelError(ValueError):
    """An API object that DNS cannot use; the message says why."""


class ServiceKind(Enum):
    CLUSTER_IP = "ClusterIP"  # includes NodePort and LoadBalancer: they answer their ClusterIP
    HEADLESS = "Headless"
    EXTERNAL_NAME = "ExternalName"


@dataclass(frozen=True, slots=True)
class Port:
    name: str  # lowercased: SRV matching is case-insensitive
    port: int
    protocol: str  # "TCP", "UDP" or "SCTP"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    kind: ServiceKind
    cluster_ips: tuple[str, ...]  # canonical text, IPv4 and IPv6
    external_name: str | None
    ports: tuple[Port, ...]
    publish_not_ready: bool
    annotations: Mapping[str, str]  # only the keys policy reads


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of an API endpoint: an endpoint with several addresses (fungible,
    as the API says) becomes one of these per address, as DNS answers them anyway."""

    address: str
    hostname: str | None
    ready: bool


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str
    endpoints: tuple[Endpoint, ...]
    ports: tuple[Port, ...]


def _metadata(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if not isinstance(obj, dict):
        raise ModelError("object is not a mapping")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ModelError("missing metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise ModelError(f"metadata.name {name!r} is not a DNS label")
    return meta, name


def _namespace_of(meta: Mapping[str, Any]) -> str:
    namespace = meta.get("namespace")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
        raise ModelError(f"metadata.namespace {namespace!r} is not a DNS label")
    return sys.intern(namespace)  # one string per namespace, not one per object


def _string_map(value: Any, keep: Collection[str] | None = None) -> Mapping[str, str]:
    if not isinstance(value, dict) or not value:
        return _EMPTY
    items = {str(k): str(v) for k, v in value.items() if keep is None or k in keep}
    return MappingProxyType(items) if items else _EMPTY


def canonical_ip(text: Any) -> str:
    """Canonical text of an IP address, or ModelError.

    IPv6 zone indexes (`fe80::1%eth0`) are refused: they have no place in DNS.
    """
    if type(text) is str:
        try:  # IPv4 the fast way: inet_pton is strict (no leading zeros, no spaces)
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
        except OSError:
            pass
    try:
        address = ipaddress.ip_address(str(text).strip())
        if getattr(address, "scope_id", None):
            raise ValueError("scoped address")
        # Not interned (an intern entry costs 40 bytes per address): the reverse index
        # keys each IP with the string of the object that holds it.
        return str(address)
    except ValueError:
        raise ModelError(f"invalid IP address {text!r}") from None


# Port lists repeat across a cluster (http/80/TCP thousands of times): one shared
# tuple per distinct list, looked up by its plain (name, port, protocol) triples.
_PORT_LISTS: dict[tuple[tuple[str, int, str], ...], tuple[Port, ...]] = {}


def _ports(value: Any, where: str) -> tuple[Port, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ModelError(f"{where} is not a list")
    triples = []
    for item in value:
        if not isinstance(item, dict):
            raise ModelError(f"{where} holds a non-mapping")
        number = item.get("port")
        if type(number) is not int or not 0 < number < 65536:  # bool is not int here
            # An EndpointSlice port without a number means "all ports": no SRV for it.
            continue
        protocol = str(item.get("protocol") or "TCP").upper()
        name = item.get("name") or ""
        triples.append((str(name).lower(), number, protocol))
    key = tuple(triples)
    ports = _PORT_LISTS.get(key)
    if ports is None:
        if len(_PORT_LISTS) > 100_000:  # bounded: a cluster of odd ports cannot grow it forever
            _PORT_LISTS.clear()
        ports = _PORT_LISTS[key] = tuple(Port(*triple) for triple in key)
    return ports


def namespace_from_api(obj: Mapping[str, Any]) -> Namespace:
    meta, name = _metadata(obj)
    return Namespace(sys.intern(name), _string_map(meta.get("labels")))


def service_from_api(
    obj: Mapping[str, Any], annotation_keys: Collection[str] = DEFAULT_ANNOTATION_KEYS
) -> Service:
    meta, name = _metadata(obj)
    namespace = _namespace_of(meta)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise ModelError("missing spec")
    external_name = None
    cluster_ips: tuple[str, ...] = ()
    if spec.get("type") == "ExternalName":
        kind = ServiceKind.EXTERNAL_NAME
        external_name = str(spec.get("externalName") or "").strip().rstrip(".").lower()
        if not external_name:
            raise ModelError("ExternalName service without spec.externalName")
    else:
        ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
        if not isinstance(ips, list):
            raise ModelError("spec.clusterIPs is not a list")
        if ips[0] in ("None", None, ""):
            if ips[0] != "None":
                raise ModelError("service has no clusterIP")
            kind = ServiceKind.HEADLESS
        else:
            kind = ServiceKind.CLUSTER_IP
            cluster_ips = tuple(canonical_ip(ip) for ip in ips)
    return Service(
        namespace=namespace,
        name=sys.intern(name),  # shared with the EndpointSlices naming it
        kind=kind,
        cluster_ips=cluster_ips,
        external_name=external_name,
        ports=_ports(spec.get("ports"), "spec.ports"),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
        annotations=_string_map(meta.get("annotations"), annotation_keys),
    )


def _endpoints(item: Any) -> list[Endpoint]:
    if not isinstance(item, dict):
        raise ModelError("endpoints holds a non-mapping")
    raw = item.get("addresses") or []
    if not isinstance(raw, list):
        raise ModelError("endpoint addresses is not a list")
    addresses = []
    for address in raw:
        try:
            addresses.append(canonical_ip(address))
        except ModelError:
            continue  # one bad address must not hide the others
    if not addresses:
        return []
    hostname = item.get("hostname") or None
    if hostname is not None:
        hostname = str(hostname).lower()
        if not _DNS_LABEL.match(hostname):
            hostname = None
    conditions = item.get("conditions") or {}
    # CoreDNS: ready when conditions.ready is true or absent (object/endpoint.go).
    ready = conditions.get("ready") is not False if isinstance(conditions, dict) else True
    return [Endpoint(address, hostname, ready) for address in dict.fromkeys(addresses)]


def endpoint_slice_from_api(obj: Mapping[str, Any]) -> EndpointSlice:
    meta, name = _metadata(obj)
    namespace = _namespace_of(meta)
    labels = meta.get("labels") or {}
    service_name = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
    if not isinstance(service_name, str) or not _DNS_LABEL.match(service_name):
        raise ModelError(f"no valid {SERVICE_NAME_LABEL} label")
    raw_endpoints = obj.get("endpoints")  # the API gives null for an empty slice
    if raw_endpoints is not None and not isinstance(raw_endpoints, list):
        raise ModelError("endpoints is not a list")
    endpoints = tuple(ep for item in raw_endpoints or [] for ep in _endpoints(item))
    return EndpointSlice(
        namespace, name, sys.intern(service_name), endpoints, _ports(obj.get("ports"), "ports")
    )
