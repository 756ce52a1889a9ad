"""List/watch loops that survive the API server, as client-go's reflector does.

For each of Namespaces, Services and EndpointSlices, one thread runs:
list (paged) -> replace that kind in the store -> watch from the list's
resourceVersion with bookmarks and a randomized server timeout -> on the
stream's normal end, watch again from the last resourceVersion seen.

* 410 Gone (HTTP status or an ERROR event): relist and *replace*, so objects
  deleted while we were away disappear. (`Watch.stream` does not do this.)
* 429: wait Retry-After. Other failures: exponential backoff with full jitter,
  capped, reset once a watch has been healthy for a while.
* A stream silent past the inactivity timeout is reopened.
* Malformed lines and objects are logged, counted and skipped.
The data source is ready once all three initial lists are in; afterwards an
unreachable API server leaves the last good data serving.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dnsrewrite import kube
from dnsrewrite.cluster import ClusterBuilder
from dnsrewrite.model import (
    ModelError,
    endpoint_slice_from_api,
    namespace_from_api,
    service_from_api,
)
from dnsrewrite.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchSettings:
    timeout_s: int = 300  # server-side watch timeout; randomized up to 2x (client-go)
    inactivity_timeout_s: float = 90.0  # > the API server's 60 s bookmark interval
    backoff_initial_s: float = 0.8
    backoff_max_s: float = 30.0
    backoff_reset_s: float = 60.0  # a watch healthy this long resets the backoff
    page_size: int = 500
    request_timeout_s: float = 60.0


class Expired(Exception):
    """The resourceVersion is too old (410 Gone): relist."""


@dataclass
class WatchStats:
    """Counters for metrics and tests (plain integers; exported at scrape time)."""

    restarts: Counter[str] = field(default_factory=Counter)  # by reason
    lists: Counter[str] = field(default_factory=Counter)  # by kind
    events: Counter[str] = field(default_factory=Counter)  # by kind
    skipped: Counter[str] = field(default_factory=Counter)  # malformed lines/objects, by kind
    last_event: float = 0.0  # unix time of the last event or bookmark from any watch


def _converter(kind: str, annotation_keys: frozenset[str]) -> Callable[[dict[str, Any]], Any]:
    if kind == "Namespace":
        return namespace_from_api
    if kind == "Service":
        return partial(service_from_api, annotation_keys=annotation_keys)
    return endpoint_slice_from_api


def _replace(kind: str, objs: list[Any]) -> Callable[[ClusterBuilder], None]:
    def change(builder: ClusterBuilder) -> None:
        if kind == "Namespace":
            builder.replace_all(namespaces=objs)
        elif kind == "Service":
            builder.replace_all(services=objs)
        else:
            builder.replace_all(slices=objs)

    return change


def _upsert(kind: str, obj: Any) -> Callable[[ClusterBuilder], None]:
    if kind == "Namespace":
        return lambda b: b.set_namespace(obj)
    if kind == "Service":
        return lambda b: b.set_service(obj)
    return lambda b: b.set_slice(obj)


def _delete(kind: str, raw: dict[str, Any]) -> Callable[[ClusterBuilder], None]:
    meta = raw.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
    if kind == "Namespace":
        return lambda b: b.delete_namespace(name)
    if kind == "Service":
        return lambda b: b.delete_service(namespace, name)
    return lambda b: b.delete_slice(namespace, name)


class ResourceWatcher:
    def __init__(
        self,
        api: Any,
        resource: kube.Resource,
        writer: Writer,
        settings: WatchSettings,
        stats: WatchStats,
        on_listed: Callable[[str], None],
        stop: threading.Event,
        annotation_keys: frozenset[str],
        list_lock: threading.Lock,
    ) -> None:
        self.api = api
        self.resource = resource
        self.kind = resource.kind
        self.writer = writer
        self.settings = settings
        self.stats = stats
        self.on_listed = on_listed
        self.stop = stop
        self.convert = _converter(resource.kind, annotation_keys)
        # One list converts at a time: three CPU-bound threads contending for the GIL
        # would make the DNS thread wait several switch intervals for it.
        self.list_lock = list_lock
        self.resource_version = ""

    def run(self) -> None:
        s = self.settings
        need_list, backoff = True, s.backoff_initial_s
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                if time.monotonic() - started >= s.backoff_reset_s:
                    backoff = s.backoff_initial_s
                continue  # the server ended the stream: watch again from where we are
            except Expired:
                self._restart("expired")
                need_list = True
                delay = 0.0 if time.monotonic() - started > 1.0 else backoff  # 410 storms
            except kube.ApiException as err:
                if err.status == 410:
                    self._restart("expired")
                    need_list, delay = True, 0.0
                elif err.status == 429:
                    self._restart("throttled")
                    delay = _retry_after(err, backoff)
                else:
                    self._restart(f"http_{err.status}" if err.status else "error")
                    delay = backoff
            except Exception as err:  # connection refused/reset, read timeout, bad JSON
                self._restart(_reason(err))
                log.debug("watch failed", exc_info=True)
                delay = backoff
            if time.monotonic() - started >= s.backoff_reset_s:
                backoff = s.backoff_initial_s  # the failed stream had been healthy a while
            if delay:
                self.stop.wait(random.uniform(0.5, 1.0) * delay)  # jitter
            backoff = min(backoff * 2, s.backoff_max_s)

    def _restart(self, reason: str) -> None:
        self.stats.restarts[reason] += 1
        log.warning("watch restarting", extra={"fields": {
            "resource": self.resource.plural, "reason": reason,
            "resource_version": self.resource_version}})

    def _list(self) -> None:
        s = self.settings
        objs: list[Any] = []
        rv = ""
        for items, page_rv in kube.list_pages(self.api, self.resource, s.page_size,
                                              s.request_timeout_s):
            rv = page_rv
            with self.list_lock:
                for raw in items:
                    obj = self._convert(raw)
                    if obj is not None:
                        # Keep the held object when equal: a relist then holds no
                        # second copy of the cluster, and frees each duplicate at once.
                        objs.append(self.writer.builder.held_equal(obj))
            # The converted objects are acyclic and live until replaced: out of the
            # cyclic collector's sight, or every young collection during a 100,000-object
            # list would rescan all of them (the writer does the same after a publish).
            gc.freeze()
        self.writer.submit(_replace(self.kind, objs), release_memory=True)
        self.resource_version = rv
        self.stats.lists[self.kind] += 1
        self.stats.last_event = time.time()
        log.info("listed", extra={"fields": {
            "resource": self.resource.plural, "objects": len(objs), "resource_version": rv}})
        self.on_listed(self.kind)

    def _convert(self, raw: Any) -> Any:
        try:
            return self.convert(raw)
        except (ModelError, AttributeError, TypeError, ValueError) as err:
            self.stats.skipped[self.kind] += 1
            meta = raw.get("metadata") if isinstance(raw, dict) else None
            where = f"{(meta or {}).get('namespace', '')}/{(meta or {}).get('name', '?')}"
            log.warning("skipped object", extra={"fields": {
                "kind": self.kind, "object": where, "reason": str(err)}})
            return None

    def _watch(self) -> None:
        s = self.settings
        timeout = int(s.timeout_s * random.uniform(1.0, 2.0))
        lines = kube.watch_lines(
            self.api, self.resource, self.resource_version, timeout, s.inactivity_timeout_s
        )
        for line in lines:
            if self.stop.is_set():
                return
            self._event(line)

    def _event(self, line: str) -> None:
        try:
            event = json.loads(line)
            kind, raw = event["type"], event["object"]
            if not isinstance(raw, dict):
                raise ValueError("object is not a mapping")
        except (ValueError, KeyError, TypeError):
            self.stats.skipped[self.kind] += 1
            log.warning("malformed watch line skipped", extra={"fields": {
                "resource": self.resource.plural, "line": line[:200]}})
            return
        if kind == "ERROR":
            if raw.get("code") == 410:
                raise Expired(raw.get("message", ""))
            raise kube.ApiException(status=raw.get("code") or 0, reason=raw.get("message"))
        rv = str((raw.get("metadata") or {}).get("resourceVersion") or "")
        self.stats.last_event = time.time()
        if kind == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        self.stats.events[self.kind] += 1
        if kind == "DELETED":
            self.writer.submit(_delete(self.kind, raw))
        elif kind in ("ADDED", "MODIFIED"):
            obj = self._convert(raw)
            if obj is not None:
                self.writer.submit(_upsert(self.kind, obj))
        else:
            self.stats.skipped[self.kind] += 1
            return
        if rv:
            self.resource_version = rv


def _retry_after(err: kube.ApiException, default: float) -> float:
    headers = err.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _reason(err: Exception) -> str:
    name = type(err).__name__
    if "Timeout" in name:
        return "timeout"
    if isinstance(err, ValueError):
        return "malformed"
    return "connection"


class KubeSource:
    """Three watchers feeding one writer; synced once all three have listed."""

    def __init__(
        self,
        api: Any,
        writer: Writer,
        settings: WatchSettings,
        annotation_keys: frozenset[str],
    ) -> None:
        self.writer = writer
        self.stats = WatchStats()
        self.stop_event = threading.Event()
        self._listed: set[str] = set()
        self._lock = threading.Lock()
        list_lock = threading.Lock()
        self.synced = threading.Event()
        self.watchers = [
            ResourceWatcher(api, resource, writer, settings, self.stats, self._on_listed,
                            self.stop_event, annotation_keys, list_lock)
            for resource in kube.RESOURCES
        ]
        self._threads: list[threading.Thread] = []

    def _on_listed(self, kind: str) -> None:
        with self._lock:
            self._listed.add(kind)
            if len(self._listed) == len(self.watchers) and not self.synced.is_set():
                self.writer.submit(lambda b: setattr(b, "synced", True))
                self.synced.set()
                log.info("synced: all initial lists are in")

    def start(self) -> None:
        for watcher in self.watchers:
            thread = threading.Thread(target=watcher.run, daemon=True,
                                      name=f"watch-{watcher.resource.plural}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
