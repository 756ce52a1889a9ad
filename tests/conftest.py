"""Shared fixtures: the demo config, an in-process App, a real server on a free port."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dnsrewrite import config
from dnsrewrite.app import App

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CONFIG = os.path.join(ROOT, "config", "dnsrewrite.yaml")
DEMO_CLUSTER = os.path.join(ROOT, "config", "demo-cluster.yaml")


def demo_config(**overrides: Any) -> config.Config:
    base = {"listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0"}
    base.update(overrides)
    return config.load(DEMO_CONFIG, base)


def loaded_app(cfg: config.Config) -> App:
    app = App(cfg)
    assert app.load_cluster_file()
    return app


@pytest.fixture
def demo_app() -> App:
    return loaded_app(demo_config())


class ServerThread:
    """An App serving real UDP/TCP sockets from a background event loop."""

    def __init__(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self.app: App | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dns-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.app = App(self.cfg)
            task = asyncio.ensure_future(self.app.run(install_signals=False))
            while not self.app.server.bound and not task.done():
                await asyncio.sleep(0.01)
            self._ready.set()
            await task

        try:
            self.loop.run_until_complete(main())
        except BaseException as err:  # surfaced to the test by start()
            self._error = err
            self._ready.set()

    def start(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        if self._error:
            raise self._error
        return self

    @property
    def port(self) -> int:
        assert self.app is not None
        return self.app.server.bound[0][1]

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the server's loop and return its result."""
        async def wrapper() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    def stop(self) -> None:
        if self.app is not None:
            self.loop.call_soon_threadsafe(self.app.request_stop, False)
        self._thread.join(10)


@pytest.fixture
def demo_server() -> Iterator[ServerThread]:
    server = ServerThread(demo_config()).start()
    yield server
    server.stop()
