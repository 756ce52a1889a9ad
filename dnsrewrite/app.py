"""Composition root: config -> data source -> cluster view -> DNS server; signals.

The App owns the one mutable reference that queries read (`view`), swapped
whole on every publish, and the lifecycle: SIGHUP reloads the data source,
SIGTERM/SIGINT stop the server cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from dnsrewrite import clusterfile
from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import ClusterBuilder, ClusterView
from dnsrewrite.config import Config
from dnsrewrite.policy import Policy
from dnsrewrite.server import DnsServer

log = logging.getLogger("dnsrewrite")


class App:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.policy = Policy(cfg.rewrite)
        self.builder = ClusterBuilder(self.policy)
        self.view = ClusterView()
        self.answerer = Answerer(cfg, lambda: self.view)
        self.server = DnsServer(
            self.answerer.answer,
            cfg.listen_addresses,
            idle_timeout_s=cfg.tcp.idle_timeout_s,
            max_connections=cfg.tcp.max_connections,
        )
        self._stop: asyncio.Event | None = None
        self._hold_down_timer: asyncio.TimerHandle | None = None

    def publish(self) -> ClusterView:
        self.view = self.builder.publish(time.time())
        self._schedule_hold_down()
        return self.view

    def _schedule_hold_down(self) -> None:
        """Re-publish when a recovering gateway's hold-down ends."""
        if self._hold_down_timer is not None:
            self._hold_down_timer.cancel()
            self._hold_down_timer = None
        deadline = self.policy.next_deadline()
        if deadline is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # offline use (explain, tests without a loop): nothing to wake
        delay = max(0.0, deadline - time.time()) + 0.001
        self._hold_down_timer = loop.call_later(delay, self.publish)

    def load_cluster_file(self) -> bool:
        """(Re)read the cluster file; on failure keep serving what we had."""
        path = self.cfg.cluster_file
        assert path is not None
        try:
            snapshot = clusterfile.load(path, self.cfg.rewrite.annotation_keys)
        except clusterfile.ClusterFileError as err:
            log.error("cluster file not loaded; keeping the previous data",
                      extra={"fields": {"reason": str(err)}})
            return False
        self.builder.replace_all(snapshot.namespaces, snapshot.services, snapshot.slices)
        self.builder.synced = True
        view = self.publish()
        log.info("cluster file loaded", extra={"fields": {
            "path": path, "namespaces": len(view.namespaces), "services": len(view.services),
            "skipped": len(snapshot.skipped), "generation": view.generation}})
        return True

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, install_signals: bool = True) -> None:
        if self.cfg.cluster_file:
            if not self.load_cluster_file():
                raise SystemExit(2)
        self._stop = asyncio.Event()  # bound to the running loop
        await self.server.start()
        if install_signals:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            if self.cfg.cluster_file:
                loop.add_signal_handler(signal.SIGHUP, self.load_cluster_file)
        self._log_examples()
        await self._stop.wait()
        log.info("shutting down")
        await self.server.stop()

    def _log_examples(self) -> None:
        """Show dig lines that exercise what this data serves."""
        if not self.server.bound:
            return
        host, port = self.server.bound[0]
        zone = self.cfg.cluster_domain
        picks: dict[str, str] = {}
        for entry in self.view.services.values():
            state = entry.decision.state.value
            if state not in picks and entry.service.cluster_ips:
                picks[state] = f"{entry.service.name}.{entry.service.namespace}.svc.{zone}"
        for state, name in sorted(picks.items()):
            log.info("try", extra={"fields": {
                "decision": state, "command": f"dig @{host} -p {port} {name}"}})
