"""The configuration tree: frozen dataclasses, loaded and validated once.

Every setting is a documented dataclass field (the `doc` metadata is what
`config/dnsrewrite.yaml` explains). Loading walks the YAML mapping against the
fields, so an unknown key or a bad value fails with the dotted key named,
e.g. ``rewrite.ttl_s: must be between 0 and 3600, got 7200``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from dnsrewrite.selector import SelectorError, parse_selector


class ConfigError(ValueError):
    """A configuration problem; the message starts with the dotted key."""


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT`` or ``[V6HOST]:PORT``."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {text!r}")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"host must be an IP address, got {host!r}") from None
        host = "127.0.0.1"
    return ListenAddress(host, number)


def _normalize_zone(zone: str) -> str:
    zone = zone.strip().rstrip(".").lower()
    if not zone or any(not label or len(label) > 63 for label in zone.split(".")):
        raise ValueError(f"not a valid zone name: {zone!r}")
    return zone


@dataclass(frozen=True)
class RewriteConfig:
    enroll_selector: str = field(
        default="dnsrewrite.io/enroll=true",
        metadata=_doc("Label selector on Namespaces that enrolls their Services in the rewrite."),
    )
    shadow_selector: str = field(
        default="dnsrewrite.io/enroll=shadow",
        metadata=_doc(
            "Label selector on Namespaces in shadow mode: real records are answered, the "
            "would-be decision is counted and shown by explain. Empty: none."
        ),
    )
    shadow: bool = field(
        default=False,
        metadata=_doc("Global shadow mode: nothing is rewritten, every decision is rehearsed."),
    )
    gateway: str | None = field(
        default=None,
        metadata=_doc(
            "The default gateway Service as NAMESPACE/NAME; its ClusterIPs answer for enrolled "
            "Services. Unset, and no `gateways`: nothing is rewritten."
        ),
    )
    gateways: dict[str, str] = field(
        default_factory=dict,
        metadata=_doc(
            "More gateways by name: {NAME: NAMESPACE/NAME}. A namespace picks one with the "
            "`gateway_label` label; `gateway` above is named `default`."
        ),
    )
    default_gateway: str = field(
        default="default",
        metadata=_doc("Name of the gateway used when a namespace does not pick one."),
    )
    gateway_label: str = field(
        default="dnsrewrite.io/gateway",
        metadata=_doc("Namespace label whose value names the gateway to use."),
    )
    bypass_annotation: str = field(
        default="dnsrewrite.io/bypass",
        metadata=_doc('Service annotation; "true" opts the Service out of the rewrite.'),
    )
    enroll_annotation: str = field(
        default="dnsrewrite.io/enroll",
        metadata=_doc('Service annotation; "true" opts it in where its namespace is not.'),
    )
    exclude_namespaces: tuple[str, ...] = field(
        default=("kube-system",),
        metadata=_doc(
            "Namespaces never rewritten, whatever their labels. Each gateway's own namespace "
            "is always excluded too."
        ),
    )
    require_gateway_ports: bool = field(
        default=True,
        metadata=_doc(
            "Rewrite only Services whose every port (number and protocol) the gateway exposes."
        ),
    )
    min_ready_endpoints: int = field(
        default=1,
        metadata=_doc("A gateway is healthy while it has at least this many ready endpoints.",
                      min=1),
    )
    hold_down_s: float = field(
        default=10.0,
        metadata=_doc(
            "After a gateway recovers, wait this long of continuous health before rewriting "
            "to it again. Going unhealthy fails open at once.",
            min=0,
            max=3600,
        ),
    )
    ttl_s: int = field(
        default=5,
        metadata=_doc("TTL of rewritten A/AAAA answers, seconds.", min=0, max=3600),
    )

    @property
    def gateway_refs(self) -> dict[str, tuple[str, str]]:
        """Every configured gateway: name -> (namespace, service name)."""
        refs = {}
        if self.gateway is not None:
            refs[self.default_gateway] = _split_ref(self.gateway)
        for name, ref in self.gateways.items():
            refs[name] = _split_ref(ref)
        return refs

    @property
    def annotation_keys(self) -> frozenset[str]:
        """The Service annotations the policy reads (all others are dropped at ingest)."""
        return frozenset({self.bypass_annotation, self.enroll_annotation})

    @property
    def gateway_ref(self) -> tuple[str, str] | None:
        return self.gateway_refs.get(self.default_gateway)


def _split_ref(ref: str) -> tuple[str, str]:
    namespace, _, name = ref.partition("/")
    return namespace, name


@dataclass(frozen=True)
class TcpConfig:
    idle_timeout_s: float = field(
        default=10.0,
        metadata=_doc(
            "Close a TCP connection that completes no query for this long (RFC 7766 §6.2.3).",
            min=0.1,
            max=3600,
        ),
    )
    max_connections: int = field(
        default=1000,
        metadata=_doc("Concurrent TCP connections per listener; more are closed at once.", min=1),
    )


@dataclass(frozen=True)
class KubernetesConfig:
    kubeconfig: str | None = field(
        default=None,
        metadata=_doc(
            "Kubeconfig file. Unset: in-cluster config in a pod, else $KUBECONFIG or "
            "~/.kube/config. Used when no cluster_file is set."
        ),
    )
    watch_timeout_s: int = field(
        default=300,
        metadata=_doc("Server-side watch timeout; each watch picks 1-2x this (client-go).",
                      min=1, max=3600),
    )
    inactivity_timeout_s: float = field(
        default=90.0,
        metadata=_doc(
            "Reopen a watch that sends nothing (not even a bookmark) for this long.",
            min=0.1, max=3600,
        ),
    )
    backoff_initial_s: float = field(
        default=0.8, metadata=_doc("First retry delay after a failure.", min=0, max=600)
    )
    backoff_max_s: float = field(
        default=30.0, metadata=_doc("Retry delay cap (doubling with jitter).", min=0, max=3600)
    )
    backoff_reset_s: float = field(
        default=60.0,
        metadata=_doc("A watch healthy this long resets the retry delay.", min=0, max=3600),
    )
    page_size: int = field(
        default=500, metadata=_doc("Objects per list page.", min=1, max=100000)
    )
    publish_window_s: float = field(
        default=0.01,
        metadata=_doc("Coalesce changes arriving within this window into one publish.",
                      min=0, max=5),
    )


@dataclass(frozen=True)
class RrlConfig:
    enabled: bool = field(
        default=False,
        metadata=_doc("Response rate limiting on UDP for error and large replies (anti-reflection)."),
    )
    responses_per_second: float = field(
        default=200.0,
        metadata=_doc("Limited replies allowed per client prefix and category per second "
                      "(NSD rrl-ratelimit default 200).", min=1, max=1_000_000),
    )
    slip: int = field(
        default=2,
        metadata=_doc("Every Nth reply over the limit goes out as TC=1 so real clients retry "
                      "over TCP; 0: drop them all (NSD rrl-slip).", min=0, max=100),
    )
    large_bytes: int = field(
        default=512,
        metadata=_doc("A NOERROR reply larger than this counts as large.", min=64, max=65535),
    )
    ipv4_prefix: int = field(
        default=24, metadata=_doc("Clients are grouped by this IPv4 prefix length.", min=8, max=32)
    )
    ipv6_prefix: int = field(
        default=56, metadata=_doc("Clients are grouped by this IPv6 prefix length.", min=16,
                                  max=128)
    )


@dataclass(frozen=True)
class ShutdownConfig:
    lameduck_s: float = field(
        default=5.0,
        metadata=_doc(
            "On SIGTERM, /ready turns 503 and DNS keeps answering this long before exit "
            "(CoreDNS health lameduck).",
            min=0, max=600,
        ),
    )


@dataclass(frozen=True)
class NameserverConfig:
    name: str | None = field(
        default=None,
        metadata=_doc(
            "Target of the apex NS record. Unset: ns.dns.<zone>, as CoreDNS answers."
        ),
    )
    addresses: tuple[str, ...] = field(
        default=(),
        metadata=_doc("Glue A/AAAA addresses for ns.dns.<zone> (this server's own IPs)."),
    )


@dataclass(frozen=True)
class Config:
    zones: tuple[str, ...] = field(
        default=("cluster.local", "in-addr.arpa", "ip6.arpa"),
        metadata=_doc(
            "Zones served, as in the kubeadm Corefile. The first forward zone is the cluster "
            "domain; zones under in-addr.arpa / ip6.arpa answer PTR. Anything else is REFUSED."
        ),
    )
    listen: tuple[str, ...] = field(
        default=("127.0.0.1:5353",),
        metadata=_doc("Addresses served over both UDP and TCP, HOST:PORT or [IPV6]:PORT."),
    )
    ttl_s: int = field(
        default=5,
        metadata=_doc("TTL of every record but dns-version (CoreDNS default 5).", min=0, max=3600),
    )
    cluster_file: str | None = field(
        default=None,
        metadata=_doc(
            "Serve the Namespaces, Services and EndpointSlices in this YAML/JSON file "
            "(kubectl get ... -o yaml). Relative paths are relative to the config file."
        ),
    )
    edns_udp_payload: int = field(
        default=1232,
        metadata=_doc(
            "Largest UDP reply to an EDNS client; advertised in our OPT (DNS flag day 2020).",
            min=512,
            max=4096,
        ),
    )
    udp_io: str = field(
        default="thread",
        metadata=_doc(
            "How UDP is served: `thread` (a blocking recvfrom/sendto loop per address, "
            "fastest as measured in benchmarks/RESULTS.md) or `asyncio`.",
            choices=("thread", "asyncio"),
        ),
    )
    reply_cache_size: int = field(
        default=100_000,
        metadata=_doc(
            "Replies kept as bytes for repeated queries; an entry is dropped when the "
            "Service (or namespace) it read changes, and the whole cache when it is full. "
            "0: off.", min=0, max=10_000_000,
        ),
    )
    log_format: str = field(
        default="logfmt",
        metadata=_doc("Log line format on stderr.", choices=("logfmt", "json")),
    )
    admin_listen: str | None = field(
        default="127.0.0.1:8080",
        metadata=_doc(
            "Admin HTTP (/health, /ready, /metrics, /explain, /status), HOST:PORT. "
            "In a pod use 0.0.0.0:8080. null: off."
        ),
    )
    query_log: bool = field(
        default=False,
        metadata=_doc("Log queries in CoreDNS `log` plugin format (stderr)."),
    )
    query_log_sample: float = field(
        default=1.0,
        metadata=_doc("Fraction of queries the query log keeps (0-1).", min=0, max=1),
    )
    config_poll_s: float = field(
        default=5.0,
        metadata=_doc("How often the config file is checked for changes (a mounted "
                      "ConfigMap); 0: only on SIGHUP.", min=0, max=3600),
    )
    log_level: str = field(
        default="info",
        metadata=_doc("Least severe level logged.", choices=("debug", "info", "warning", "error")),
    )
    rewrite: RewriteConfig = field(default_factory=RewriteConfig, metadata=_doc("Gateway rewrite."))
    tcp: TcpConfig = field(default_factory=TcpConfig, metadata=_doc("DNS over TCP."))
    nameserver: NameserverConfig = field(
        default_factory=NameserverConfig, metadata=_doc("The apex NS record.")
    )
    rrl: RrlConfig = field(default_factory=RrlConfig, metadata=_doc("Response rate limiting."))
    shutdown: ShutdownConfig = field(
        default_factory=ShutdownConfig, metadata=_doc("Graceful shutdown.")
    )
    kubernetes: KubernetesConfig = field(
        default_factory=KubernetesConfig, metadata=_doc("The Kubernetes watcher.")
    )

    @property
    def listen_addresses(self) -> tuple[ListenAddress, ...]:
        return tuple(parse_listen(item) for item in self.listen)

    @property
    def cluster_domain(self) -> str:
        return next(zone for zone in self.zones if not is_reverse_zone(zone))


def is_reverse_zone(zone: str) -> bool:
    return zone == "in-addr.arpa" or zone.endswith((".in-addr.arpa", "ip6.arpa"))


def _check_semantics(cfg: Config) -> None:
    """Cross-field checks that a single field's type cannot express."""
    try:
        zones = tuple(_normalize_zone(zone) for zone in cfg.zones)
    except ValueError as err:
        raise ConfigError(f"zones: {err}") from None
    if not any(not is_reverse_zone(zone) for zone in zones):
        raise ConfigError("zones: at least one forward zone (the cluster domain) is required")
    if len(set(zones)) != len(zones):
        raise ConfigError("zones: a zone is listed twice")
    object.__setattr__(cfg, "zones", zones)
    if not cfg.listen:
        raise ConfigError("listen: at least one address is required")
    for item in cfg.listen:
        try:
            parse_listen(item)
        except ValueError as err:
            raise ConfigError(f"listen: {err}") from None
    if cfg.admin_listen is not None:
        try:
            parse_listen(cfg.admin_listen)
        except ValueError as err:
            raise ConfigError(f"admin_listen: {err}") from None
    try:
        parse_selector(cfg.rewrite.enroll_selector)
    except SelectorError as err:
        raise ConfigError(f"rewrite.enroll_selector: {err}") from None
    if cfg.rewrite.shadow_selector:
        try:
            parse_selector(cfg.rewrite.shadow_selector)
        except SelectorError as err:
            raise ConfigError(f"rewrite.shadow_selector: {err}") from None
    refs = {"gateway": cfg.rewrite.gateway} if cfg.rewrite.gateway is not None else {}
    refs.update({f"gateways.{name}": ref for name, ref in cfg.rewrite.gateways.items()})
    for key, ref in refs.items():
        namespace, sep, name = ref.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ConfigError(f"rewrite.{key}: expected NAMESPACE/NAME, got {ref!r}")
    if cfg.rewrite.gateway is not None and cfg.rewrite.default_gateway in cfg.rewrite.gateways:
        raise ConfigError(
            f"rewrite.gateways.{cfg.rewrite.default_gateway}: clashes with rewrite.gateway, "
            "which is the default gateway"
        )
    for address in cfg.nameserver.addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"nameserver.addresses: not an IP address: {address!r}") from None


def _convert(value: Any, hint: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], key, meta)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return _build(hint, value, key + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(v, str, f"{key}.{k}", {}) for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return tuple(_convert(item, str, key, {}) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        value = str(value)
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}: must be at least {meta['min']}, got {value}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}: must be at most {meta['max']}, got {value}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: must be one of {', '.join(meta['choices'])}, got {value!r}")
    return value


def _build(cls: Any, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})"
        )
    values = {
        name: _convert(data[name], hints[name], prefix + name, fields[name].metadata)
        for name in fields
        if name in data
    }
    return cls(**values)


def from_mapping(data: dict[str, Any] | None, base_dir: str | None = None) -> Config:
    """Build and validate a Config from a parsed YAML mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config file must hold a mapping at the top level")
    cfg = _build(Config, data)
    if cfg.cluster_file and base_dir and not os.path.isabs(cfg.cluster_file):
        object.__setattr__(cfg, "cluster_file", os.path.join(base_dir, cfg.cluster_file))
    kubeconfig = cfg.kubernetes.kubeconfig
    if kubeconfig and base_dir and not os.path.isabs(kubeconfig):
        object.__setattr__(cfg.kubernetes, "kubeconfig", os.path.join(base_dir, kubeconfig))
    _check_semantics(cfg)
    return cfg


def load(path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the YAML file at `path` (or the defaults), apply CLI overrides, validate.

    `overrides` uses dotted keys (``rewrite.gateway``) so flags and file share
    one validation path and one error format.
    """
    data: dict[str, Any] = {}
    base_dir = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle)
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded or {}
        base_dir = os.path.dirname(os.path.abspath(path))
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return from_mapping(data, base_dir)


def describe(cls: Any = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every field: the source of the config docs."""
    rows = []
    for item in dataclasses.fields(cls):
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        if dataclasses.is_dataclass(default):
            rows.extend(describe(type(default), prefix + item.name + "."))
        else:
            rows.append((prefix + item.name, default, item.metadata.get("doc", "")))
    return rows
