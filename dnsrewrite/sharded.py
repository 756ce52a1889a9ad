"""A copy-on-write map for the published view: a change copies one shard, not the map.

A published view is immutable and the next one differs by a handful of keys;
copying a 100,000-entry dict for each publish would make every change cost
time proportional to the cluster. `ShardedMap` splits the keys over 1,024
small dicts; `edit()` gives an editor that copies a shard the first time it
writes to it, and `freeze()` makes the next immutable map sharing every
untouched shard with the previous one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_BITS = 10
_MASK = (1 << _BITS) - 1
_EMPTY: dict = {}  # shared by empty shards, never written


class ShardedMap(Mapping[K, V], Generic[K, V]):
    __slots__ = ("_shards", "_len")

    @staticmethod
    def _slot(key: K) -> int:
        return hash(key) & _MASK

    def __init__(self, shards: list[dict[K, V]] | None = None, length: int = 0) -> None:
        self._shards: list[dict[K, V]] = shards if shards is not None else [_EMPTY] * (_MASK + 1)
        self._len = length

    def __getitem__(self, key: K) -> V:
        return self._shards[self._slot(key)][key]

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        return self._shards[self._slot(key)].get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._shards[self._slot(key)]  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        return chain.from_iterable(self._shards)

    def __len__(self) -> int:
        return self._len

    def edit(self) -> ShardedMapEditor[K, V]:
        return ShardedMapEditor(self)

    @classmethod
    def from_dict(cls, data: Mapping[K, V]) -> ShardedMap[K, V]:
        shards: list[dict[K, V]] = [{} for _ in range(_MASK + 1)]
        slot = cls._slot
        for key, value in data.items():
            shards[slot(key)][key] = value
        return cls([shard or _EMPTY for shard in shards], len(data))

    def edit_or_dict(self) -> ShardedMapEditor[K, V] | dict[K, V]:
        """An editor; or, for an empty map (a first publish, which writes everything),
        a plain dict, faster to fill and sharded once by `frozen`."""
        return self.edit() if self._len else {}

    @classmethod
    def frozen(cls, edited: ShardedMapEditor[K, V] | dict[K, V]) -> ShardedMap[K, V]:
        """The map `edit_or_dict` gave, written and made immutable."""
        return edited.freeze() if isinstance(edited, ShardedMapEditor) else cls.from_dict(edited)


class ByNamespaceMap(ShardedMap[tuple[str, str], V]):
    """Keys are (namespace, name) and a namespace's keys share a shard: flipping a
    namespace of 1,000 Services copies one shard, not hundreds."""

    __slots__ = ()

    @staticmethod
    def _slot(key: tuple[str, str]) -> int:
        return hash(key[0]) & _MASK

    def get(self, key: tuple[str, str], default: V | None = None) -> V | None:  # type: ignore[override]
        # Inlined `_slot`: the reply cache checks a version with this on every hit.
        return self._shards[hash(key[0]) & _MASK].get(key, default)


class ShardedMapEditor(Generic[K, V]):
    """Writes to a private copy of the shards it touches; reads see its own writes."""

    __slots__ = ("_base_type", "_slot", "_shards", "_mine", "_len")

    def __init__(self, base: ShardedMap[K, V]) -> None:
        self._base_type = type(base)
        self._slot = base._slot
        self._shards = list(base._shards)
        self._mine: list[dict[K, V] | None] = [None] * len(self._shards)  # copied shards
        self._len = base._len

    def _writable(self, index: int) -> dict[K, V]:
        shard = self._mine[index]
        if shard is None:
            shard = self._mine[index] = self._shards[index] = dict(self._shards[index])
        return shard

    def __setitem__(self, key: K, value: V) -> None:
        index = self._slot(key)
        shard = self._mine[index] or self._writable(index)
        if key not in shard:
            self._len += 1
        shard[key] = value

    def pop(self, key: K, default: V | None = None) -> V | None:
        index = self._slot(key)
        if key not in self._shards[index]:
            return default
        self._len -= 1
        return (self._mine[index] or self._writable(index)).pop(key)

    def __getitem__(self, key: K) -> V:
        return self._shards[self._slot(key)][key]

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._shards[self._slot(key)].get(key, default)

    def freeze(self) -> ShardedMap[K, V]:
        return self._base_type(self._shards, self._len)
