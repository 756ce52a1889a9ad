#!/usr/bin/env python3
"""Run the dnsrewrite CLI from a given source tree, with benchmark tracing.

    python benchmarks/serve_traced.py SRC TRACE serve --config ...

SRC is the directory that holds the `dnsrewrite` package to run (a snapshot of the
working tree or an extracted commit, so that edits made while a benchmark runs do not
change what it measures). TRACE is a file that gets one line per traced event, every
time a `time.monotonic()` value (one clock for every process on the machine, so the
benchmark can line events up with its probe's):

    start     T RSS_KB                       interpreter up
    imported  T RSS_KB                       dnsrewrite, kubernetes and aiohttp imported
    gc        T SECONDS GENERATION COLLECTED every gen-2 collection and any other >= 1 ms
    fetch     T SECONDS KIND ITEMS           kube.list_pages: the paged list over HTTP + json
    list      T SECONDS KIND                 ResourceWatcher._list: fetch + convert + submit
    replace   T SECONDS KINDS                ClusterBuilder.replace_all (in the writer thread)
    publishing T                             ClusterBuilder.publish begins
    publish   T SECONDS CPU_S FULL DIRTY_SVC DIRTY_NS SYNCED   ... and ends (T: its start;
              CPU_S: the writer thread's CPU time in it; FULL: everything marked dirty)

Nothing in dnsrewrite/ is changed: the wrappers are installed on the imported classes
and module here, and cost a clock read and a line each (a few per second at most).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

SRC, TRACE = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
sys.path.insert(0, SRC)
_out = open(TRACE, "w", buffering=1)  # noqa: SIM115 - for the life of the process
_lock = threading.Lock()


def emit(*fields: object) -> None:
    line = " ".join(f"{f:.6f}" if isinstance(f, float) else str(f) for f in fields) + "\n"
    with _lock:
        _out.write(line)


def rss_kb() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


emit("start", time.monotonic(), rss_kb())

_gc_start = [0.0]


def _gc_callback(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_start[0] = time.monotonic()
        return
    took = time.monotonic() - _gc_start[0]
    if info["generation"] == 2 or took >= 0.001:
        # No lock here: a collection can start while another thread holds it.
        _out.write(f"gc {_gc_start[0]:.6f} {took:.6f} {info['generation']} "
                   f"{info.get('collected', 0)}\n")


gc.callbacks.append(_gc_callback)

from dnsrewrite import app as _app  # noqa: E402,F401 - imported now to time the imports
from dnsrewrite import kube, watch  # noqa: E402
from dnsrewrite.cluster import ClusterBuilder  # noqa: E402

emit("imported", time.monotonic(), rss_kb())

_list_pages = kube.list_pages


def _traced_list_pages(api, resource, *args, **kwargs):  # type: ignore[no-untyped-def]
    """The pages as they come; one `fetch` line per kind with the HTTP + json time."""
    fetching, items, pages = 0.0, 0, _list_pages(api, resource, *args, **kwargs)
    t0 = time.monotonic()
    while True:
        start = time.monotonic()
        try:
            page = next(pages)
        except StopIteration:
            break
        fetching += time.monotonic() - start
        items += len(page[0])
        yield page
    emit("fetch", t0, fetching, resource.kind, items)


kube.list_pages = _traced_list_pages  # watch.py calls kube.list_pages through the module

_list = watch.ResourceWatcher._list


def _traced_list(self):  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    try:
        return _list(self)
    finally:
        emit("list", t0, time.monotonic() - t0, self.kind)


watch.ResourceWatcher._list = _traced_list  # type: ignore[method-assign]

_publish = ClusterBuilder.publish


def _traced_publish(self, now):  # type: ignore[no-untyped-def]
    full = int(bool(getattr(self, "_everything_dirty", False)))
    dirty = len(getattr(self, "_dirty_services", ()))
    dirty_ns = len(getattr(self, "_dirty_namespaces", ()))
    t0, c0 = time.monotonic(), time.thread_time()
    emit("publishing", t0)
    try:
        return _publish(self, now)
    finally:
        emit("publish", t0, time.monotonic() - t0, time.thread_time() - c0, full, dirty,
             dirty_ns, int(bool(getattr(self, "synced", False))))


ClusterBuilder.publish = _traced_publish  # type: ignore[method-assign]

_replace_all = ClusterBuilder.replace_all


def _traced_replace_all(self, namespaces=None, services=None, slices=None):  # type: ignore[no-untyped-def]
    kinds = ",".join(kind for kind, objs in (("Namespace", namespaces), ("Service", services),
                                             ("EndpointSlice", slices)) if objs is not None)
    t0 = time.monotonic()
    try:
        return _replace_all(self, namespaces, services, slices)
    finally:
        emit("replace", t0, time.monotonic() - t0, kinds or "-")


ClusterBuilder.replace_all = _traced_replace_all  # type: ignore[method-assign]

from dnsrewrite.cli import main  # noqa: E402

if __name__ == "__main__":
    code = main()
    _out.flush()
    os._exit(code or 0)
