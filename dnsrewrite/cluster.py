"""The published, immutable view of the cluster, and its single writer.

`ClusterView` is what queries read: one attribute load gives a consistent
snapshot, never half an update (Knot's pointer swap). `ClusterBuilder` owns
the mutable store of model objects; `publish()` turns the changes since the
last publish into a new view, re-deriving only the Services, namespaces and
reverse entries that changed, so a change costs work proportional to its size.

Memory matters at 100,000 Services: a view keeps model objects as they came
from the API (no per-endpoint copies), the reverse index maps an IP to the
keys of its Services (PTR names are built when asked), and a relist keeps the
old object wherever the new one is equal.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dnsrewrite.model import EndpointSlice, Namespace, Port, Service
from dnsrewrite.policy import Decision, GatewayState, Policy, PolicyInputs, State
from dnsrewrite.sharded import ByNamespaceMap, ShardedMap

log = logging.getLogger(__name__)

ServiceKey = tuple[str, str]  # (namespace, name)
# The Services holding an IP: one key, or (rarely) a sorted tuple of several.
Owners = ServiceKey | tuple[ServiceKey, ...]


def endpoint_label(ip: str) -> str:
    """The endpoint name CoreDNS derives from an IP: dots or colons to dashes.

    IPv6 uses the compressed form, and a trailing dash becomes "-0"
    (`plugin/kubernetes/kubernetes.go` endpointHostname).
    """
    if ":" in ip:
        label = ip.replace(":", "-")
        return label + "0" if label.endswith("-") else label
    return ip.replace(".", "-")


@dataclass(frozen=True, slots=True)
class Target:
    """One ready endpoint address of one EndpointSlice, as DNS names it."""

    hostname: str | None
    ip: str
    ports: tuple[Port, ...]  # the slice's ports

    @property
    def label(self) -> str:
        """The endpoint's DNS label: its hostname, or the dashed IP."""
        return self.hostname or endpoint_label(self.ip)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    service: Service
    slices: tuple[EndpointSlice, ...]  # the Service's EndpointSlices, as the builder holds them
    decision: Decision

    @property
    def key(self) -> ServiceKey:
        return (self.service.namespace, self.service.name)

    @property
    def targets(self) -> tuple[Target, ...]:
        """Ready (or, with publishNotReadyAddresses, all) endpoint addresses.

        Built when asked rather than stored: 300,000 stored copies cost more
        than building a few per cache miss.
        """
        return service_targets(self.service, self.slices)

    def ips(self) -> Iterator[str]:
        """Every IP this Service answers with: ClusterIPs and target addresses."""
        yield from self.service.cluster_ips
        publish_not_ready = self.service.publish_not_ready
        for slice_ in self.slices:
            for endpoint in slice_.endpoints:
                if endpoint.ready or publish_not_ready:
                    yield endpoint.address


@dataclass(frozen=True)
class ClusterView:
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    services: ShardedMap[ServiceKey, ServiceEntry] = field(default_factory=ByNamespaceMap)
    # IP text -> the Services answering with it (see `ptr_names`).
    reverse: ShardedMap[str, Owners] = field(default_factory=ShardedMap)
    # What partial reverse names need (see `has_addresses_below`): the prefixes that
    # hold indexed IPs (with counts, to know when one empties), and the IPv6
    # addresses of each /64 as sorted suffixes.
    reverse_prefixes: ShardedMap[str, int] = field(default_factory=ShardedMap)
    v6_suffixes: ShardedMap[str, tuple[str, ...]] = field(default_factory=ShardedMap)
    generation: int = 0
    serial: int = 0  # SOA serial: unix time of the last change, as CoreDNS
    updated_at: float = 0.0
    synced: bool = False
    gateways: Mapping[str, GatewayState] = field(default_factory=dict)
    decisions: Mapping[State, int] = field(default_factory=dict)  # Services per state
    # What the reply cache checks: `global_version` is the generation of the last change
    # that can affect any answer (a gateway or policy change); `versions` maps a Service
    # key, (namespace, "") for the namespace itself, REVERSE_DEP or ANY_DEP to the
    # generation of its last change since then.
    global_version: int = 0
    versions: ShardedMap[ServiceKey, int] = field(default_factory=ByNamespaceMap)


REVERSE_DEP = ("\x00reverse", "")  # PTR answers: any change of the reverse index
ANY_DEP = ("\x00any", "")  # answers that may read anything (apex NS, CNAME chases)
NO_DEP = ("", "")  # answers the grammar alone decided: only global changes matter


def owner_keys(owners: Owners | None) -> tuple[ServiceKey, ...]:
    if owners is None:
        return ()
    return (owners,) if isinstance(owners[0], str) else owners


def ptr_names(view: ClusterView, ip: str) -> tuple[tuple[str, ...], ...]:
    """The PTR targets of `ip`, relative to the cluster domain (SPEC 2.3.3, 2.4.3).

    A ClusterIP answers its Service name only (the first Service, should two
    ever share one); otherwise every Service whose endpoints hold the IP
    contributes `<label>.<svc>.<ns>.svc`, duplicates removed.
    """
    entries = [e for e in map(view.services.get, owner_keys(view.reverse.get(ip))) if e]
    for e in entries:
        if ip in e.service.cluster_ips:
            return ((e.service.name, e.service.namespace, "svc"),)
    names = {
        (t.label, e.service.name, e.service.namespace, "svc"): None
        for e in entries
        for t in e.targets
        if t.ip == ip
    }
    return tuple(names)


V6_GROUP = 16  # nibbles: a /64, the prefix a node's pods share


def has_addresses_below(view: ClusterView, prefix: str) -> bool:
    """Whether an indexed IP lies under a partial reverse name (`ParsedName.ip` of
    REVERSE_PARTIAL): then the name is an empty non-terminal, NODATA, not NXDOMAIN
    (RFC 8020). Counting every IPv6 prefix to 31 nibbles would cost up to 31 entries
    per address; below a /64 the sorted suffixes of that /64 answer instead."""
    if prefix.endswith(".") or len(prefix) <= V6_GROUP:
        return prefix in view.reverse_prefixes
    suffixes = view.v6_suffixes.get(prefix[:V6_GROUP]) or ()
    rest = prefix[V6_GROUP:]
    i = bisect.bisect_left(suffixes, rest)
    return i < len(suffixes) and suffixes[i].startswith(rest)


def _leaf_prefix(ip: str) -> tuple[str, str | None]:
    """The longest counted prefix of `ip` (its /24, or its /64 as 16 nibbles), and for
    IPv6 the suffix kept sorted under that /64."""
    if ":" not in ip:
        return ip.rpartition(".")[0] + ".", None
    nibbles = ipaddress.IPv6Address(ip).exploded.replace(":", "")
    return nibbles[:V6_GROUP], nibbles[V6_GROUP:]


def _parent_prefix(prefix: str) -> str:
    """One level up ("10.96.0." -> "10.96.", "fd00" -> "fd0"); "" above the top."""
    if prefix.endswith("."):
        head = prefix[:-1].rpartition(".")[0]
        return head + "." if head else ""
    return prefix[:-1]


def service_targets(service: Service, slices: Iterable[EndpointSlice]) -> tuple[Target, ...]:
    targets = []
    for slice_ in slices:
        for endpoint in slice_.endpoints:
            if endpoint.ready or service.publish_not_ready:
                targets.append(Target(endpoint.hostname, endpoint.address, slice_.ports))
    return tuple(targets)


class ClusterBuilder:
    """Single writer: apply changes, then `publish()` a new immutable view.

    The policy decides each Service; it is re-run for the Services whose
    inputs changed (the Service, its slices, its namespace, a gateway).
    """

    def __init__(self, policy: Policy) -> None:
        """`policy` decides each Service; its gateways are observed at every
        publish, and a change that matters to decisions re-derives everything."""
        self.policy = policy
        self.decision_changes = 0  # Services whose decision changed, for metrics
        self._changed_decisions: list[tuple[ServiceKey, Decision, Decision]] = []
        self.namespaces: dict[str, Namespace] = {}
        self.services: dict[ServiceKey, Service] = {}
        # A Service's slices as one tuple, replaced (not mutated) on change, so the
        # published entry can share it and a publish can tell "unchanged" by identity.
        self.slices: dict[ServiceKey, tuple[EndpointSlice, ...]] = {}
        self._slice_owner: dict[tuple[str, str], ServiceKey] = {}  # (ns, slice) -> service
        self._view = ClusterView()
        self._dirty_services: set[ServiceKey] = set()
        self._dirty_namespaces: set[str] = set()
        self._everything_dirty = True
        self._keys_by_namespace: dict[str, set[ServiceKey]] = {}
        self._decisions: dict[Decision, Decision] = {}  # one shared object per distinct decision
        self.synced = False

    @property
    def view(self) -> ClusterView:
        return self._view

    # --- changes -------------------------------------------------------------
    def set_namespace(self, namespace: Namespace) -> None:
        if self.namespaces.get(namespace.name) != namespace:
            self.namespaces[namespace.name] = namespace
            self._dirty_namespaces.add(namespace.name)

    def delete_namespace(self, name: str) -> None:
        if self.namespaces.pop(name, None) is not None:
            self._dirty_namespaces.add(name)

    def set_service(self, service: Service) -> None:
        key = (service.namespace, service.name)
        if self.services.get(key) == service:
            return  # a resync or an update of fields DNS does not keep
        self.services[key] = service
        self._keys_by_namespace.setdefault(key[0], set()).add(key)
        self._dirty_services.add(key)

    def delete_service(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if self.services.pop(key, None) is not None:
            self._keys_by_namespace.get(namespace, set()).discard(key)
            self._dirty_services.add(key)

    def set_slice(self, slice_: EndpointSlice) -> None:
        key = (slice_.namespace, slice_.service_name)
        owner = self._slice_owner.get((slice_.namespace, slice_.name))
        if owner == key and slice_ in self.slices.get(key, ()):
            return
        self.delete_slice(slice_.namespace, slice_.name)
        self.slices[key] = (*self.slices.get(key, ()), slice_)
        self._slice_owner[(slice_.namespace, slice_.name)] = key
        self._dirty_services.add(key)

    def delete_slice(self, namespace: str, name: str) -> None:
        key = self._slice_owner.pop((namespace, name), None)
        if key is None:
            return
        kept = tuple(s for s in self.slices.get(key, ()) if s.name != name)
        if kept:
            self.slices[key] = kept
        else:
            self.slices.pop(key, None)
        self._dirty_services.add(key)

    def replace_all(
        self,
        namespaces: Iterable[Namespace] | None = None,
        services: Iterable[Service] | None = None,
        slices: Iterable[EndpointSlice] | None = None,
    ) -> None:
        """Replace whole kinds (a relist or a reloaded file): absent objects are deleted.

        Only what differs is marked for re-deriving, and an object equal to the
        one held is dropped in favour of it: a relist that finds nothing new
        costs a comparison per object, not a rebuild of the view.
        """
        if namespaces is not None:
            new_namespaces = {ns.name: ns for ns in namespaces}
            # Loops, not `keys() - keys()`: one C call over 100,000 keys would hold the
            # GIL for tens of ms while queries wait; a loop hands it over as it goes.
            for name in [n for n in self.namespaces if n not in new_namespaces]:
                self.delete_namespace(name)
            for namespace in new_namespaces.values():
                self.set_namespace(namespace)
        if services is not None:
            new_services = {(s.namespace, s.name): s for s in services}
            for key in [k for k in self.services if k not in new_services]:
                self.delete_service(*key)
            for service in new_services.values():
                self.set_service(service)
        if slices is not None:
            self._replace_slices(slices)

    def _replace_slices(self, slices: Iterable[EndpointSlice]) -> None:
        # Changes applied in place, one slice at a time (`set_slice` ignores an equal
        # one): a relist builds no second copy of the index, which would leave its
        # memory scattered among the list's freed objects.
        listed = set()
        for slice_ in slices:
            listed.add((slice_.namespace, slice_.name))
            self.set_slice(slice_)
        for ident in [i for i in self._slice_owner if i not in listed]:
            self.delete_slice(*ident)

    def held_equal(self, obj: Namespace | Service | EndpointSlice) -> Any:
        """The held object equal to `obj`, else `obj` itself.

        Called from watcher threads while they convert a list: it only reads
        (each dict lookup is atomic), and a stale answer is harmless because
        `replace_all` compares again.
        """
        old: Any
        if isinstance(obj, Service):
            old = self.services.get((obj.namespace, obj.name))
        elif isinstance(obj, EndpointSlice):
            key = self._slice_owner.get((obj.namespace, obj.name))
            group = self.slices.get(key, ()) if key is not None else ()
            old = next((s for s in group if s.name == obj.name), None)
        else:
            old = self.namespaces.get(obj.name)
        return old if old == obj else obj

    def mark_all_dirty(self) -> None:
        """Re-derive everything at the next publish (new policy, gateway change)."""
        self._everything_dirty = True

    def mark_namespaces_dirty(self, names: Iterable[str]) -> None:
        self._dirty_namespaces.update(names)

    # --- publishing ----------------------------------------------------------
    def pending(self) -> bool:
        return bool(self._everything_dirty or self._dirty_services or self._dirty_namespaces)

    def publish(self, now: float) -> ClusterView:
        """Derive a new view from the changes since the last publish.

        Before the first sync nothing is derived (queries answer SERVFAIL
        anyway): the three initial lists then cost one derivation, not three.
        """
        old = self._view
        if not self.synced:
            return old
        if self.policy.observe(self.services, self.slices, now):
            self._everything_dirty = True
        everything = self._everything_dirty or self.synced != old.synced
        if everything:
            dirty = set(self.services) | set(old.services)
        else:
            dirty = set(self._dirty_services)
            for name in self._dirty_namespaces:
                dirty.update(self._keys_by_namespace.get(name, ()))
        entries = old.services.edit_or_dict()  # copies only the shards this publish touches
        reverse = _ReverseEditor(old)
        counts = Counter(old.decisions)
        reverse_changed = False
        for key in dirty:
            previous = entries.pop(key, None)
            if previous is not None:
                counts[previous.decision.state] -= 1
            service = self.services.get(key)
            entry = None
            if service is not None and service.namespace in self.namespaces:
                entry = self._derive(service, self.slices.get(key, ()))
                entries[key] = entry
                counts[entry.decision.state] += 1
                if previous is not None:
                    self._log_decision_change(key, previous.decision, entry.decision)
            same_addresses = (
                previous is not None and entry is not None
                and previous.service.cluster_ips == entry.service.cluster_ips
                and previous.slices is entry.slices
                and previous.service.publish_not_ready == entry.service.publish_not_ready
            )
            if not same_addresses:  # a flip or a gateway change leaves the index alone
                reverse_changed = True
                if previous is not None:
                    reverse.remove(key, previous.ips())
                if entry is not None:
                    reverse.add(key, entry.ips())
        namespaces_changed = bool(self._dirty_namespaces) or everything
        changed = bool(dirty) or namespaces_changed
        generation = old.generation + 1 if changed else old.generation
        # Keys of deleted Services stay in `versions` until a global change; bound them
        # (Services that come and go under new names would grow it forever).
        if everything or len(old.versions) > 2 * len(self.services) + 10_000:
            global_version, versions = generation, ByNamespaceMap[int]().edit()
        else:
            # Per Service, not per namespace: 20 changed Services leave the cached
            # answers of their neighbours valid (copy-on-write: one shard per namespace).
            global_version, versions = old.global_version, old.versions.edit()
            for key in dirty:
                versions[key] = generation
            for namespace in self._dirty_namespaces:
                versions[(namespace, "")] = generation
            if reverse_changed:  # PTR names read addresses, names and labels, never decisions
                versions[REVERSE_DEP] = generation
            if changed:
                versions[ANY_DEP] = generation
        owners, prefixes, v6_suffixes = reverse.freeze()
        self._view = ClusterView(
            namespaces=dict(self.namespaces) if namespaces_changed else old.namespaces,
            services=ByNamespaceMap.frozen(entries),
            reverse=owners,
            reverse_prefixes=prefixes,
            v6_suffixes=v6_suffixes,
            generation=generation,
            # The SOA serial moves with global changes only, so that a cached negative
            # answer in one namespace stays byte-identical while another changes.
            # (CoreDNS moves it on every change; nothing here transfers zones.)
            serial=int(now) if global_version != old.global_version else old.serial,
            updated_at=now if changed else old.updated_at,
            synced=self.synced,
            gateways=dict(self.policy.gateways),
            decisions={state: n for state, n in counts.items() if n > 0},
            global_version=global_version,
            versions=versions.freeze(),
        )
        self._dirty_services.clear()
        self._dirty_namespaces.clear()
        self._everything_dirty = False
        return self._view

    def _derive(self, service: Service, slices: tuple[EndpointSlice, ...]) -> ServiceEntry:
        inputs = PolicyInputs(service=service, namespace=self.namespaces[service.namespace])
        decision = self.policy.decide(inputs)
        if len(self._decisions) > 100_000:  # bounded: reasons name namespaces
            self._decisions.clear()
        decision = self._decisions.setdefault(decision, decision)
        return ServiceEntry(service, slices, decision)

    def _log_decision_change(self, key: ServiceKey, before: Decision, after: Decision) -> None:
        """Note a Service whose decision changed; logged by `flush_decision_log`."""
        if (before.state, before.rule, before.gateway, before.vips, before.would) == (
            after.state, after.rule, after.gateway, after.vips, after.would
        ):
            return
        self.decision_changes += 1
        self._changed_decisions.append((key, before, after))

    def flush_decision_log(self) -> None:
        """One line per Service whose decision changed; never one per query.

        Called after the view is published, so that writing a thousand lines
        for a namespace flip does not delay the answers changing.
        """
        changed, self._changed_decisions = self._changed_decisions, []
        for key, before, after in changed:
            log.info("decision changed", extra={"fields": {
                "service": f"{key[0]}/{key[1]}", "from": before.state.value,
                "to": after.state.value, "rule": after.rule.value, "reason": after.reason}})


class _ReverseEditor:
    """The reverse index and its prefix maps, edited together during a publish."""

    def __init__(self, old: ClusterView) -> None:
        self.owners = old.reverse.edit_or_dict()
        self.prefixes = old.reverse_prefixes.edit_or_dict()
        self.v6 = old.v6_suffixes.edit_or_dict()

    def freeze(
        self,
    ) -> tuple[ShardedMap[str, Owners], ShardedMap[str, int], ShardedMap[str, tuple[str, ...]]]:
        return (ShardedMap.frozen(self.owners), ShardedMap.frozen(self.prefixes),
                ShardedMap.frozen(self.v6))

    def add(self, key: ServiceKey, ips: Iterable[str]) -> None:
        owners_map = self.owners
        for ip in ips:
            owners = owners_map.get(ip)
            if owners is None:  # the common case: one Service per IP
                owners_map[ip] = key
                self._count(ip, +1)
                continue
            keys = owner_keys(owners)
            if key not in keys:
                owners_map[ip] = tuple(sorted((*keys, key)))

    def remove(self, key: ServiceKey, ips: Iterable[str]) -> None:
        owners_map = self.owners
        for ip in ips:
            keys = owner_keys(owners_map.get(ip))
            if key not in keys:
                continue
            rest = tuple(k for k in keys if k != key)
            if not rest:
                owners_map.pop(ip, None)
                self._count(ip, -1)
            else:
                owners_map[ip] = rest if len(rest) > 1 else rest[0]

    def _count(self, ip: str, step: int) -> None:
        """A leaf prefix counts its IPs; every prefix above counts its present children,
        so most IPs touch one entry and only a new or emptied prefix climbs further."""
        leaf, suffix = _leaf_prefix(ip)
        prefixes = self.prefixes
        prefix = leaf
        while prefix:
            n = (prefixes.get(prefix) or 0) + step
            if n > 0:
                prefixes[prefix] = n
            else:
                prefixes.pop(prefix, None)
            if n != (1 if step > 0 else 0):
                break  # the parent's count of present children is unchanged
            prefix = _parent_prefix(prefix)
        if suffix is not None:
            suffixes = self.v6.get(leaf) or ()
            i = bisect.bisect_left(suffixes, suffix)
            if step > 0:
                self.v6[leaf] = (*suffixes[:i], suffix, *suffixes[i:])
            elif suffixes[i:i + 1] == (suffix,):
                kept = suffixes[:i] + suffixes[i + 1:]
                if kept:
                    self.v6[leaf] = kept
                else:
                    self.v6.pop(leaf, None)
