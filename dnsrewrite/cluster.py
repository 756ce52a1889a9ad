"""The published, immutable view of the cluster, and its single writer.

`ClusterView` is what queries read: one attribute load gives a consistent
snapshot, never half an update (Knot's pointer swap). `ClusterBuilder` owns
the mutable store of model objects; `publish()` turns the changes since the
last publish into a new view, re-deriving only the Services, namespaces and
reverse entries that changed, so a change costs work proportional to its size.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dnsrewrite.model import EndpointSlice, Namespace, Port, Service
from dnsrewrite.policy import Decision, GatewayState, Policy, PolicyInputs, State
from dnsrewrite.sharded import ShardedMap, ShardedMapEditor

log = logging.getLogger(__name__)

ServiceKey = tuple[str, str]  # (namespace, name)


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
        """The endpoint's DNS label: its hostname, or the dashed IP (derived, not stored:
        a string per endpoint adds up at 300,000 endpoints)."""
        return self.hostname or endpoint_label(self.ip)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    service: Service
    targets: tuple[Target, ...]  # ready (or publish-not-ready) endpoint addresses
    decision: Decision

    @property
    def key(self) -> ServiceKey:
        return (self.service.namespace, self.service.name)


@dataclass(frozen=True)
class ClusterView:
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    services: ShardedMap[ServiceKey, ServiceEntry] = field(default_factory=ShardedMap)
    # IP text -> PTR targets as label tuples relative to the cluster domain.
    reverse: ShardedMap[str, tuple[tuple[str, ...], ...]] = field(default_factory=ShardedMap)
    generation: int = 0
    serial: int = 0  # SOA serial: unix time of the last change, as CoreDNS
    updated_at: float = 0.0
    synced: bool = False
    gateways: Mapping[str, GatewayState] = field(default_factory=dict)
    decisions: Mapping[State, int] = field(default_factory=dict)  # Services per state
    # What the reply cache checks: `global_version` is the generation of the last change
    # that can affect any answer (a relist, a gateway or policy change); `versions` maps a
    # namespace (or REVERSE_DEP, ANY_DEP) to the generation of its last change since then.
    global_version: int = 0
    versions: Mapping[str, int] = field(default_factory=dict)


REVERSE_DEP = "\x00reverse"  # PTR answers: any change of the reverse index
ANY_DEP = "\x00any"  # answers that may read anything (apex NS, CNAME chases): any change


def service_targets(service: Service, slices: Iterable[EndpointSlice]) -> tuple[Target, ...]:
    targets = []
    for slice_ in slices:
        for endpoint in slice_.endpoints:
            if not (endpoint.ready or service.publish_not_ready):
                continue
            for ip in endpoint.addresses:
                targets.append(Target(endpoint.hostname, ip, slice_.ports))
    return tuple(targets)


class ClusterBuilder:
    """Single writer: apply changes, then `publish()` a new immutable view.

    `decide` computes the rewrite decision of a Service; it is re-run for the
    Services whose inputs changed (the Service, its namespace, the gateway).
    """

    def __init__(self, policy: Policy) -> None:
        """`policy` decides each Service; its gateways are observed at every
        publish, and a change that matters to decisions re-derives everything."""
        self.policy = policy
        self.decision_changes = 0  # Services whose decision changed, for metrics
        self._changed_decisions: list[tuple[ServiceKey, Decision, Decision]] = []
        self.namespaces: dict[str, Namespace] = {}
        self.services: dict[ServiceKey, Service] = {}
        self.slices: dict[ServiceKey, dict[str, EndpointSlice]] = {}
        self._slice_owner: dict[tuple[str, str], ServiceKey] = {}  # (ns, slice) -> service
        self._view = ClusterView()
        self._dirty_services: set[ServiceKey] = set()
        self._dirty_namespaces: set[str] = set()
        self._everything_dirty = True
        self._keys_by_namespace: dict[str, set[ServiceKey]] = {}
        # IP -> the Services holding it: one key, or a set in the rare case of several
        # (a set costs ~200 bytes; at 300,000 endpoints that matters).
        self._ip_owners: dict[str, ServiceKey | set[ServiceKey]] = {}
        self.synced = False

    @property
    def view(self) -> ClusterView:
        return self._view

    # --- changes -------------------------------------------------------------
    def set_namespace(self, namespace: Namespace) -> None:
        self.namespaces[namespace.name] = namespace
        self._dirty_namespaces.add(namespace.name)

    def delete_namespace(self, name: str) -> None:
        if self.namespaces.pop(name, None) is not None:
            self._dirty_namespaces.add(name)

    def set_service(self, service: Service) -> None:
        key = (service.namespace, service.name)
        self.services[key] = service
        self._keys_by_namespace.setdefault(key[0], set()).add(key)
        self._dirty_services.add(key)

    def delete_service(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if self.services.pop(key, None) is not None:
            self._keys_by_namespace.get(namespace, set()).discard(key)
            self._dirty_services.add(key)

    def set_slice(self, slice_: EndpointSlice) -> None:
        self.delete_slice(slice_.namespace, slice_.name)
        key = (slice_.namespace, slice_.service_name)
        self.slices.setdefault(key, {})[slice_.name] = slice_
        self._slice_owner[(slice_.namespace, slice_.name)] = key
        self._dirty_services.add(key)

    def delete_slice(self, namespace: str, name: str) -> None:
        key = self._slice_owner.pop((namespace, name), None)
        if key is None:
            return
        owned = self.slices.get(key, {})
        owned.pop(name, None)
        if not owned:
            self.slices.pop(key, None)
        self._dirty_services.add(key)

    def replace_all(
        self,
        namespaces: Iterable[Namespace] | None = None,
        services: Iterable[Service] | None = None,
        slices: Iterable[EndpointSlice] | None = None,
    ) -> None:
        """Replace whole kinds (a relist or a reloaded file): absent objects are deleted."""
        if namespaces is not None:
            self.namespaces = {ns.name: ns for ns in namespaces}
        if services is not None:
            self.services, self._keys_by_namespace = {}, {}
            for service in services:
                self.set_service(service)
        if slices is not None:
            self.slices, self._slice_owner = {}, {}
            for slice_ in slices:
                self.set_slice(slice_)
        self.mark_all_dirty()

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
        if self._everything_dirty:
            dirty = set(self.services) | set(old.services)
        else:
            dirty = set(self._dirty_services)
            for name in self._dirty_namespaces:
                dirty.update(self._keys_by_namespace.get(name, ()))
        entries = old.services.edit()  # copies only the shards this publish touches
        counts = Counter(old.decisions)
        touched_ips: set[str] = set()
        for key in dirty:
            previous = entries.pop(key, None)
            if previous is not None:
                self._index_ips(key, previous, add=False)
                touched_ips.update(_entry_ips(previous))
                counts[previous.decision.state] -= 1
            service = self.services.get(key)
            if service is None or service.namespace not in self.namespaces:
                continue
            entry = self._derive(service)
            entries[key] = entry
            self._index_ips(key, entry, add=True)
            touched_ips.update(_entry_ips(entry))
            counts[entry.decision.state] += 1
            if previous is not None:
                self._log_decision_change(key, previous.decision, entry.decision)
        reverse = old.reverse.edit()
        self._reindex(reverse, touched_ips, entries)
        namespaces_changed = bool(self._dirty_namespaces) or self._everything_dirty
        changed = bool(dirty) or namespaces_changed or self.synced != old.synced
        generation = old.generation + 1 if changed else old.generation
        if self._everything_dirty or self.synced != old.synced:
            global_version, versions = generation, {}
        else:
            global_version, versions = old.global_version, dict(old.versions)
            for namespace in {key[0] for key in dirty} | self._dirty_namespaces:
                versions[namespace] = generation
            if touched_ips:
                versions[REVERSE_DEP] = generation
            if changed:
                versions[ANY_DEP] = generation
        self._view = ClusterView(
            namespaces=dict(self.namespaces) if namespaces_changed else old.namespaces,
            services=entries.freeze(),
            reverse=reverse.freeze(),
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
            versions=versions,
        )
        self._dirty_services.clear()
        self._dirty_namespaces.clear()
        self._everything_dirty = False
        return self._view

    def _derive(self, service: Service) -> ServiceEntry:
        key = (service.namespace, service.name)
        targets = service_targets(service, self.slices.get(key, {}).values())
        inputs = PolicyInputs(
            service=service,
            namespace=self.namespaces[service.namespace],
            services=self.services,
            slices=self.slices,
        )
        return ServiceEntry(service, targets, self.policy.decide(inputs))

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

    def _index_ips(self, key: ServiceKey, entry: ServiceEntry, add: bool) -> None:
        index = self._ip_owners
        for ip in _entry_ips(entry):
            owners = index.get(ip)
            if add:
                if owners is None or owners == key:
                    index[ip] = key
                elif isinstance(owners, set):
                    owners.add(key)
                else:
                    index[ip] = {owners, key}
            elif owners == key:
                del index[ip]
            elif isinstance(owners, set):
                owners.discard(key)
                if len(owners) == 1:
                    index[ip] = owners.pop()

    def _owners(self, ip: str) -> list[ServiceKey]:
        owners = self._ip_owners.get(ip)
        if owners is None:
            return []
        return sorted(owners) if isinstance(owners, set) else [owners]

    def _reindex(
        self,
        reverse: ShardedMapEditor[str, tuple[tuple[str, ...], ...]],
        ips: set[str],
        entries: ShardedMapEditor[ServiceKey, ServiceEntry],
    ) -> None:
        """Recompute the PTR targets of `ips` (SPEC 2.3.3 and 2.4.3).

        A ClusterIP answers its Service name only (the first Service, should
        two ever share one); otherwise every Service whose endpoints hold the
        IP contributes `<label>.<svc>.<ns>.svc`, duplicates removed.
        """
        for ip in ips:
            owners = [entries[key] for key in self._owners(ip)]
            service_names = [
                (e.service.name, e.service.namespace, "svc")
                for e in owners
                if ip in e.service.cluster_ips
            ]
            if service_names:
                reverse[ip] = (service_names[0],)
                continue
            names = {
                (t.label, e.service.name, e.service.namespace, "svc"): None
                for e in owners
                for t in e.targets
                if t.ip == ip
            }
            if names:
                reverse[ip] = tuple(names)
            else:
                reverse.pop(ip, None)


def _entry_ips(entry: ServiceEntry) -> set[str]:
    return set(entry.service.cluster_ips).union(t.ip for t in entry.targets)
