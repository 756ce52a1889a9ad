"""Label and field selectors, parsed the way the Kubernetes API server does.

Label selector grammar (``k8s.io/apimachinery/pkg/labels``), comma-joined:

    key=value  key==value  key!=value  key in (a,b)  key notin (a,b)
    key  !key  key>5  key<5

Note the real semantics: ``!=`` and ``notin`` also match objects that do not
have the label at all; ``in``/``=`` require it.

Field selectors only support ``=``, ``==`` and ``!=`` and only on the fields
each resource registers; anything else is a 400 on the real server
("field label not supported: ...").

Both parsers raise ``SelectorError`` (the server turns it into a 400
BadRequest Status).
"""

from __future__ import annotations

import re
from collections.abc import Callable

Matcher = Callable[[dict], bool]

# A qualified label key: optional DNS-subdomain prefix, then a name.
_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_REQUIREMENT = re.compile(
    rf"""^\s*(?:
        (?P<not>!)\s*(?P<nkey>{_KEY})                              # !key
      | (?P<key>{_KEY})\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>{_VALUE})                   # key=v
          | \s(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)          # key in (..)
          | (?P<cmp>[<>])\s*(?P<num>-?\d+)                          # key>5
        )?
    )\s*$""",
    re.VERBOSE,
)
_VALUE_RE = re.compile(rf"^{_VALUE}$")


class SelectorError(ValueError):
    """An unparseable or unsupported selector (the server answers 400)."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )`` (set values)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _requirement(text: str) -> Matcher:
    m = _REQUIREMENT.match(text)
    if not m:
        raise SelectorError(f"unable to parse requirement: {text.strip()!r}")
    if m["not"]:
        key = m["nkey"]
        return lambda o: key not in _labels(o)
    key = m["key"]
    if m["op"]:
        value = m["value"]
        if m["op"] == "!=":
            return lambda o: _labels(o).get(key) != value
        return lambda o: _labels(o).get(key) == value
    if m["setop"]:
        values = {v.strip() for v in m["values"].split(",")}
        for v in values:
            if not _VALUE_RE.match(v):
                raise SelectorError(f"unable to parse requirement: invalid value {v!r}")
        if m["setop"] == "in":
            return lambda o: _labels(o).get(key) in values
        return lambda o: _labels(o).get(key) not in values
    if m["cmp"]:
        num, gt = int(m["num"]), m["cmp"] == ">"

        def compare(o: dict) -> bool:
            try:
                have = int(_labels(o)[key])
            except (KeyError, ValueError):
                return False
            return have > num if gt else have < num

        return compare
    return lambda o: key in _labels(o)


def parse_label_selector(text: str | None) -> Matcher | None:
    """Return a predicate over objects, or None for "everything"."""
    if not text or not text.strip():
        return None
    reqs = [_requirement(part) for part in _split_top_level(text)]
    return lambda o: all(r(o) for r in reqs)


def field_value(obj: dict, path: str) -> str:
    """Dotted-path lookup; absent fields compare as the empty string."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return ""
        cur = cur[part]
    return "" if cur is None else str(cur)


def parse_field_selector(text: str | None, supported: frozenset[str]) -> Matcher | None:
    if not text or not text.strip():
        return None
    reqs = []
    for term in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = m.groups()
        if path not in supported:
            raise SelectorError(f'field label not supported: {path}')
        if op == "!=":
            reqs.append(lambda o, p=path, v=value: field_value(o, p) != v)
        else:
            reqs.append(lambda o, p=path, v=value: field_value(o, p) == v)
    return lambda o: all(r(o) for r in reqs)
