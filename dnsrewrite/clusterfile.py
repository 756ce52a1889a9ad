"""The cluster file source: a snapshot of the cluster's DNS objects on disk.

Reads what `kubectl get namespaces,services,endpointslices -A -o yaml` (or
`-o json`) prints: a `v1` `List`, or several YAML documents of objects or
Lists. Each item goes through the model converters; a bad item is logged and
skipped, a file that cannot be read or parsed at all raises `ClusterFileError`
so the caller keeps the data it had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import yaml

from dnsrewrite.model import (
    DEFAULT_ANNOTATION_KEYS,
    EndpointSlice,
    ModelError,
    Namespace,
    Service,
    endpoint_slice_from_api,
    namespace_from_api,
    service_from_api,
)

log = logging.getLogger(__name__)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ClusterFileError(Exception):
    pass


@dataclass
class Snapshot:
    namespaces: list[Namespace] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one reason per skipped item


def _items(document: Any) -> Iterator[Any]:
    if document is None:
        return
    if isinstance(document, Mapping) and (
        document.get("kind") == "List" or str(document.get("kind", "")).endswith("List")
    ):
        for item in document.get("items") or []:
            yield from _items(item)
        return
    yield document


def parse(
    text: str,
    source: str = "<cluster file>",
    annotation_keys: Collection[str] = DEFAULT_ANNOTATION_KEYS,
) -> Snapshot:
    """Parse cluster-file text into model objects."""
    try:
        if text.lstrip().startswith("{"):
            documents = [json.loads(text)]
        else:
            documents = list(yaml.load_all(text, Loader=_Loader))
    except (ValueError, yaml.YAMLError) as err:
        raise ClusterFileError(f"{source}: not valid YAML or JSON: {err}") from None
    snapshot = Snapshot()
    converters = {
        "Namespace": (namespace_from_api, snapshot.namespaces),
        "Service": (partial(service_from_api, annotation_keys=annotation_keys),
                    snapshot.services),
        "EndpointSlice": (endpoint_slice_from_api, snapshot.slices),
    }
    for document in documents:
        for index, item in enumerate(_items(document)):
            kind = item.get("kind") if isinstance(item, Mapping) else None
            if kind not in converters:
                continue  # other kinds in a snapshot (Endpoints, Pods) are not ours
            convert, bucket = converters[kind]
            try:
                bucket.append(convert(item))  # type: ignore[attr-defined,operator]
            except ModelError as err:
                meta = item.get("metadata") or {}
                where = f"{kind} {meta.get('namespace', '')}/{meta.get('name', f'#{index}')}"
                snapshot.skipped.append(f"{where}: {err}")
                log.warning(
                    "skipped object", extra={"fields": {"object": where, "reason": str(err)}}
                )
    return snapshot


def load(path: str, annotation_keys: Collection[str] = DEFAULT_ANNOTATION_KEYS) -> Snapshot:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ClusterFileError(f"cannot read cluster file {path}: {err.strerror}") from None
    return parse(text, path, annotation_keys)
