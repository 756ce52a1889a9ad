"""A fake Kubernetes API server (aiohttp) for tests.

The official ``kubernetes`` Python client talks to it over plain HTTP exactly
as to a real API server::

    async with FakeApiServer() as api:            # pytest-asyncio tests
        api.create(objects.service("default", "web", ports=[("http", 80, "TCP")]))
        cfg = kubernetes.client.Configuration(host=api.url)

    with FakeApiServerThread() as api:            # synchronous tests
        api.create(...)                           # thread-safe proxy of api.server

Served: ``v1`` namespaces and services, ``discovery.k8s.io/v1``
endpointslices (cluster-wide and namespaced collections, single GETs), plus
minimal ``/api``, ``/apis``, ``/api/v1``, ``/apis/discovery.k8s.io/v1`` and
``/version``.  List/watch behaviour follows the real server (see store.py for
the resourceVersion / history model):

* list: ``labelSelector``, ``fieldSelector``, ``limit`` + ``continue``
  (consistent snapshot, real-format token; 410 Expired once compacted),
  ``resourceVersion`` + ``resourceVersionMatch`` (Exact / NotOlderThan).
  Items carry no kind/apiVersion, empty EndpointSlices have
  ``"endpoints": null`` and ``"ports": null``.
* watch (``watch=true|1``): newline-delimited JSON events.  RV unset/"0":
  synthetic ADDED for current objects, then live events; RV=N: events after
  N only.  A modify that moves an object out of (into) a selector arrives as
  DELETED (ADDED), as the watch cache does.  ``allowWatchBookmarks`` gives a
  BOOKMARK every ``bookmark_interval`` seconds; ``timeoutSeconds`` ends the
  stream cleanly; ``sendInitialEvents=true`` + ``resourceVersionMatch=
  NotOlderThan`` ends the initial ADDED burst with a BOOKMARK annotated
  ``k8s.io/initial-events-end: "true"``.  A watch that falls out of the
  history window while running is closed, like a slow watcher on the real
  server.  (Simplification: a watch from a future RV just waits for it; the
  real server gives up after ~3s with "Too large resource version".)
* too-old RV: HTTP 200 + ``{"type":"ERROR","object":<Status 410 Expired>}``
  then end of stream (real behaviour), or - with
  ``expired_watch_response="http"`` - an HTTP 410 Gone with a Status body.

What kubernetes 37.x ``watch.Watch().stream()`` does with these:

* ERROR event with code 410: if ``timeout_seconds`` was passed (retries
  disabled) it raises ``ApiException(status=410, reason="Expired: too old
  resource version: ...")``.  Otherwise it silently reconnects ONCE with the
  same resource_version (its last seen RV); a second 410 in a row raises the
  same ApiException.  It never yields the ERROR event.  Any other ERROR code
  raises immediately.
* HTTP 410 status: the list call itself raises ``ApiException`` (status 410,
  Status JSON in ``.body``); no retry.
* When the server ends a stream cleanly and no ``timeout_seconds`` was given,
  Watch.stream reconnects from the last RV it saw (events or bookmarks) and
  keeps going; with ``timeout_seconds`` the generator just ends.
* A malformed (non-JSON) line is yielded as ``None`` rather than raising
  (valid JSON without "type"/"object" would raise KeyError instead).
* A dropped/truncated stream raises urllib3 ``ProtocolError`` out of the
  generator; a stalled one only ends via the client's ``_request_timeout``
  (``ReadTimeoutError``).
* Before any response bytes arrive, urllib3's default ``Retry(3)`` hides
  faults: a dropped connection or a read timeout is retried up to 3 times,
  and a 429 with ``Retry-After`` is retried after sleeping that long (status
  429/413/503 + Retry-After are retried even without ``status_forcelist``).
  With ``Configuration.retries = 0`` every fault surfaces at once: a 429
  raises ``ApiException(status=429)`` with ``e.headers["Retry-After"]``, a drop
  raises ``MaxRetryError``.  500 is never retried (``client_go_retries`` is
  off by default).
* A malformed list body raises ``json.JSONDecodeError`` (not ApiException).

Test control (sync methods, call on the loop or via FakeApiServerThread):
``create(obj)``, ``load(objs, copy=True)``, ``update(obj)``,
``delete(kind, ns, name)``, ``get(kind, ns, name)``, ``get_rv()``,
``bump_rv(n)``, ``compact()``, ``close_watches(abrupt=True)``,
``open_watches()``, ``fail_next(fault, count, resource=, verb=,
retry_after=)``, ``clear_faults()``, ``requests(path=, watch=)`` ->
``RequestRecord(method, path, query)``, ``clear_requests()``; async:
``start()``, ``stop()``, ``take_down()``, ``bring_up()``.  Knobs (plain
attributes): ``bookmark_interval``, ``expired_watch_response``; constructor:
``history_size``, ``initial_rv``.

Faults (``fail_next``) for the next N matching requests: "drop" (abort the
TCP connection before responding), "silent" (watch: 200 + headers then
nothing; list: no response at all; held until close_watches/stop/down),
"429" (with Retry-After), "500", "malformed" (watch: a broken JSON line first,
then the normal stream; list: 200 with invalid JSON), "truncate" (watch: half
an event line then abort; list: half the declared body then abort),
"expired" (answer as if the RV were compacted).

Threading: every method of FakeApiServer must run on its event loop.  From
other threads use FakeApiServerThread, which proxies every method through the
loop and waits for the result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import RESOURCES, Expired, Resource, Store, resource_for

FAULTS = ("drop", "silent", "429", "500", "malformed", "truncate", "expired")

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list "
    "result. You can start a new list without the continue parameter, or use "
    "the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent "
    "list - objects that were created, modified, or deleted between the time "
    "the first chunk was returned and now may show up in the list."
)


def _dumps(obj: Any) -> bytes:
    # The API server emits compact JSON.
    return json.dumps(obj, separators=(",", ":")).encode()


def parse_bool(value: str | None, default: bool | None = False) -> bool | None:
    """Go's strconv.ParseBool, which the API server uses for query flags."""
    if value is None:
        return default
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid boolean {value!r}")


def status_body(code: int, reason: str, message: str, details: dict | None = None,
                metadata: dict | None = None) -> dict:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
            "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def status_response(code: int, reason: str, message: str, headers: dict | None = None,
                    **kw: Any) -> web.Response:
    return web.Response(status=code, body=_dumps(status_body(code, reason, message, **kw)),
                        content_type="application/json", headers=headers)


def encode_continue(rv: int, start: str) -> str:
    # Same shape as the real token: base64url(JSON) without padding.
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("wrong version")
        return int(data["rv"]), str(data["start"])
    except Exception as e:  # any garbage is a 400, as on the real server
        raise ValueError(f"continue key is not valid: {e}") from None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict  # last value of each query parameter

    @property
    def watch(self) -> bool:
        return parse_bool(self.query.get("watch"), False) or False


@dataclass
class _Fault:
    name: str
    remaining: int
    resource: str | None
    verb: str | None
    retry_after: int


@dataclass(eq=False)
class _Stream:
    """An open watch (or a request held by the "silent" fault)."""
    request: web.Request
    closing: bool = False


@dataclass
class _WatchParams:
    match: Callable[[dict], bool]
    cursor: int
    initial: bool
    initial_end_bookmark: bool
    bookmarks: bool
    timeout: float | None
    expired: str | None = None  # too-old message, if the RV is gone


class FakeApiServer:
    """The fake API server; see the module docstring.  Bind with start() or
    ``async with``; ``.url`` is valid afterwards."""

    def __init__(self, *, history_size: int = 10_000, bookmark_interval: float = 1.0,
                 expired_watch_response: str = "event", initial_rv: int = 1000,
                 host: str = "127.0.0.1", port: int = 0):
        self.store = Store(history_size, initial_rv, on_change=self._kick)
        self.bookmark_interval = bookmark_interval
        # "event": 200 + ERROR event (real server); "http": HTTP 410 Gone.
        self.expired_watch_response = expired_watch_response
        self.host, self.port = host, port
        self._changed = asyncio.Event()
        self._faults: list[_Fault] = []
        self._log: list[RequestRecord] = []
        self._streams: set[_Stream] = set()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._down = False
        self._stopping = False

    # --- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeApiServer:
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        # handler_cancellation: a watch whose client went away is cancelled
        # at once instead of lingering until its next write.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=2.0)
        await self._runner.setup()
        await self._listen()
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._close_streams(abrupt=False)
        if self._listener:
            self._listener.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeApiServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _listen(self) -> None:
        # Our own listener (not a TCPSite) so take_down() can stop accepting
        # without waiting for connections, and bring_up() can rebind the port.
        loop = asyncio.get_running_loop()
        assert self._runner is not None and self._runner.server is not None
        self._listener = await loop.create_server(self._runner.server, self.host, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def take_down(self) -> None:
        """Simulate the API server going away: refuse new connections and
        abort every open one (idle keep-alive connections included)."""
        self._down = True
        if self._listener:
            self._listener.close()
            self._listener = None
        assert self._runner is not None and self._runner.server is not None
        for handler in self._runner.server.connections:
            if handler.transport is not None:
                handler.transport.abort()

    async def bring_up(self) -> None:
        """Listen again on the same port."""
        self._down = False
        if self._listener is None:
            await self._listen()

    # --- test control: objects ----------------------------------------------

    def create(self, obj: dict) -> dict:
        """Store a new object (dict with kind); returns it as served."""
        return self._with_kind(resource_for(obj["kind"]), self.store.create(obj))

    def load(self, objs, copy: bool = True) -> int:
        """Bulk create (one watcher wake-up).  copy=False skips the deep copy
        for speed; the caller must then not mutate the dicts afterwards."""
        return self.store.load(objs, copy)

    def update(self, obj: dict) -> dict:
        """Replace an existing object (uid/creationTimestamp are kept)."""
        return self._with_kind(resource_for(obj["kind"]), self.store.update(obj))

    def delete(self, kind: str, namespace: str | None, name: str) -> dict:
        """Delete at once (no graceful deletion, no namespace cascade)."""
        return self._with_kind(resource_for(kind), self.store.delete(kind, namespace, name))

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        res = resource_for(kind)
        obj = self.store.objects[res.plural].get(self.store.key(res, namespace, name))
        return None if obj is None else self._with_kind(res, obj)

    def get_rv(self) -> str:
        return str(self.store.rv)

    def bump_rv(self, n: int = 1) -> str:
        """Advance the RV as writes to other resources would."""
        return str(self.store.bump(n))

    def compact(self) -> None:
        """Forget all history: watches/continues from older RVs get 410."""
        self.store.compact()

    def close_watches(self, abrupt: bool = True) -> int:
        """Drop every open watch.  abrupt=True aborts the TCP connection
        (client sees a broken chunked stream); False ends it cleanly."""
        return self._close_streams(abrupt)

    # --- test control: faults and request log -------------------------------

    def fail_next(self, fault: str, count: int = 1, *, resource: str | None = None,
                  verb: str | None = None, retry_after: int = 1) -> None:
        """Script `fault` for the next `count` requests matching `resource`
        ("namespaces"/"services"/"endpointslices"/None=any) and `verb`
        ("list"/"watch"/"get"/None=any)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        if resource is not None:
            resource = resource_for(resource).plural
        self._faults.append(_Fault(fault, count, resource, verb, retry_after))

    def clear_faults(self) -> None:
        self._faults.clear()

    def requests(self, path: str | None = None, watch: bool | None = None) -> list[RequestRecord]:
        return [r for r in self._log
                if (path is None or r.path == path) and (watch is None or r.watch == watch)]

    def clear_requests(self) -> None:
        self._log.clear()

    def open_watches(self) -> int:
        return len(self._streams)

    # --- internals ----------------------------------------------------------

    @staticmethod
    def _with_kind(res: Resource, obj: dict) -> dict:
        """A copy with kind/apiVersion first, as single objects are served."""
        return json.loads(_dumps({"kind": res.kind, "apiVersion": res.api_version, **obj}))

    def _kick(self) -> None:
        """Wake every watch loop (they re-read the history)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _close_streams(self, abrupt: bool) -> int:
        streams = list(self._streams)
        for s in streams:
            s.closing = True
            if abrupt and s.request.transport is not None:
                s.request.transport.abort()
        self._kick()
        return len(streams)

    def _take_fault(self, resource: str, verb: str) -> _Fault | None:
        for f in self._faults:
            if f.resource in (None, resource) and f.verb in (None, verb):
                f.remaining -= 1
                if f.remaining <= 0:
                    self._faults.remove(f)
                return f
        return None

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never reaches the client; aiohttp ignores it

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        self._log.append(RequestRecord(request.method, request.path, dict(request.query)))
        if self._down:
            return self._drop(request)
        resp = await handler(request)
        if isinstance(resp, web.StreamResponse) and not resp.prepared:
            resp.headers.setdefault("Cache-Control", "no-cache, private")
        return resp

    def _add_routes(self, app: web.Application) -> None:
        r = app.router
        # The client asks for discovery paths with a trailing slash.
        for path, handler in [("/version", self._version), ("/api", self._api_versions),
                              ("/apis", self._api_groups)] + [
                (prefix, functools.partial(self._resource_list, prefix))
                for prefix in {res.prefix for res in RESOURCES.values()}] + [
                ("/apis/discovery.k8s.io", self._discovery_group)]:
            r.add_get(path, handler)
            r.add_get(path + "/", handler)
        for res in RESOURCES.values():
            if res.namespaced:
                r.add_get(f"{res.prefix}/{res.plural}", functools.partial(self._collection, res))
                r.add_get(f"{res.prefix}/namespaces/{{namespace}}/{res.plural}",
                          functools.partial(self._collection, res))
                r.add_get(f"{res.prefix}/namespaces/{{namespace}}/{res.plural}/{{name}}",
                          functools.partial(self._get_one, res))
            else:
                r.add_get(f"{res.prefix}/{res.plural}",
                          functools.partial(self._collection, res))
                r.add_get(f"{res.prefix}/{res.plural}/{{name}}",
                          functools.partial(self._get_one, res))
        r.add_route("*", "/{tail:.*}", self._not_found)

    # --- discovery ----------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return status_response(
                405, "MethodNotAllowed",
                "the server does not allow this method on the requested resource")
        return status_response(404, "NotFound", "the server could not find the requested resource",
                                details={})

    async def _version(self, request: web.Request) -> web.Response:
        return web.Response(body=_dumps({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fakeapi",
            "gitCommit": "0" * 40, "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0",
            "compiler": "gc", "platform": "linux/amd64"}), content_type="application/json")

    async def _api_versions(self, request: web.Request) -> web.Response:
        return web.Response(body=_dumps({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": f"{self.host}:{self.port}"}]}),
            content_type="application/json")

    async def _api_groups(self, request: web.Request) -> web.Response:
        gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
        return web.Response(body=_dumps({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": "discovery.k8s.io", "versions": [gv], "preferredVersion": gv}]}),
            content_type="application/json")

    async def _discovery_group(self, request: web.Request) -> web.Response:
        gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
        return web.Response(body=_dumps({"kind": "APIGroup", "apiVersion": "v1",
                                         "name": "discovery.k8s.io", "versions": [gv],
                                         "preferredVersion": gv}),
                            content_type="application/json")

    async def _resource_list(self, prefix: str, request: web.Request) -> web.Response:
        resources = [{"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": ["get", "list", "watch"]}
                     for r in RESOURCES.values() if r.prefix == prefix]
        gv = prefix.removeprefix("/api/").removeprefix("/apis/")
        return web.Response(body=_dumps({"kind": "APIResourceList", "apiVersion": "v1",
                                         "groupVersion": gv, "resources": resources}),
                            content_type="application/json")

    # --- resources ----------------------------------------------------------

    async def _get_one(self, res: Resource, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault(res.plural, "get")
        if fault:
            early = await self._fault_before_response(request, fault, watch=False)
            if early is not None:
                return early
        name = request.match_info["name"]
        obj = self.store.objects[res.plural].get(
            self.store.key(res, request.match_info.get("namespace"), name))
        if obj is None:
            return status_response(404, "NotFound", f'{res.plural} "{name}" not found',
                                   details={"name": name, "kind": res.plural})
        return web.Response(body=_dumps({"kind": res.kind, "apiVersion": res.api_version, **obj}),
                            content_type="application/json")

    async def _collection(self, res: Resource, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            watch = bool(parse_bool(q.get("watch")))
        except ValueError as e:
            return status_response(400, "BadRequest", str(e))
        fault = self._take_fault(res.plural, "watch" if watch else "list")
        if fault:
            early = await self._fault_before_response(request, fault, watch)
            if early is not None:
                return early
        try:
            match = self._matcher(res, request.match_info.get("namespace"), q)
        except SelectorError as e:
            return status_response(400, "BadRequest", str(e))
        if watch:
            return await self._watch(res, request, match, fault)
        return await self._list(res, request, match, fault)

    @staticmethod
    def _matcher(res: Resource, namespace: str | None, q) -> Callable[[dict], bool]:
        preds = [p for p in (parse_label_selector(q.get("labelSelector")),
                             parse_field_selector(q.get("fieldSelector"), res.fields)) if p]
        if namespace is not None:
            preds.append(lambda o: o["metadata"].get("namespace") == namespace)
        return lambda o: all(p(o) for p in preds)

    async def _fault_before_response(self, request: web.Request, fault: _Fault,
                                     watch: bool) -> web.StreamResponse | None:
        """Faults that replace the response.  None = carry on (the handler
        applies "malformed"/"truncate"/"expired" itself)."""
        if fault.name == "drop":
            return self._drop(request)
        if fault.name == "429":
            return status_response(
                429, "TooManyRequests", "Too many requests, please try again later.",
                headers={"Retry-After": str(fault.retry_after)},
                details={"retryAfterSeconds": fault.retry_after})
        if fault.name == "500":
            return status_response(500, "InternalError",
                                   "Internal error occurred: injected fault",
                                   details={"causes": [{"message": "injected fault"}]})
        if fault.name == "silent":
            resp = None
            if watch:  # a stalled watch: headers arrive, events never do
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
            stream = _Stream(request)
            self._streams.add(stream)
            try:
                while not (stream.closing or self._stopping):
                    await self._changed.wait()
            finally:
                self._streams.discard(stream)
            return self._drop(request)
        return None

    async def _list(self, res: Resource, request: web.Request, match, fault) -> web.StreamResponse:
        q, store = request.query, self.store
        namespace = request.match_info.get("namespace")
        try:
            limit = int(q.get("limit") or 0)
            rv = q.get("resourceVersion", "")
            rv_match = q.get("resourceVersionMatch", "")
            start = ""
            if q.get("continue"):
                snap, start = decode_continue(q["continue"])
                if snap <= 0:  # an "inconsistent" token: continue from latest
                    snap = store.rv
            elif rv_match == "Exact":
                snap = int(rv)
            else:  # unset, "0", NotOlderThan: the latest state satisfies all
                snap = store.rv
                if rv not in ("", "0") and int(rv) > store.rv:
                    snap = int(rv)
        except ValueError as e:
            return status_response(400, "BadRequest", str(e))
        if snap > store.rv:
            return status_response(
                504, "Timeout", f"Too large resource version: {snap}, current: {store.rv}",
                details={"causes": [{"reason": "ResourceVersionTooLarge",
                                     "message": "Too large resource version"}],
                         "retryAfterSeconds": 1})
        items: list[dict] = []
        more, last = False, ""
        try:
            if fault and fault.name == "expired":
                raise Expired(f"too old resource version: {snap} ({store.compacted_rv})")
            prefix = f"{namespace}/" if namespace is not None else ""
            for key, obj in store.iter_state(res, snap, start, prefix):
                if limit and len(items) >= limit:
                    more = True  # like etcd: "there are more keys", matching or not
                    break
                if match(obj):
                    items.append(obj)
                    last = key
        except Expired as e:
            if q.get("continue"):
                return status_response(410, "Expired", CONTINUE_TOO_OLD, metadata={
                    "continue": encode_continue(-1, start)})
            return status_response(410, "Expired", str(e))
        meta: dict = {"resourceVersion": str(snap)}
        if more:
            meta["continue"] = encode_continue(snap, last + "\x00")
        body = _dumps({"kind": res.list_kind, "apiVersion": res.api_version,
                       "metadata": meta, "items": items})
        if fault and fault.name == "malformed":
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        if fault and fault.name == "truncate":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
            return self._drop(request)
        return web.Response(body=body, content_type="application/json")

    def _watch_params(self, request: web.Request, match) -> _WatchParams | web.Response:
        q, store = request.query, self.store
        try:
            rv = q.get("resourceVersion", "")
            rv_match = q.get("resourceVersionMatch", "")
            send_initial = parse_bool(q.get("sendInitialEvents"), None)
            bookmarks = bool(parse_bool(q.get("allowWatchBookmarks")))
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
            requested = int(rv) if rv not in ("", "0") else None
        except ValueError as e:
            return status_response(400, "BadRequest", str(e))
        # Validation as in apimachinery's validateWatchOptions.
        errors = []
        if send_initial is not None and rv_match != "NotOlderThan":
            errors.append("resourceVersionMatch: Forbidden: sendInitialEvents requires "
                          "setting resourceVersionMatch to NotOlderThan")
        if rv_match and send_initial is None:
            errors.append("resourceVersionMatch: Forbidden: resourceVersionMatch is "
                          "forbidden for watch unless sendInitialEvents is provided")
        if errors:
            return status_response(
                422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {", ".join(errors)}',
                details={"group": "meta.k8s.io", "kind": "ListOptions",
                         "causes": [{"reason": "FieldValueForbidden", "message": m,
                                     "field": "resourceVersionMatch"} for m in errors]})
        # sendInitialEvents defaults to true exactly for RV "" / "0".
        initial = send_initial if send_initial is not None else requested is None
        p = _WatchParams(match=match, cursor=store.rv, initial=initial,
                         initial_end_bookmark=bool(send_initial), bookmarks=bookmarks,
                         timeout=timeout)
        if requested is not None and not initial:
            p.cursor = requested
            if requested < store.compacted_rv:
                p.expired = f"too old resource version: {requested} ({store.compacted_rv})"
        return p

    async def _watch(self, res: Resource, request: web.Request, match, fault) -> web.StreamResponse:
        p = self._watch_params(request, match)
        if isinstance(p, web.Response):
            return p
        if fault and fault.name == "expired":
            p.expired = f"too old resource version: {p.cursor} ({self.store.rv})"
        if p.expired and self.expired_watch_response == "http":
            return status_response(410, "Expired", p.expired)

        resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        stream = _Stream(request)
        self._streams.add(stream)
        try:
            if p.expired:
                # The real server answers 200 and reports the error in-band.
                await resp.write(_dumps({"type": "ERROR", "object": status_body(
                    410, "Expired", p.expired)}) + b"\n")
            elif fault and fault.name == "truncate":
                await resp.write(_dumps({"type": "ADDED", "object": {
                    "kind": res.kind, "apiVersion": res.api_version,
                    "metadata": {"name": "truncated"}}})[:30])
                return self._drop(request)
            else:
                if fault and fault.name == "malformed":  # cut off mid-object
                    await resp.write(b'{"type":"ADDED","object":{"kind":"%s",\n'
                                     % res.kind.encode())
                await self._pump(res, resp, stream, p)
            await resp.write_eof()
        except ConnectionError:
            pass  # client went away or we aborted the connection on purpose
        finally:
            self._streams.discard(stream)
        return resp

    def _event_line(self, res: Resource, type_: str, obj: dict) -> bytes:
        return _dumps({"type": type_, "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                 **obj}}) + b"\n"

    def _bookmark_line(self, res: Resource, rv: int, initial_end: bool = False) -> bytes:
        meta: dict = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _dumps({"type": "BOOKMARK", "object": {"kind": res.kind,
                                                      "apiVersion": res.api_version,
                                                      "metadata": meta}}) + b"\n"

    async def _pump(self, res: Resource, resp: web.StreamResponse, stream: _Stream,
                    p: _WatchParams) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + p.timeout if p.timeout else None
        cursor = p.cursor
        if p.initial:
            # Snapshot synchronously (no await) so it is exactly state@cursor.
            snapshot = [o for _, o in self.store.iter_state(res, self.store.rv) if p.match(o)]
            for i in range(0, len(snapshot), 1000):
                await resp.write(b"".join(self._event_line(res, "ADDED", o)
                                          for o in snapshot[i:i + 1000]))
            if p.initial_end_bookmark:
                await resp.write(self._bookmark_line(res, cursor, initial_end=True))
        next_bookmark = loop.time() + self.bookmark_interval if p.bookmarks else None

        while not (stream.closing or self._stopping):
            wake = self._changed  # grab before reading, so no wake-up is lost
            try:
                events = self.store.events_after(cursor)
            except Expired:
                return  # fell behind the history window: close, client re-lists
            lines = []
            for e in events:
                if e.resource == res.plural:
                    visible = self._visible(e, p.match)
                    if visible:
                        lines.append(self._event_line(res, *visible))
            cursor = max(cursor, self.store.rv)
            if lines:
                await resp.write(b"".join(lines))
            now = loop.time()
            if next_bookmark is not None and now >= next_bookmark:
                await resp.write(self._bookmark_line(res, cursor))
                next_bookmark = now + self.bookmark_interval
            if deadline is not None and now >= deadline:
                return
            waits = [t - now for t in (next_bookmark, deadline) if t is not None]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(waits) if waits else None)

    @staticmethod
    def _visible(e, match) -> tuple[str, dict] | None:
        """Event type as seen through a selector (watch cache semantics)."""
        now = match(e.obj)
        before = e.prev is not None and match(e.prev)
        if e.type == "DELETED":
            return ("DELETED", e.obj) if before else None
        if now and before:
            return "MODIFIED", e.obj
        if now:
            return "ADDED", e.obj
        if before:  # left the selector: old content, new RV
            return "DELETED", {**e.prev, "metadata": {**e.prev["metadata"],
                                                      "resourceVersion": str(e.rv)}}
        return None


class FakeApiServerThread:
    """FakeApiServer on its own event loop in a daemon thread, for sync tests.

    Every public method of the server is available here and runs on the
    server's loop (coroutines are awaited there); the call blocks until done::

        with FakeApiServerThread(bookmark_interval=0.2) as api:
            api.create(objects.namespace("a"))
            api.fail_next("500", resource="services")
            api.server.expired_watch_response = "http"   # plain attributes
    """

    def __init__(self, **kwargs: Any):
        self.server = FakeApiServer(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="fakeapi", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> FakeApiServerThread:
        self._thread.start()
        self.call(self.server.start)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.call(self.server.stop)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FakeApiServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run fn(*args, **kwargs) on the server loop and return its result."""
        async def run():
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=60)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.server, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return functools.partial(self.call, attr)
