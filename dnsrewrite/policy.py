"""The rewrite decision: does a Service answer with a gateway's VIPs, and why.

Decisions are taken when data is published, never per query: the query path
only reads `ServiceEntry.decision`. Every decision names its state, the rule
that decided and a sentence, so explain and the decision log can say why.

The order of the rules (first match wins):
1. enrollment: the Service's annotations (bypass, enroll) then its namespace's
   labels (enroll selector, shadow selector); not enrolled -> real;
2. exclusions, whatever the labels say: excluded namespaces (kube-system and
   every gateway's namespace by default), headless and ExternalName Services,
   the gateway Services themselves -> excluded;
3. the gateway the namespace picks (label, else the default); missing or
   unknown -> fail-open;
4. a Service port the gateway does not expose (number and protocol) -> excluded;
5. the gateway out of service (too few ready endpoints, or within the hold-down
   after recovering) -> fail-open: the real records, so nothing is black-holed;
6. otherwise rewritten. Shadow mode (global or per namespace) then answers the
   real records but keeps the would-be decision for explain and metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from dnsrewrite.config import RewriteConfig
from dnsrewrite.model import EndpointSlice, Namespace, Service, ServiceKind
from dnsrewrite.selector import parse_selector

log = logging.getLogger(__name__)

ServiceKey = tuple[str, str]


class State(Enum):
    REWRITTEN = "rewritten"
    REAL = "real"
    FAIL_OPEN = "fail-open"
    SHADOW = "shadow"
    EXCLUDED = "excluded"

    # Members are singletons compared by identity; Enum's own __hash__ is Python code,
    # and a publish hashes decisions (with their enums) once per Service.
    __hash__ = object.__hash__


class Rule(Enum):
    NAMESPACE_SELECTOR = "namespace-selector"
    ANNOTATION = "annotation"
    EXCLUSION = "exclusion"
    PORT_MISMATCH = "port-mismatch"
    GATEWAY_HEALTH = "gateway-health"
    NO_GATEWAY = "no-gateway"

    __hash__ = object.__hash__  # see State


@dataclass(frozen=True, slots=True)
class Decision:
    state: State
    rule: Rule
    reason: str
    gateway: str | None = None  # the gateway's configured name
    vips: tuple[str, ...] = ()  # what A/AAAA answer when rewritten
    would: State | None = None  # shadow mode: the decision that was not applied

    @property
    def rewritten(self) -> bool:
        return self.state is State.REWRITTEN


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    service: Service
    namespace: Namespace


@dataclass(frozen=True, slots=True)
class GatewayState:
    """One gateway as last observed; `in_service` is what decisions use."""

    name: str
    ref: ServiceKey
    exists: bool = False
    vips: tuple[str, ...] = ()
    ports: frozenset[tuple[int, str]] = frozenset()
    ready_endpoints: int = 0
    healthy: bool = False  # enough ready endpoints right now
    in_service: bool = False  # healthy, and past the hold-down
    healthy_since: float | None = None
    changed_at: float = 0.0  # last in_service transition


@dataclass
class Policy:
    cfg: RewriteConfig
    gateways: dict[str, GatewayState] = field(default_factory=dict)
    transitions: int = 0  # gateway in/out-of-service transitions, for metrics

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.enroll = parse_selector(cfg.enroll_selector)
        self.shadow = parse_selector(cfg.shadow_selector) if cfg.shadow_selector else None
        self.refs: dict[str, ServiceKey] = dict(cfg.gateway_refs)
        self.gateways = {name: GatewayState(name, ref) for name, ref in self.refs.items()}
        self.excluded_namespaces = frozenset(cfg.exclude_namespaces) | {
            ref[0] for ref in self.refs.values()
        }
        self._gateway_keys = frozenset(self.refs.values())
        self._observed_once = False
        # namespace name -> (the Namespace object, its selector matches); an entry is
        # used only for the very object it was computed from.
        self._selections: dict[str, tuple[Namespace, tuple[bool, bool]]] = {}

    def inherit(self, old: Policy) -> None:
        """Keep gateway health (hold-down included) across a config reload."""
        for name, ref in self.refs.items():
            state = old.gateways.get(name)
            if state is not None and state.ref == ref:
                self.gateways[name] = state
        self.transitions = old.transitions
        self._observed_once = old._observed_once

    def global_keys(self) -> frozenset[ServiceKey]:
        return self._gateway_keys

    # --- gateway health (called by the single writer before deciding) -------
    def observe(
        self,
        services: Mapping[ServiceKey, Service],
        slices: Mapping[ServiceKey, tuple[EndpointSlice, ...]],
        now: float,
    ) -> bool:
        """Refresh every gateway's state; True if any decision may change."""
        changed = False
        for name, ref in self.refs.items():
            before = self.gateways[name]
            after = self._observe_one(before, services.get(ref), slices.get(ref, ()), now)
            if _decision_relevant(before) != _decision_relevant(after):
                changed = True
            if before.in_service != after.in_service and self._observed_once:
                self.transitions += 1
                log.warning(
                    "gateway in service" if after.in_service else "gateway out of service",
                    extra={"fields": {
                        "gateway": name, "service": "/".join(ref),
                        "ready_endpoints": after.ready_endpoints,
                        "exists": after.exists,
                        "answers": "rewritten" if after.in_service else "real (fail-open)",
                    }},
                )
            self.gateways[name] = after
        self._observed_once = True
        return changed

    def _observe_one(
        self,
        before: GatewayState,
        service: Service | None,
        slices: tuple[EndpointSlice, ...],
        now: float,
    ) -> GatewayState:
        exists = service is not None and service.kind is ServiceKind.CLUSTER_IP
        ready = len({
            ep.address for slice_ in slices for ep in slice_.endpoints if ep.ready
        }) if exists else 0
        healthy = exists and ready >= self.cfg.min_ready_endpoints
        if not healthy:
            since = None
            in_service = False
        elif not self._observed_once:
            # At start-up there is no failure to recover from: a healthy
            # gateway is used at once, as the other replicas already do.
            since, in_service = now - self.cfg.hold_down_s, True
        else:
            since = before.healthy_since if before.healthy_since is not None else now
            in_service = now - since >= self.cfg.hold_down_s
        return GatewayState(
            name=before.name,
            ref=before.ref,
            exists=exists,
            vips=service.cluster_ips if exists and service else (),
            ports=frozenset((p.port, p.protocol) for p in service.ports) if service else frozenset(),
            ready_endpoints=ready,
            healthy=healthy,
            in_service=in_service,
            healthy_since=since,
            changed_at=now if in_service != before.in_service else before.changed_at,
        )

    def next_deadline(self) -> float | None:
        """When a gateway in hold-down comes back into service (for a timer)."""
        deadlines = [
            g.healthy_since + self.cfg.hold_down_s
            for g in self.gateways.values()
            if g.healthy and not g.in_service and g.healthy_since is not None
        ]
        return min(deadlines, default=None)

    # --- the decision --------------------------------------------------------
    def decide(self, inputs: PolicyInputs) -> Decision:
        service, namespace = inputs.service, inputs.namespace
        cfg = self.cfg
        annotations = service.annotations
        shadow = cfg.shadow
        if annotations.get(cfg.bypass_annotation) == "true":
            return Decision(State.REAL, Rule.ANNOTATION,
                            f"service annotation {cfg.bypass_annotation}=true opts it out")
        enrolled, shadowed = self._selected(namespace)
        if enrolled:
            enrolled_by = (Rule.NAMESPACE_SELECTOR,
                           f"namespace labels match {self.enroll.text!r}")
        elif shadowed and self.shadow is not None:
            shadow = True
            enrolled_by = (Rule.NAMESPACE_SELECTOR,
                           f"namespace labels match the shadow selector {self.shadow.text!r}")
        elif annotations.get(cfg.enroll_annotation) == "true":
            enrolled_by = (Rule.ANNOTATION,
                           f"service annotation {cfg.enroll_annotation}=true opts it in")
        else:
            return Decision(State.REAL, Rule.NAMESPACE_SELECTOR,
                            f"namespace labels do not match {self.enroll.text!r}")
        decision = self._enrolled(service, namespace, *enrolled_by)
        if shadow and decision.state in (State.REWRITTEN, State.FAIL_OPEN):
            return Decision(State.SHADOW, decision.rule,
                            f"shadow mode: would be {decision.state.value} ({decision.reason})",
                            decision.gateway, (), would=decision.state)
        return decision

    def _selected(self, namespace: Namespace) -> tuple[bool, bool]:
        """(enroll selector matches, shadow selector matches), once per Namespace object:
        a namespace's thousand Services share the answer."""
        held = self._selections.get(namespace.name)
        if held is not None and held[0] is namespace:
            return held[1]
        answer = (self.enroll.matches(namespace.labels),
                  self.shadow is not None and self.shadow.matches(namespace.labels))
        if len(self._selections) > 100_000:  # bounded: deleted namespaces leave entries
            self._selections.clear()
        self._selections[namespace.name] = (namespace, answer)
        return answer

    def _enrolled(
        self, service: Service, namespace: Namespace, rule: Rule, why: str
    ) -> Decision:
        if service.namespace in self.excluded_namespaces:
            return Decision(State.EXCLUDED, Rule.EXCLUSION,
                            f"namespace {service.namespace} is excluded")
        if service.kind is ServiceKind.HEADLESS:
            return Decision(State.EXCLUDED, Rule.EXCLUSION, "headless service")
        if service.kind is ServiceKind.EXTERNAL_NAME:
            return Decision(State.EXCLUDED, Rule.EXCLUSION, "ExternalName service")
        if (service.namespace, service.name) in self._gateway_keys:
            return Decision(State.EXCLUDED, Rule.EXCLUSION, "a gateway service itself")
        if not self.refs:
            return Decision(State.REAL, Rule.NO_GATEWAY, "no gateway configured")
        name = namespace.labels.get(self.cfg.gateway_label, self.cfg.default_gateway)
        gateway = self.gateways.get(name)
        if gateway is None:
            return Decision(State.FAIL_OPEN, Rule.GATEWAY_HEALTH,
                            f"namespace picks unknown gateway {name!r}")
        if not gateway.exists:
            return Decision(State.FAIL_OPEN, Rule.GATEWAY_HEALTH,
                            f"gateway service {'/'.join(gateway.ref)} is missing", name)
        if self.cfg.require_gateway_ports:
            missing = [p for p in service.ports if (p.port, p.protocol) not in gateway.ports]
            if missing:
                shown = ", ".join(f"{p.port}/{p.protocol}" for p in missing)
                return Decision(State.EXCLUDED, Rule.PORT_MISMATCH,
                                f"gateway {name} does not expose {shown}", name)
        if not gateway.in_service:
            detail = (
                f"fewer than {self.cfg.min_ready_endpoints} ready endpoints"
                if not gateway.healthy
                else f"recovering, hold-down {self.cfg.hold_down_s:g}s"
            )
            return Decision(State.FAIL_OPEN, Rule.GATEWAY_HEALTH,
                            f"gateway {name} out of service: {detail}", name)
        return Decision(State.REWRITTEN, rule, why, name, gateway.vips)


def _decision_relevant(state: GatewayState) -> tuple[object, ...]:
    """The parts of a gateway's state that decisions read."""
    return (state.exists, state.vips, state.ports, state.healthy, state.in_service)
