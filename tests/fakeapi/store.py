"""In-memory object store with etcd-like resource versions and a watch history.

Mirrors what the API server gets from etcd + its watch cache:

* one global revision counter; every write bumps it by one and stamps the
  object's ``metadata.resourceVersion`` (so RVs of one resource have gaps
  whenever another resource is written - clients must not assume +1 steps);
* a bounded history of change events (``history_size``), oldest dropped first.
  ``compact()`` drops it all.  A watch or paged list that needs events older
  than the retained window gets "410 Expired", like a compacted etcd;
* lists iterate keys in etcd key order (``namespace/name`` byte order), which
  is what makes ``continue`` tokens (``start`` key + snapshot RV) work;
* a list at an older RV (continue pages, ``resourceVersionMatch=Exact``) is
  rebuilt by undoing newer history events, so paging is a consistent
  snapshot as on the real server.

Objects are stored without ``kind``/``apiVersion`` (list items come back like
that from the real server) and are never mutated in place: an update stores a
new dict, so readers holding a reference see a consistent old version.
The store is not thread-safe; the server only touches it from its event loop.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import marshal
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    api_version: str
    prefix: str  # URL prefix of the group version, e.g. "/api/v1"
    namespaced: bool
    fields: frozenset  # field selector labels the real server accepts

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


RESOURCES = {
    r.plural: r
    for r in (
        Resource("namespaces", "Namespace", "v1", "/api/v1", False,
                 frozenset({"metadata.name", "metadata.namespace", "status.phase"})),
        Resource("services", "Service", "v1", "/api/v1", True,
                 frozenset({"metadata.name", "metadata.namespace",
                            "spec.clusterIP", "spec.type"})),
        Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1",
                 "/apis/discovery.k8s.io/v1", True,
                 frozenset({"metadata.name", "metadata.namespace", "addressType"})),
    )
}


def resource_for(kind: str) -> Resource:
    """Accept "Service", "service", "services"...; raise KeyError otherwise."""
    k = kind.lower()
    for r in RESOURCES.values():
        if k in (r.plural, r.kind.lower()):
            return r
    raise KeyError(f"unknown kind {kind!r} (known: {sorted(RESOURCES)})")


class Expired(Exception):
    """The requested resourceVersion is older than the retained history."""


class TooLarge(Exception):
    """The requested resourceVersion is newer than anything stored."""


@dataclass(frozen=True)
class Event:
    rv: int
    resource: str
    key: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict  # new state (for DELETED: last state, stamped with the delete RV)
    prev: dict | None  # state before this event, None for ADDED


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _copy(obj: dict) -> dict:
    # marshal round trip: a deep copy of plain data at C speed (2x faster
    # than json, which matters for 100k-object loads); rejects odd types.
    return marshal.loads(marshal.dumps(obj))


class Store:
    def __init__(self, history_size: int = 10_000, initial_rv: int = 1000,
                 on_change: Callable[[], None] | None = None):
        self.rv = initial_rv
        self.history_size = history_size
        # Watches/lists from an RV below this can't be served from history.
        self.compacted_rv = initial_rv
        self.history: deque[Event] = deque()
        self.objects: dict[str, dict[str, dict]] = {p: {} for p in RESOURCES}
        self._sorted: dict[str, list[str] | None] = {p: [] for p in RESOURCES}
        self.on_change = on_change or (lambda: None)

    # --- writes -------------------------------------------------------------

    @staticmethod
    def key(resource: Resource, namespace: str | None, name: str) -> str:
        return f"{namespace}/{name}" if resource.namespaced else name

    def _record(self, res: Resource, key: str, type_: str, obj: dict, prev: dict | None):
        self.history.append(Event(self.rv, res.plural, key, type_, obj, prev))
        if len(self.history) > self.history_size:
            self.compacted_rv = self.history.popleft().rv

    def _prepare(self, obj: dict, copy: bool) -> tuple[Resource, dict, dict]:
        res = resource_for(obj.get("kind", ""))
        obj = _copy(obj) if copy else dict(obj)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        meta = obj["metadata"] = dict(obj.get("metadata") or {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ValueError("metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        if res.plural == "namespaces":
            # Set by the API server itself since 1.21.
            meta["labels"] = {**(meta.get("labels") or {}),
                              "kubernetes.io/metadata.name": meta["name"]}
        if res.plural == "endpointslices":
            # Real quirk: []Endpoint / []EndpointPort have no omitempty and are
            # nil after the protobuf round trip, so empty slices read as null.
            obj["endpoints"] = obj.get("endpoints") or None
            obj["ports"] = obj.get("ports") or None
        return res, obj, meta

    def create(self, obj: dict, copy: bool = True, notify: bool = True) -> dict:
        res, obj, meta = self._prepare(obj, copy)
        key = self.key(res, meta.get("namespace"), meta["name"])
        live = self.objects[res.plural]
        if key in live:
            raise ValueError(f'{res.plural} "{meta["name"]}" already exists')
        self.rv += 1
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = meta.get("creationTimestamp") or _now()
        meta["resourceVersion"] = str(self.rv)
        live[key] = obj
        self._sorted[res.plural] = None  # key set changed
        self._record(res, key, "ADDED", obj, None)
        if notify:
            self.on_change()
        return obj

    def load(self, objs, copy: bool = True) -> int:
        """Bulk create; linear time, with the cyclic GC paused because it
        otherwise rescans the growing heap over and over."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            n = 0
            for obj in objs:
                self.create(obj, copy=copy, notify=False)
                n += 1
        finally:
            if was_enabled:
                gc.enable()
        self.on_change()
        return n

    def update(self, obj: dict) -> dict:
        res, obj, meta = self._prepare(obj, True)
        key = self.key(res, meta.get("namespace"), meta["name"])
        live = self.objects[res.plural]
        if key not in live:
            raise KeyError(f'{res.plural} "{meta["name"]}" not found')
        prev = live[key]
        self.rv += 1
        # Immutable server-owned fields survive an update.
        meta["uid"] = prev["metadata"]["uid"]
        meta["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
        meta["resourceVersion"] = str(self.rv)
        live[key] = obj
        self._record(res, key, "MODIFIED", obj, prev)
        self.on_change()
        return obj

    def delete(self, kind: str, namespace: str | None, name: str) -> dict:
        res = resource_for(kind)
        key = self.key(res, namespace, name)
        live = self.objects[res.plural]
        if key not in live:
            raise KeyError(f'{res.plural} "{name}" not found')
        prev = live.pop(key)
        self._sorted[res.plural] = None
        self.rv += 1
        # The DELETED event carries the last state stamped with the delete RV.
        gone = {**prev, "metadata": {**prev["metadata"], "resourceVersion": str(self.rv)}}
        self._record(res, key, "DELETED", gone, prev)
        self.on_change()
        return gone

    def bump(self, n: int = 1) -> int:
        """Simulate writes to other resources in the cluster (RV gaps)."""
        self.rv += n
        self.on_change()
        return self.rv

    def compact(self) -> None:
        self.history.clear()
        self.compacted_rv = self.rv

    # --- reads --------------------------------------------------------------

    def events_after(self, rv: int) -> list[Event]:
        """Events with RV > rv, oldest first; Expired if some were dropped."""
        if rv < self.compacted_rv:
            raise Expired(f"too old resource version: {rv} ({self.compacted_rv})")
        i = bisect.bisect_right(self.history, rv, key=lambda e: e.rv)
        return [self.history[j] for j in range(i, len(self.history))]

    def sorted_keys(self, plural: str) -> list[str]:
        # Cached; only creates/deletes invalidate it, so paging a large
        # collection costs one sort, not one per page.
        keys = self._sorted[plural]
        if keys is None:
            keys = self._sorted[plural] = sorted(self.objects[plural])
        return keys

    def iter_state(self, res: Resource, at_rv: int, start: str = "",
                   prefix: str = "") -> Iterator[tuple[str, dict]]:
        """(key, obj) in key order with key >= start and key.startswith(prefix),
        as the collection looked at ``at_rv``."""
        live = self.objects[res.plural]
        keys = self.sorted_keys(res.plural)
        lo = max(start, prefix)
        # "0" sorts right after "/", so this bounds the namespace's key range.
        hi = bisect.bisect_left(keys, prefix[:-1] + "0") if prefix else len(keys)
        live_keys = (keys[i] for i in range(bisect.bisect_left(keys, lo), hi))
        if at_rv >= self.rv:
            for k in live_keys:
                yield k, live[k]
            return
        if at_rv < self.compacted_rv:
            raise Expired(f"too old resource version: {at_rv} ({self.compacted_rv})")
        # Undo newer events: the first event after at_rv for a key tells us
        # what the key held at at_rv (its prev; None = did not exist yet).
        then: dict[str, dict | None] = {}
        for e in self.events_after(at_rv):
            if e.resource == res.plural and e.key not in then:
                then[e.key] = e.prev
        changed = sorted(k for k in then if k >= lo and k.startswith(prefix))
        last = None
        for k in heapq.merge(live_keys, changed):
            if k == last:
                continue
            last = k
            obj = then[k] if k in then else live[k]
            if obj is not None:
                yield k, obj
