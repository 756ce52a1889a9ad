"""The single writer: applies changes to the builder and publishes views.

Sources (the cluster file, the watchers) never touch the builder themselves:
they `submit()` small change functions. One thread drains them, coalescing a
burst that arrives within `window_s` into one publish, so queries never see
half an update and a relist or a namespace flip costs one swap. The thread
also wakes when a recovering gateway's hold-down ends. Nothing here runs on
the DNS event loop.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dnsrewrite.cluster import ClusterBuilder, ClusterView

log = logging.getLogger(__name__)

Change = Callable[[ClusterBuilder], None]


@dataclass
class _Item:
    change: Change | None  # None: stop
    release_memory: bool = False  # a big change (a relist): give freed heap back afterwards
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc
        return None


_MALLOC_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Give free heap pages back to the OS (glibc `malloc_trim`).

    A list of 100,000 objects leaves tens of MB free inside the C heap, which
    glibc would otherwise keep: RSS would stay at the list's peak. ctypes
    releases the GIL for the call, so answers go on meanwhile.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Writer:
    def __init__(
        self,
        builder: ClusterBuilder,
        on_publish: Callable[[ClusterView], None],
        window_s: float = 0.01,
        on_programmed: Callable[[float], None] | None = None,
    ) -> None:
        self.builder = builder
        self._on_publish = on_publish
        self._on_programmed = on_programmed
        self.window_s = window_s
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.publishes = 0
        self.failed_changes = 0

    def submit(self, change: Change, release_memory: bool = False) -> threading.Event:
        """Queue a change; the returned event is set once it is published.

        `release_memory`: the change replaces a whole kind; after publishing,
        return the heap that the list's transient objects left free to the OS.
        """
        self._ensure_started()
        item = _Item(change, release_memory)
        self._queue.put(item)
        return item.done

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_Item(None))
            self._thread.join(5)

    def _next_timeout(self) -> float | None:
        deadline = self.builder.policy.next_deadline()
        return None if deadline is None else max(0.0, deadline - time.time())

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._next_timeout())
            except queue.Empty:
                first = None  # a hold-down ended: re-decide
            batch = [first] if first is not None else []
            window_end = time.monotonic() + self.window_s
            while batch:
                remaining = window_end - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            stopping = any(item.change is None for item in batch)
            for item in batch:
                if item.change is None:
                    continue
                try:
                    item.change(self.builder)
                except Exception:
                    self.failed_changes += 1
                    log.exception("change could not be applied; skipped")
            try:
                view = self.builder.publish(time.time())
                self._on_publish(view)
                self.publishes += 1
            except Exception:
                log.exception("publish failed; keeping the previous view")
            now = time.monotonic()
            # The view's objects are acyclic and freed by reference counting:
            # moving them out of the cyclic collector's generations spares every
            # thread the long full collections a large cluster would cost.
            gc.freeze()
            if any(item.release_memory for item in batch):
                trim_heap()
            self.builder.flush_decision_log()
            for item in batch:
                if item.change is not None and self._on_programmed is not None:
                    self._on_programmed(now - item.arrived)
                item.done.set()
            if stopping:
                return
