"""The rewrite decision: does a Service answer with the gateway's VIPs, and why.

Decisions are taken when data is published, never per query: the query path
only reads `ServiceEntry.decision`. Every decision carries its reason so that
explain and the decision log can say why a name resolves as it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from dnsrewrite.config import RewriteConfig
from dnsrewrite.model import EndpointSlice, Namespace, Service, ServiceKind
from dnsrewrite.selector import parse_selector

ServiceKey = tuple[str, str]


class State(Enum):
    REWRITTEN = "rewritten"
    REAL = "real"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Decision:
    state: State
    reason: str
    gateway: ServiceKey | None = None
    vips: tuple[str, ...] = ()  # what A/AAAA answer when rewritten

    @property
    def rewritten(self) -> bool:
        return self.state is State.REWRITTEN


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    service: Service
    namespace: Namespace
    services: Mapping[ServiceKey, Service]
    slices: Mapping[ServiceKey, Mapping[str, EndpointSlice]]


NOT_ENROLLED = Decision(State.REAL, "namespace not enrolled")


class Policy:
    """Enrollment by namespace label selector, rewrite to one gateway Service."""

    def __init__(self, cfg: RewriteConfig) -> None:
        self.cfg = cfg
        self.selector = parse_selector(cfg.enroll_selector)
        self.gateway = cfg.gateway_ref

    def global_keys(self) -> tuple[ServiceKey, ...]:
        return (self.gateway,) if self.gateway else ()

    def decide(self, inputs: PolicyInputs) -> Decision:
        service = inputs.service
        if not self.selector.matches(inputs.namespace.labels):
            return NOT_ENROLLED
        if service.kind is ServiceKind.HEADLESS:
            return Decision(State.EXCLUDED, "headless service")
        if service.kind is ServiceKind.EXTERNAL_NAME:
            return Decision(State.EXCLUDED, "ExternalName service")
        if self.gateway is None:
            return Decision(State.REAL, "no gateway configured")
        if (service.namespace, service.name) == self.gateway:
            return Decision(State.EXCLUDED, "the gateway itself")
        gateway = inputs.services.get(self.gateway)
        if gateway is None or not gateway.cluster_ips:
            return Decision(State.REAL, "gateway service missing", self.gateway)
        return Decision(
            State.REWRITTEN, "namespace enrolled", self.gateway, gateway.cluster_ips
        )
