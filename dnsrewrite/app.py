"""Composition root: config -> data source -> writer -> cluster view -> DNS server.

The App owns the one reference that queries read (`view`), swapped whole by
the writer thread on every publish, and the lifecycle: SIGHUP reloads the
cluster file, SIGTERM/SIGINT stop the server cleanly. The data source is the
cluster file when one is configured, else the Kubernetes API.
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
from dnsrewrite.writer import Writer

log = logging.getLogger("dnsrewrite")


class App:
    def __init__(self, cfg: Config, api_client: object | None = None) -> None:
        """`api_client`: a ready `kubernetes.client.ApiClient` (tests); else built from cfg."""
        self.cfg = cfg
        self.policy = Policy(cfg.rewrite)
        self.builder = ClusterBuilder(self.policy)
        self.view = ClusterView()
        self.writer = Writer(self.builder, self._set_view, cfg.kubernetes.publish_window_s)
        self.answerer = Answerer(cfg, lambda: self.view)
        self.server = DnsServer(
            self.answerer.answer,
            cfg.listen_addresses,
            idle_timeout_s=cfg.tcp.idle_timeout_s,
            max_connections=cfg.tcp.max_connections,
        )
        self._api_client = api_client
        self.kube_source = None
        self.started_at = time.time()
        self._stop: asyncio.Event | None = None

    def _set_view(self, view: ClusterView) -> None:
        self.view = view  # one reference swap: readers see the old view or the new one

    @property
    def ready(self) -> bool:
        return self.view.synced

    def load_cluster_file(self) -> bool:
        """(Re)read the cluster file; on failure keep serving what we had.

        Blocks until the new data is published; call it off the event loop.
        """
        path = self.cfg.cluster_file
        assert path is not None
        try:
            snapshot = clusterfile.load(path, self.cfg.rewrite.annotation_keys)
        except clusterfile.ClusterFileError as err:
            log.error("cluster file not loaded; keeping the previous data",
                      extra={"fields": {"reason": str(err)}})
            return False

        def replace(builder: ClusterBuilder) -> None:
            builder.replace_all(snapshot.namespaces, snapshot.services, snapshot.slices)
            builder.synced = True

        self.writer.submit(replace).wait(60)
        view = self.view
        log.info("cluster file loaded", extra={"fields": {
            "path": path, "namespaces": len(view.namespaces), "services": len(view.services),
            "skipped": len(snapshot.skipped), "generation": view.generation}})
        return True

    def start_kube_source(self) -> None:
        from dnsrewrite import kube
        from dnsrewrite.watch import KubeSource, WatchSettings

        k = self.cfg.kubernetes
        api = self._api_client or kube.make_api_client(k.kubeconfig)
        settings = WatchSettings(
            timeout_s=k.watch_timeout_s,
            inactivity_timeout_s=k.inactivity_timeout_s,
            backoff_initial_s=k.backoff_initial_s,
            backoff_max_s=k.backoff_max_s,
            backoff_reset_s=k.backoff_reset_s,
            page_size=k.page_size,
        )
        self.kube_source = KubeSource(api, self.writer, settings, self.cfg.rewrite.annotation_keys)
        self.kube_source.start()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, install_signals: bool = True) -> None:
        self._stop = asyncio.Event()  # bound to the running loop
        loop = asyncio.get_running_loop()
        if self.cfg.cluster_file:
            if not await loop.run_in_executor(None, self.load_cluster_file):
                raise SystemExit(2)
        else:
            self.start_kube_source()
        await self.server.start()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            if self.cfg.cluster_file:
                loop.add_signal_handler(
                    signal.SIGHUP, lambda: loop.run_in_executor(None, self.load_cluster_file)
                )
        self._log_examples()
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down")
            if self.kube_source is not None:
                self.kube_source.stop()
            await self.server.stop()
            self.writer.stop()

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
