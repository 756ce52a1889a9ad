"""The official kubernetes client (37.x) against tests/fakeapi.

These tests pin down both the fake server's behaviour and what the real
client does with it (410 handling, retries, malformed lines...), so a failure
here after a client upgrade means the assumptions in dnsrewrite's watcher
need re-checking too.  Watch.stream is synchronous (urllib3), so most tests
use FakeApiServerThread and run watches in a helper thread.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from types import SimpleNamespace

import aiohttp
import kubernetes
import pytest
import urllib3
from kubernetes.client.rest import ApiException

from tests.fakeapi import FakeApiServer, FakeApiServerThread, objects

pytestmark = pytest.mark.timeout(60)


def make_clients(url: str, retries=None) -> SimpleNamespace:
    cfg = kubernetes.client.Configuration(host=url)
    # urllib3 by default (retries=None -> Retry(3)) silently retries dropped
    # connections, read timeouts and 429s with Retry-After; retries=0 makes
    # every scripted fault visible to the caller.
    cfg.retries = retries
    api_client = kubernetes.client.ApiClient(cfg)
    return SimpleNamespace(
        client=api_client,
        core=kubernetes.client.CoreV1Api(api_client),
        disc=kubernetes.client.DiscoveryV1Api(api_client),
    )


@pytest.fixture
def api():
    with FakeApiServerThread(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def k(api):
    clients = make_clients(api.url)
    yield clients
    clients.client.close()


@pytest.fixture
def strict(api):
    clients = make_clients(api.url, retries=0)
    yield clients
    clients.client.close()


class Collector:
    """Runs kubernetes.watch.Watch().stream(func, **kwargs) in a thread."""

    def __init__(self, func, **kwargs):
        self.watch = kubernetes.watch.Watch()
        self.events: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(func, kwargs), daemon=True).start()

    def _run(self, func, kwargs):
        try:
            for event in self.watch.stream(func, **kwargs):
                self.events.put(event)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        finally:
            self.done.set()

    def next(self, timeout: float = 5.0):
        return self.events.get(timeout=timeout)

    def next_of(self, type_: str, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event and event["type"] == type_:
                return event

    def stop(self):
        self.watch.stop()
        self.done.wait(5)


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def names(items) -> list[str]:
    return [i.metadata.name for i in items]


# --- lists -------------------------------------------------------------------


def test_list_each_resource(api, k):
    api.create(objects.namespace("a"))
    api.create(objects.namespace("b"))
    api.create(objects.service("a", "web", cluster_ips=["10.96.0.10"], ports=[("http", 80, "TCP")]))
    api.create(objects.service("b", "db", headless=True, ports=[("pg", 5432, "TCP")]))
    api.create(objects.endpoint_slice(
        "a", "web-abcde", "web", endpoints=[{"addresses": ["10.1.0.5"], "hostname": "web-0"}],
        ports=[("http", 8080, "TCP")]))
    api.create(objects.endpoint_slice("b", "db-empty", "db"))

    ns = k.core.list_namespace()
    assert names(ns.items) == ["a", "b"]
    assert ns.metadata.resource_version == api.get_rv()
    assert ns.items[0].metadata.labels == {"kubernetes.io/metadata.name": "a"}

    svcs = k.core.list_service_for_all_namespaces()
    assert [(s.metadata.namespace, s.metadata.name) for s in svcs.items] == [
        ("a", "web"), ("b", "db")]
    assert svcs.items[0].spec.cluster_ip == "10.96.0.10"
    assert svcs.items[1].spec.cluster_ip == "None"
    assert names(k.core.list_namespaced_service("b").items) == ["db"]
    assert k.core.read_namespaced_service("web", "a").spec.ports[0].port == 80

    slices = k.disc.list_endpoint_slice_for_all_namespaces()
    assert names(slices.items) == ["web-abcde", "db-empty"]  # etcd key order: ns/name
    by_name = {s.metadata.name: s for s in slices.items}
    assert by_name["web-abcde"].endpoints[0].hostname == "web-0"
    assert by_name["db-empty"].endpoints is None  # the client tolerates null
    assert names(k.disc.list_namespaced_endpoint_slice("a").items) == ["web-abcde"]

    # Raw JSON as the real server sends it.
    raw = json.loads(k.disc.list_endpoint_slice_for_all_namespaces(_preload_content=False).data)
    assert raw["kind"] == "EndpointSliceList" and raw["apiVersion"] == "discovery.k8s.io/v1"
    assert raw["metadata"] == {"resourceVersion": api.get_rv()}
    empty = next(i for i in raw["items"] if i["metadata"]["name"] == "db-empty")
    assert "kind" not in empty and "apiVersion" not in empty
    assert empty["endpoints"] is None and empty["ports"] is None
    for item in raw["items"]:
        assert {"uid", "creationTimestamp", "resourceVersion"} <= item["metadata"].keys()

    with pytest.raises(ApiException) as e:
        k.core.read_namespaced_service("nope", "a")
    assert e.value.status == 404 and json.loads(e.value.body)["reason"] == "NotFound"


def test_discovery_endpoints(api, k):
    assert kubernetes.client.VersionApi(k.client).get_code().major == "1"
    assert kubernetes.client.CoreApi(k.client).get_api_versions().versions == ["v1"]
    groups = kubernetes.client.ApisApi(k.client).get_api_versions().groups
    assert [g.name for g in groups] == ["discovery.k8s.io"]
    group = kubernetes.client.DiscoveryApi(k.client).get_api_group()
    assert group.preferred_version.group_version == "discovery.k8s.io/v1"
    resources = kubernetes.client.DiscoveryV1Api(k.client).get_api_resources().resources
    assert [r.name for r in resources] == ["endpointslices"]


def test_paging_is_a_consistent_snapshot(api, k):
    api.load(objects.service(f"ns{i % 3}", f"svc-{i:02d}") for i in range(25))
    expected = sorted((f"ns{i % 3}", f"svc-{i:02d}") for i in range(25))

    page = k.core.list_service_for_all_namespaces(limit=10)
    rv, token = page.metadata.resource_version, page.metadata.var_continue
    first_token = token
    assert len(page.items) == 10 and token
    # Changes after the first page must not show up in later pages.
    api.create(objects.service("ns2", "zzz-new"))
    api.delete("Service", "ns2", "svc-23")
    seen = [(s.metadata.namespace, s.metadata.name) for s in page.items]
    while token:
        page = k.core.list_service_for_all_namespaces(limit=10, _continue=token)
        assert page.metadata.resource_version == rv
        seen += [(s.metadata.namespace, s.metadata.name) for s in page.items]
        token = page.metadata.var_continue
    assert seen == expected
    assert [r.query.get("limit") for r in api.requests("/api/v1/services")] == ["10"] * 3

    # Namespaced paging.
    got, token = [], None
    while True:
        page = k.core.list_namespaced_service("ns1", limit=3, _continue=token)
        got += names(page.items)
        token = page.metadata.var_continue
        if not token:
            break
    assert got == [f"svc-{i:02d}" for i in range(1, 25, 3)]

    # Once the snapshot is compacted away the token is rejected like etcd does.
    api.compact()
    with pytest.raises(ApiException) as e:
        k.core.list_service_for_all_namespaces(limit=10, _continue=first_token)
    body = json.loads(e.value.body)
    assert e.value.status == 410 and body["reason"] == "Expired" and body["metadata"]["continue"]


def test_label_selectors(api, k):
    api.create(objects.namespace("a", {"env": "prod", "team": "x"}))
    api.create(objects.namespace("b", {"env": "dev"}))
    api.create(objects.namespace("c"))
    cases = {
        "env=prod": ["a"], "env==prod": ["a"], "env!=prod": ["b", "c"],
        "env in (prod,dev)": ["a", "b"], "env notin (prod)": ["b", "c"],
        "team": ["a"], "!team": ["b", "c"], "env,!team": ["b"], "env=dev,team": [],
        "kubernetes.io/metadata.name=c": ["c"],
    }
    for selector, expected in cases.items():
        assert names(k.core.list_namespace(label_selector=selector).items) == expected, selector
    with pytest.raises(ApiException) as e:
        k.core.list_namespace(label_selector="env in prod")
    assert e.value.status == 400


def test_field_selectors(api, k):
    for ns in ("a", "b"):
        api.create(objects.service(ns, "web"))
        api.create(objects.service(ns, "db"))
    key = lambda lst: [(s.metadata.namespace, s.metadata.name) for s in lst.items]  # noqa: E731
    assert key(k.core.list_service_for_all_namespaces(field_selector="metadata.name=web")) == [
        ("a", "web"), ("b", "web")]
    assert key(k.core.list_service_for_all_namespaces(field_selector="metadata.namespace!=a")) == [
        ("b", "db"), ("b", "web")]
    assert key(k.core.list_service_for_all_namespaces(
        field_selector="metadata.namespace=a,metadata.name==db")) == [("a", "db")]
    with pytest.raises(ApiException) as e:
        k.core.list_service_for_all_namespaces(field_selector="spec.bogus=1")
    assert e.value.status == 400 and "field label not supported" in e.value.body


# --- watches -----------------------------------------------------------------


def test_watch_from_list_rv_sees_create_update_delete(api, k):
    rv = k.core.list_service_for_all_namespaces().metadata.resource_version
    w = Collector(k.core.list_service_for_all_namespaces, resource_version=rv, timeout_seconds=10)
    # These may happen before the watch connects: history replay covers that.
    api.create(objects.service("a", "web", ports=[("http", 80, "TCP")]))
    api.update(objects.service("a", "web", ports=[("http", 8080, "TCP")]))
    api.delete("Service", "a", "web")
    events = [w.next() for _ in range(3)]
    w.stop()

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"].spec.ports[0].port == 8080
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert int(rv) < rvs[0] < rvs[1] < rvs[2] == int(api.get_rv())
    assert len({e["object"].metadata.uid for e in events}) == 1
    assert events[0]["raw_object"]["kind"] == "Service"  # watch objects carry kind
    watch_req = api.requests("/api/v1/services", watch=True)[0]
    assert watch_req.query["resourceVersion"] == rv


def test_watch_without_rv_starts_with_added_for_existing(api, k):
    api.create(objects.namespace("a"))
    api.create(objects.namespace("b"))
    w = Collector(k.core.list_namespace, timeout_seconds=10)
    assert [(e["type"], e["object"].metadata.name) for e in (w.next(), w.next())] == [
        ("ADDED", "a"), ("ADDED", "b")]
    api.create(objects.namespace("c"))
    assert w.next()["object"].metadata.name == "c"
    w.stop()


def test_watch_with_label_selector_sees_objects_enter_and_leave(api, k):
    api.create(objects.namespace("a", {"env": "prod"}))
    api.create(objects.namespace("b", {"env": "dev"}))
    rv = api.get_rv()
    w = Collector(k.core.list_namespace, label_selector="env=prod", resource_version=rv,
                  timeout_seconds=10)
    api.update(objects.namespace("b", {"env": "prod"}))  # enters -> ADDED
    api.update(objects.namespace("a", {"env": "dev"}))  # leaves -> DELETED
    api.create(objects.namespace("e"))  # never matches -> nothing
    api.create(objects.namespace("d", {"env": "prod"}))
    got = [(e["type"], e["object"].metadata.name) for e in (w.next(), w.next(), w.next())]
    w.stop()
    assert got == [("ADDED", "b"), ("DELETED", "a"), ("ADDED", "d")]


def test_watch_with_field_selector(api, k):
    rv = api.get_rv()
    w = Collector(k.core.list_service_for_all_namespaces, field_selector="metadata.namespace=b",
                  resource_version=rv, timeout_seconds=10)
    api.create(objects.service("a", "x"))
    api.create(objects.service("b", "y"))
    event = w.next()
    w.stop()
    assert (event["type"], event["object"].metadata.namespace) == ("ADDED", "b")


def test_bookmarks(api, k):
    rv = api.get_rv()
    w = Collector(k.core.list_namespace, resource_version=rv, allow_watch_bookmarks=True,
                  timeout_seconds=10)
    first = w.next()
    assert first["type"] == "BOOKMARK"
    assert first["raw_object"] == {"kind": "Namespace", "apiVersion": "v1",
                                   "metadata": {"resourceVersion": rv}}
    api.create(objects.namespace("a"))
    assert w.next_of("ADDED")["object"].metadata.name == "a"
    # Later bookmarks advance to the latest RV, and the client records it.
    assert w.next_of("BOOKMARK")["raw_object"]["metadata"]["resourceVersion"] == api.get_rv()
    assert w.watch.resource_version == api.get_rv()
    w.stop()


def test_send_initial_events_ends_with_annotated_bookmark(api, k):
    api.create(objects.namespace("a"))
    w = Collector(k.core.list_namespace, send_initial_events=True,
                  resource_version_match="NotOlderThan", allow_watch_bookmarks=True,
                  timeout_seconds=10)
    added, bookmark = w.next(), w.next()
    w.stop()
    assert added["type"] == "ADDED" and added["object"].metadata.name == "a"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["raw_object"]["metadata"] == {
        "resourceVersion": api.get_rv(),
        "annotations": {"k8s.io/initial-events-end": "true"}}

    # Without resourceVersionMatch=NotOlderThan the real server says 422.
    with pytest.raises(ApiException) as e:
        next(kubernetes.watch.Watch().stream(k.core.list_namespace, send_initial_events=True,
                                             timeout_seconds=1))
    assert e.value.status == 422 and json.loads(e.value.body)["reason"] == "Invalid"


def test_timeout_seconds_ends_the_stream(api, k):
    start = time.monotonic()
    events = list(kubernetes.watch.Watch().stream(
        k.core.list_namespace, resource_version=api.get_rv(), timeout_seconds=1))
    assert events == []
    assert 0.9 <= time.monotonic() - start < 3


def test_expired_rv_is_an_error_event_on_a_200(api, k):
    rv = api.get_rv()
    api.create(objects.namespace("a"))
    api.compact()
    resp = k.core.list_namespace(watch=True, resource_version=rv, _preload_content=False)
    assert resp.status == 200
    lines = resp.read().decode().splitlines()
    assert len(lines) == 1  # the server ends the stream after the error
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    assert event["object"]["message"] == f"too old resource version: {rv} ({api.get_rv()})"


def test_client_on_410_error_event_with_timeout_seconds_raises(api, k):
    rv = api.get_rv()
    api.create(objects.namespace("a"))
    api.compact()
    with pytest.raises(ApiException) as e:
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, resource_version=rv,
                                             timeout_seconds=5))
    assert e.value.status == 410 and e.value.reason.startswith("Expired: too old resource version")
    assert len(api.requests(watch=True)) == 1  # timeout_seconds disables the retry


def test_client_on_410_error_event_retries_once_then_raises(api, k):
    rv = api.get_rv()
    api.create(objects.namespace("a"))
    api.compact()
    with pytest.raises(ApiException) as e:
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, resource_version=rv))
    assert e.value.status == 410
    # One silent retry with the same (still too old) RV, then the exception.
    assert [r.query["resourceVersion"] for r in api.requests(watch=True)] == [rv, rv]


def test_expired_as_http_410(api, k):
    api.server.expired_watch_response = "http"
    rv = api.get_rv()
    api.create(objects.namespace("a"))
    api.compact()
    with pytest.raises(ApiException) as e:
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, resource_version=rv))
    assert e.value.status == 410
    assert json.loads(e.value.body)["reason"] == "Expired"


def test_history_window_is_bounded():
    with FakeApiServerThread(history_size=3) as api:
        k = make_clients(api.url)
        rv0 = api.get_rv()
        for i in range(5):
            api.create(objects.namespace(f"n{i}"))
        stream = lambda rv: kubernetes.watch.Watch().stream(  # noqa: E731
            k.core.list_namespace, resource_version=rv, timeout_seconds=1)
        with pytest.raises(ApiException) as e:
            list(stream(rv0))
        assert e.value.status == 410
        # The last 3 events are still there.
        events = list(stream(str(int(api.get_rv()) - 3)))
        assert names(e["object"] for e in events) == ["n2", "n3", "n4"]


def test_close_watches_graceful_then_abrupt(api, k):
    rv = api.get_rv()
    w = Collector(k.core.list_namespace, resource_version=rv)  # no timeout: client reconnects
    wait_until(lambda: api.open_watches() == 1)
    api.create(objects.namespace("a"))
    rv_a = w.next()["object"].metadata.resource_version

    api.close_watches(abrupt=False)  # clean end of stream
    wait_until(lambda: len(api.requests(watch=True)) == 2)
    assert api.requests(watch=True)[1].query["resourceVersion"] == rv_a
    api.create(objects.namespace("b"))
    assert w.next()["object"].metadata.name == "b"

    wait_until(lambda: api.open_watches() == 1)
    api.close_watches()  # abort: broken chunked stream
    assert w.done.wait(5)
    assert isinstance(w.error, urllib3.exceptions.ProtocolError)


def test_take_down_and_bring_up(api, strict):
    api.create(objects.namespace("a"))
    w = Collector(strict.core.list_namespace, resource_version=api.get_rv(), timeout_seconds=30)
    wait_until(lambda: api.open_watches() == 1)
    api.take_down()
    assert w.done.wait(5) and isinstance(w.error, urllib3.exceptions.ProtocolError)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as e:
        strict.core.list_namespace()
    assert isinstance(e.value.reason, urllib3.exceptions.NewConnectionError)  # refused
    api.bring_up()
    assert names(strict.core.list_namespace().items) == ["a"]


# --- scripted faults ---------------------------------------------------------


def test_fault_429_with_retry_after(api, k, strict):
    api.fail_next("429", resource="services", retry_after=7)
    assert strict.core.list_namespace().items == []  # other resources unaffected
    with pytest.raises(ApiException) as e:
        strict.core.list_service_for_all_namespaces()
    assert e.value.status == 429 and e.value.headers["Retry-After"] == "7"
    assert json.loads(e.value.body)["reason"] == "TooManyRequests"
    assert strict.core.list_service_for_all_namespaces().items == []  # only once

    # A default client (urllib3 Retry(3)) sleeps Retry-After and retries.
    api.clear_requests()
    api.fail_next("429", retry_after=0)
    assert k.core.list_namespace().items == []
    assert len(api.requests()) == 2


def test_fault_500(api, k):
    api.fail_next("500", verb="list", count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            k.core.list_namespace()
        assert e.value.status == 500 and json.loads(e.value.body)["reason"] == "InternalError"
    assert k.core.list_namespace().items == []


def test_fault_drop(api, k, strict):
    api.fail_next("drop")
    with pytest.raises(urllib3.exceptions.MaxRetryError) as e:
        strict.core.list_namespace()
    assert isinstance(e.value.reason, urllib3.exceptions.ProtocolError)
    # The default client retries a dropped connection transparently...
    api.clear_requests()
    api.fail_next("drop")
    assert k.core.list_namespace().items == []
    assert len(api.requests()) == 2
    # ...but not four in a row.
    api.fail_next("drop", count=4)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        k.core.list_namespace()


def test_fault_malformed_watch_line_is_yielded_as_none(api, k):
    api.create(objects.namespace("a"))
    api.fail_next("malformed", verb="watch")
    events = list(kubernetes.watch.Watch().stream(k.core.list_namespace, timeout_seconds=1))
    assert events[0] is None  # the client swallows the JSONDecodeError
    assert [(e["type"], e["object"].metadata.name) for e in events[1:]] == [("ADDED", "a")]


def test_fault_malformed_list_body(api, k):
    api.fail_next("malformed", verb="list")
    with pytest.raises(ValueError):  # json.JSONDecodeError, not ApiException
        k.core.list_namespace()


def test_fault_truncated_streams(api, k):
    api.fail_next("truncate", verb="watch")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, timeout_seconds=5))
    api.fail_next("truncate", verb="list")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        k.core.list_namespace()


def test_fault_silent_watch(api, k):
    api.fail_next("silent", verb="watch")
    start = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        # The hung server ignores timeoutSeconds; only a client read timeout helps.
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, timeout_seconds=30,
                                             _request_timeout=(5, 1)))
    assert time.monotonic() - start < 5

    api.fail_next("silent", verb="watch")
    w = Collector(k.core.list_namespace, timeout_seconds=30)
    wait_until(lambda: api.open_watches() == 1)
    api.create(objects.namespace("a"))
    with pytest.raises(queue.Empty):
        w.next(timeout=0.5)
    api.close_watches()
    assert w.done.wait(5) and isinstance(w.error, urllib3.exceptions.ProtocolError)


def test_fault_expired_on_watch(api, k):
    api.fail_next("expired", verb="watch")
    with pytest.raises(ApiException) as e:
        list(kubernetes.watch.Watch().stream(k.core.list_namespace, resource_version=api.get_rv(),
                                             timeout_seconds=5))
    assert e.value.status == 410


# --- scale and async use -----------------------------------------------------


@pytest.mark.timeout(180)
def test_bulk_load_100k_services(api, k):
    start = time.monotonic()
    n = api.load((objects.service(f"ns{i % 1000}", f"svc-{i}") for i in range(100_000)), copy=False)
    assert n == 100_000
    assert time.monotonic() - start < 60  # linear; a few seconds on a slow box
    page = k.core.list_service_for_all_namespaces(limit=500)
    assert len(page.items) == 500 and page.metadata.var_continue
    assert len(k.core.list_namespaced_service("ns7").items) == 100
    raw = json.loads(k.core.list_service_for_all_namespaces(_preload_content=False).data)
    assert len(raw["items"]) == 100_000


@pytest.mark.asyncio
async def test_async_server_raw_stream_and_official_client():
    async with FakeApiServer(bookmark_interval=0.1) as api:
        api.create(objects.namespace("a"))
        k = make_clients(api.url)
        # The synchronous official client must not run on the server's loop.
        listed = await asyncio.to_thread(k.core.list_namespace)
        assert names(listed.items) == ["a"]

        url = f"{api.url}/api/v1/namespaces?watch=1&allowWatchBookmarks=true&timeoutSeconds=5"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
            first = json.loads(await resp.content.readline())
            assert first["type"] == "ADDED" and first["object"]["kind"] == "Namespace"
            api.create(objects.namespace("b"))
            seen = set()
            while {"ADDED", "BOOKMARK"} - seen:
                event = json.loads(await resp.content.readline())
                seen.add(event["type"])
        assert api.requests(watch=True)[0].query["allowWatchBookmarks"] == "true"
        k.client.close()
