"""Composition root: config -> data source -> writer -> cluster view -> DNS + admin servers.

The App owns the one reference that queries read (`view`), swapped whole by
the writer thread on every publish, and the lifecycle: SIGHUP (or a changed
config file) reloads config and cluster file; SIGTERM/SIGINT turn /ready 503,
keep answering for the lame-duck period, then stop. The data source is the
cluster file when one is configured, else the Kubernetes API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from aiohttp import web

from dnsrewrite import clusterfile, config
from dnsrewrite.admin import make_admin_app
from dnsrewrite.answer import Answerer
from dnsrewrite.cluster import ClusterBuilder, ClusterView
from dnsrewrite.config import Config, parse_listen
from dnsrewrite.metrics import make_registry
from dnsrewrite.policy import Policy
from dnsrewrite.querylog import QueryLog
from dnsrewrite.rrl import ResponseRateLimiter
from dnsrewrite.server import DnsServer
from dnsrewrite.writer import Writer

log = logging.getLogger("dnsrewrite")

# Changing these needs a restart: sockets are bound and watches started once.
_RESTART_KEYS = ("listen", "admin_listen", "tcp", "kubernetes", "query_log", "query_log_sample",
                 "udp_io", "rrl")


class App:
    def __init__(
        self,
        cfg: Config,
        api_client: object | None = None,
        config_path: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """`api_client`: a ready kubernetes ApiClient (tests); else built from cfg.
        `config_path` and `overrides` let reloads re-read the file with the same flags."""
        self.cfg = cfg
        self.config_path = config_path
        self.overrides = overrides or {}
        self.policy = Policy(cfg.rewrite)
        self.builder = ClusterBuilder(self.policy)
        self.view = ClusterView()
        self.answerer = Answerer(cfg, lambda: self.view)
        self.registry, self.programming = make_registry(self, self._server_label)
        rrl = cfg.rrl
        self.rrl = ResponseRateLimiter(
            rrl.responses_per_second, rrl.slip, rrl.large_bytes, rrl.ipv4_prefix, rrl.ipv6_prefix
        ) if rrl.enabled else None
        self.writer = Writer(self.builder, self._set_view, cfg.kubernetes.publish_window_s,
                             on_programmed=self.programming.observe)
        self.server = DnsServer(
            self.answer,
            cfg.listen_addresses,
            idle_timeout_s=cfg.tcp.idle_timeout_s,
            max_connections=cfg.tcp.max_connections,
            query_log=QueryLog(cfg.query_log_sample) if cfg.query_log else None,
            udp_mode=cfg.udp_io,
            udp_filter=self.rrl.filter if self.rrl is not None else None,
        )
        self._api_client = api_client
        self.kube_source: Any = None
        self.shutting_down = False
        self._skip_lameduck = False
        self.reload_failures = 0
        self.admin_bound: tuple[str, int] | None = None
        self._admin_runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None
        self._config_stamp = _stamp(config_path)

    def answer(self, packet: bytes, tcp: bool, family: str = "1") -> bytes | None:
        return self.answerer.answer(packet, tcp, family)  # the answerer is swapped on reload

    def _set_view(self, view: ClusterView) -> None:
        self.view = view  # one reference swap: readers see the old view or the new one

    def _server_label(self) -> str:
        host, port = self.server.bound[0] if self.server.bound else ("", 53)
        return f"dns://{host}:{port}"

    @property
    def ready(self) -> bool:
        return self.view.synced

    def data_confirmed_at(self) -> float:
        """When the data was last known good: its last change, or the API's last word."""
        confirmed = self.view.updated_at
        if self.kube_source is not None:
            confirmed = max(confirmed, self.kube_source.stats.last_event)
        return confirmed

    # --- data sources --------------------------------------------------------
    def load_cluster_file(self) -> bool:
        """(Re)read the cluster file; on failure keep serving what we had.

        Blocks until the new data is published; call it off the event loop.
        """
        path = self.cfg.cluster_file
        assert path is not None
        try:
            snapshot = clusterfile.load(path, self.cfg.rewrite.annotation_keys)
        except clusterfile.ClusterFileError as err:
            self.reload_failures += 1
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

    # --- reload --------------------------------------------------------------
    def reload(self) -> bool:
        """SIGHUP: re-read the config file (if any), then the cluster file (if any)."""
        ok = self.reload_config()
        if self.cfg.cluster_file:
            ok = self.load_cluster_file() and ok
        return ok

    def reload_config(self) -> bool:
        """Apply a changed config file without dropping a query; a bad one is refused."""
        if self.config_path is None:
            return True
        self._config_stamp = _stamp(self.config_path)
        try:
            new = config.load(self.config_path, self.overrides)
        except config.ConfigError as err:
            self.reload_failures += 1
            log.error("config reload refused; keeping the running config",
                      extra={"fields": {"reason": str(err)}})
            return False
        if new == self.cfg:
            return True
        for key in _RESTART_KEYS:
            if getattr(new, key) != getattr(self.cfg, key):
                log.warning("config change needs a restart to apply",
                            extra={"fields": {"key": key}})
        policy = Policy(new.rewrite)
        policy.inherit(self.policy)

        def swap_policy(builder: ClusterBuilder) -> None:
            builder.policy = policy
            builder.mark_all_dirty()

        self.writer.submit(swap_policy).wait(60)
        self.policy = policy
        self.answerer = Answerer(new, lambda: self.view, self.answerer.registry)
        self.cfg = new
        log.info("config reloaded", extra={"fields": {"path": self.config_path}})
        return True

    async def _watch_config_file(self) -> None:
        loop = asyncio.get_running_loop()
        while self.cfg.config_poll_s > 0:
            await asyncio.sleep(self.cfg.config_poll_s)
            if _stamp(self.config_path) != self._config_stamp:
                await loop.run_in_executor(None, self.reload_config)

    # --- lifecycle -----------------------------------------------------------
    def request_stop(self, lameduck: bool = True) -> None:
        """Begin shutdown; a second request (or lameduck=False) skips the lame duck."""
        if self._stop is None:
            return
        if self.shutting_down or not lameduck:
            self._skip_lameduck = True
        self.shutting_down = True
        self._stop.set()

    async def start_admin(self) -> None:
        if self.cfg.admin_listen is None:
            return
        address = parse_listen(self.cfg.admin_listen)
        self._admin_runner = web.AppRunner(make_admin_app(self), access_log=None)
        await self._admin_runner.setup()
        site = web.TCPSite(self._admin_runner, address.host, address.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.admin_bound = sockets[0].getsockname()[:2] if sockets else None
        log.info("admin listening", extra={"fields": {"address": str(self.admin_bound)}})

    async def run(self, install_signals: bool = True) -> None:
        self._stop = asyncio.Event()  # bound to the running loop
        loop = asyncio.get_running_loop()
        await self.start_admin()  # /health answers and /ready says 503 while we sync
        if self.cfg.cluster_file:
            if not await loop.run_in_executor(None, self.load_cluster_file):
                raise SystemExit(2)
        else:
            self.start_kube_source()
        await self.server.start()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.run_in_executor(None, self.reload)
            )
        watcher = (
            asyncio.create_task(self._watch_config_file(), name="config-watch")
            if self.config_path else None
        )
        self._log_examples()
        try:
            await self._stop.wait()
            if not self._skip_lameduck and self.cfg.shutdown.lameduck_s > 0:
                # Lame duck: /ready is 503 so traffic drains, DNS still answers.
                log.info("lame duck", extra={"fields": {"seconds": self.cfg.shutdown.lameduck_s}})
                self._stop.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.cfg.shutdown.lameduck_s)
        finally:
            log.info("shutting down")
            if watcher is not None:
                watcher.cancel()
            if self.kube_source is not None:
                self.kube_source.stop()
            await self.server.stop()
            if self._admin_runner is not None:
                await self._admin_runner.cleanup()
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


def _stamp(path: str | None) -> tuple[float, int, int] | None:
    """What tells a changed file (ConfigMaps change by symlink swap: stat follows it)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size, st.st_ino)
