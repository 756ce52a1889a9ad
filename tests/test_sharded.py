"""ShardedMap: a published map never changes; an edit shares the shards it did not touch."""

from __future__ import annotations

from dnsrewrite.sharded import ByNamespaceMap, ShardedMap


def test_edits_never_change_the_published_map_and_share_untouched_shards():
    base = ShardedMap.from_dict({f"k{i}": i for i in range(5000)})
    editor = base.edit()
    editor["new"] = -1
    editor["k1"] = 100
    assert editor.pop("k2") == 2 and editor.pop("missing") is None
    after = editor.freeze()
    assert (base["k1"], base.get("new"), "k2" in base, len(base)) == (1, None, True, 5000)
    assert (after["k1"], after["new"], "k2" in after, len(after)) == (100, -1, False, 5000)
    assert sorted(after) == sorted({*base, "new"} - {"k2"})
    shared = sum(a is b for a, b in zip(base._shards, after._shards, strict=True))
    assert shared >= len(base._shards) - 3  # at most the three shards written were copied


def test_mapping_protocol():
    m = ShardedMap.from_dict({("ns", "a"): 1, ("ns", "b"): 2})
    assert dict(m.items()) == {("ns", "a"): 1, ("ns", "b"): 2}
    assert sorted(m.values()) == [1, 2] and m.get(("x", "y")) is None and len(m) == 2


def test_a_namespace_edit_copies_one_shard_of_a_by_namespace_map():
    base = ByNamespaceMap.from_dict({(f"ns{i % 50}", f"svc{i}"): i for i in range(5000)})
    editor = base.edit()
    for i in range(0, 5000, 50):  # every Service of ns0
        editor[("ns0", f"svc{i}")] = -i
    after = editor.freeze()
    assert isinstance(after, ByNamespaceMap) and len(after) == 5000
    assert after[("ns0", "svc50")] == -50 and base[("ns0", "svc50")] == 50
    shared = sum(a is b for a, b in zip(base._shards, after._shards, strict=True))
    assert shared == len(base._shards) - 1
