"""Kubernetes label selectors: parse once, match many times.

Supports the forms `kubectl -l` accepts: ``key=value``, ``key==value``,
``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key`` and ``!key``,
joined by commas (all must hold). An empty selector matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Labels = Mapping[str, str]


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: Labels) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match when the key is absent, as in Kubernetes.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Labels) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    def __str__(self) -> str:
        return self.text


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _value_ok(value: str) -> bool:
    return len(value) <= 63 and re.fullmatch(_VALUE, value) is not None


def _parse_requirement(part: str) -> Requirement:
    if match := _SET_RE.match(part):
        values = [v.strip() for v in match["values"].split(",")]
        if not values or any(not v or not _value_ok(v) for v in values):
            raise SelectorError(f"bad value list in {part.strip()!r}")
        return Requirement(match["key"], match["op"], frozenset(values))
    if match := _EQ_RE.match(part):
        operator = "!=" if match["op"] == "!=" else "="
        return Requirement(match["key"], operator, frozenset([match["value"]]))
    if match := _EXISTS_RE.match(part):
        return Requirement(match["key"], "!exists" if match["neg"] else "exists", frozenset())
    raise SelectorError(f"cannot parse requirement {part.strip()!r}")


def parse_selector(text: str) -> Selector:
    text = text.strip()
    if not text:
        return Selector("", ())
    return Selector(text, tuple(_parse_requirement(part) for part in _split_top_level(text)))


def matcher(text: str) -> Callable[[Labels], bool]:
    return parse_selector(text).matches
