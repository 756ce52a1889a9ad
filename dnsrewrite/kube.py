"""The only module that imports `kubernetes`: client set-up, list and watch calls.

Calls go through the official client with `_preload_content=False`, so we get
the API server's JSON as it is (camelCase, the form `model.py` converts) and
stream watch lines ourselves. Every function here blocks: callers run them in
watcher threads, never on the DNS event loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

__all__ = ["ApiException", "Resource", "RESOURCES", "make_api_client", "list_pages", "watch_lines"]


def make_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config in a pod; else `kubeconfig`, $KUBECONFIG or ~/.kube/config."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    # urllib3's default Retry(3) would silently retry drops and 429s; the watch
    # loop does its own backoff and honours Retry-After, and counts each one.
    configuration.retries = 0
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class Resource:
    kind: str  # "Namespace", "Service", "EndpointSlice"
    plural: str
    method: Callable[[client.ApiClient], Callable[..., Any]]


RESOURCES = (
    Resource("Namespace", "namespaces", lambda api: client.CoreV1Api(api).list_namespace),
    Resource("Service", "services",
             lambda api: client.CoreV1Api(api).list_service_for_all_namespaces),
    Resource("EndpointSlice", "endpointslices",
             lambda api: client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces),
)


def list_pages(
    api: client.ApiClient, resource: Resource, page_size: int, request_timeout_s: float
) -> Iterator[tuple[list[dict[str, Any]], str]]:
    """The objects of `resource`, one page at a time, each with the list's resourceVersion.

    Pages let the caller convert and drop raw objects as they come: a whole
    list of 100,000 raw objects would double the memory we need.
    """
    call = resource.method(api)
    token = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size, "_preload_content": False,
                                  "_request_timeout": request_timeout_s}
        if token:
            kwargs["_continue"] = token
        response = call(**kwargs)
        body = json.loads(response.data)
        metadata = body.get("metadata") or {}
        token = metadata.get("continue")
        yield body.get("items") or [], str(metadata.get("resourceVersion") or "")
        if not token:
            return


def watch_lines(
    api: client.ApiClient,
    resource: Resource,
    resource_version: str,
    timeout_s: int,
    inactivity_timeout_s: float,
) -> Iterator[str]:
    """Raw event lines of a watch from `resource_version`, with bookmarks.

    The server ends the stream after `timeout_s`; a stream that sends nothing
    (not even a bookmark) for `inactivity_timeout_s` raises a read timeout.
    """
    response = resource.method(api)(
        watch=True,
        resource_version=resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=timeout_s,
        _preload_content=False,
        _request_timeout=(10, inactivity_timeout_s),
    )
    try:
        for line in iter_resp_lines(response):
            if line:
                yield line
    finally:
        response.release_conn()
