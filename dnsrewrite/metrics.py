"""Metrics, defined once: CoreDNS's names and labels for DNS, ours under `dnsrewrite_`.

The query path only bumps plain integers (`QueryStats.record`); a collector
turns them into Prometheus families at scrape time, so no label lookup or
lock is paid per query and no label ever carries a query name. Names and
label sets follow CoreDNS's `prometheus` plugin so its dashboards and alerts
work with only the job selector changed.
"""

from __future__ import annotations

import platform
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from dnsrewrite import __version__
from dnsrewrite.querystats import RCODE_NAMES as _RCODES
from dnsrewrite.querystats import TYPE_NAMES as _TYPES
from dnsrewrite.querystats import Buckets as _Buckets
from dnsrewrite.querystats import QueryStats

if TYPE_CHECKING:
    from dnsrewrite.app import App

class Collector:
    """Exports the App's counters at scrape time."""

    def __init__(self, app: App, server_label: Callable[[], str]) -> None:
        self.app = app
        self.server_label = server_label

    def collect(self) -> Iterator[Any]:
        app, server = self.app, self.server_label()
        stats = app.answerer.registry.merged()
        labels = ["server", "zone", "view", "proto", "family", "type"]
        requests = CounterMetricFamily("coredns_dns_requests_total", "Counter of DNS requests "
                                       "made per zone, protocol and family.", labels=labels)
        responses = CounterMetricFamily("coredns_dns_responses_total", "Counter of response "
                                        "status codes.", labels=["server", "zone", "view",
                                                                 "rcode", "plugin"])
        req_totals: defaultdict[tuple[str, ...], int] = defaultdict(int)
        resp_totals: defaultdict[tuple[str, ...], int] = defaultdict(int)
        for (zone, proto, family, qtype, rcode), n in list(stats.requests.items()):
            req_totals[(server, zone, "", proto, family, _TYPES.get(qtype, "other"))] += n
            resp_totals[(server, zone, "", _RCODES.get(rcode, str(rcode)), "dnsrewrite")] += n
        for key, n in req_totals.items():
            requests.add_metric(list(key), n)
        for key, n in resp_totals.items():
            responses.add_metric(list(key), n)
        yield requests
        yield responses
        yield from self._histogram("coredns_dns_request_duration_seconds",
                                   "Histogram of the time (in seconds) each request took.",
                                   ["server", "zone", "view", "type"], stats.duration, server)
        yield from self._histogram("coredns_dns_request_size_bytes",
                                   "Size of the EDNS0 UDP buffer in bytes (64K for TCP).",
                                   ["server", "zone", "view", "proto"], stats.request_size,
                                   server)
        yield from self._histogram("coredns_dns_response_size_bytes",
                                   "Size of the returned response in bytes.",
                                   ["server", "zone", "view", "proto"], stats.response_size,
                                   server)
        panics = CounterMetricFamily("coredns_panics_total", "A metrics that counts the "
                                     "number of panics.")
        panics.add_metric([], stats.panics)
        yield panics
        info = GaugeMetricFamily("coredns_build_info", "A metric with a constant '1' value "
                                 "labeled by version, revision, and goversion from which "
                                 "CoreDNS was built.", labels=["version", "revision", "goversion"])
        info.add_metric([f"dnsrewrite-{__version__}", "",
                         f"python{platform.python_version()}"], 1)
        yield info
        yield from self._ours(stats)

    @staticmethod
    def _histogram(name: str, doc: str, labels: list[str],
                   source: dict[tuple[str, str], _Buckets], server: str) -> Iterator[Any]:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for (zone, second), buckets in list(source.items()):
            family.add_metric([server, zone, "", second], buckets.family_buckets(),
                              sum_value=buckets.total)
        yield family

    def _ours(self, stats: QueryStats) -> Iterator[Any]:
        app = self.app
        view = app.view
        rewritten = CounterMetricFamily("dnsrewrite_rewritten_answers_total",
                                        "A/AAAA answers given with a gateway's VIPs.")
        rewritten.add_metric([], stats.rewritten)
        yield rewritten
        do = CounterMetricFamily("coredns_dns_do_requests_total", "Queries with the DO bit set.",
                                 labels=["server", "view", "zone"])
        for zone, n in list(stats.do_requests.items()):
            do.add_metric([self.server_label(), "", zone], n)
        yield do
        decisions = GaugeMetricFamily("dnsrewrite_decisions", "Services by rewrite decision.",
                                      labels=["state"])
        from dnsrewrite.policy import State

        for state in State:
            decisions.add_metric([state.value], view.decisions.get(state, 0))
        yield decisions
        changes = CounterMetricFamily("dnsrewrite_decision_changes_total",
                                      "Services whose rewrite decision changed.")
        changes.add_metric([], app.builder.decision_changes)
        yield changes
        ready = GaugeMetricFamily("dnsrewrite_gateway_ready_endpoints",
                                  "Ready endpoints of each gateway.", labels=["gateway"])
        fail_open = GaugeMetricFamily("dnsrewrite_gateway_fail_open",
                                      "1 while a gateway is out of service (its Services "
                                      "answer real records).", labels=["gateway"])
        for name, g in view.gateways.items():
            ready.add_metric([name], g.ready_endpoints)
            fail_open.add_metric([name], 0 if g.in_service else 1)
        yield ready
        yield fail_open
        transitions = CounterMetricFamily("dnsrewrite_gateway_transitions_total",
                                          "Gateway in/out-of-service transitions.")
        transitions.add_metric([], app.policy.transitions)
        yield transitions
        generation = GaugeMetricFamily("dnsrewrite_data_generation",
                                       "Generation of the published cluster view.")
        generation.add_metric([], view.generation)
        yield generation
        age = GaugeMetricFamily("dnsrewrite_data_age_seconds",
                                "Seconds since the data last changed or was confirmed by "
                                "the API server.")
        age.add_metric([], max(0.0, time.time() - app.data_confirmed_at()))
        yield age
        restarts = CounterMetricFamily("dnsrewrite_watch_restarts_total",
                                       "Watch restarts by reason.", labels=["reason"])
        if app.kube_source is not None:
            for reason, n in list(app.kube_source.stats.restarts.items()):
                restarts.add_metric([reason], n)
        yield restarts
        limited = CounterMetricFamily("dnsrewrite_rrl_limited_total",
                                      "UDP replies over the rate limit, by action.",
                                      labels=["action"])
        if app.rrl is not None:
            limited.add_metric(["dropped"], app.rrl.dropped)
            limited.add_metric(["slipped"], app.rrl.slipped)
        yield limited
        reloads = CounterMetricFamily("dnsrewrite_reload_failures_total",
                                      "Config or cluster-file reloads rejected as invalid.")
        reloads.add_metric([], app.reload_failures)
        yield reloads


def make_registry(app: App, server_label: Callable[[], str]) -> tuple[CollectorRegistry,
                                                                        Histogram]:
    registry = CollectorRegistry()
    registry.register(Collector(app, server_label))
    programming = Histogram(
        "dnsrewrite_kubernetes_dns_programming_duration_seconds",
        "Time from a cluster event's arrival to the answer changing (CoreDNS's DNS "
        "programming-duration SLI).",
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=registry,
    )
    return registry, programming
