"""Unit tests of the immutable JSON tree (atmosphere.rtdb.tree)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.rtdb import tree

keys = st.text(alphabet="abc012", min_size=1, max_size=3)
leaves = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans())
trees = st.recursive(
    leaves, lambda children: st.dictionaries(keys, children, min_size=1), max_leaves=12
)
paths = st.lists(keys, min_size=1, max_size=4)


def test_get_walks_and_misses() -> None:
    root = {"a": {"b": 1}, "p": {".value": 5, ".priority": 1}}
    assert tree.get(root, ["a", "b"]) == 1
    assert tree.get(root, ["a", "b", "c"]) is None
    assert tree.get(root, ["x"]) is None
    assert tree.get(root, ["p", ".priority"]) == 1
    assert tree.get(None, ["a"]) is None
    assert tree.get(root, []) is root


def test_set_deletes_and_prunes_empty_ancestors() -> None:
    root = tree.set_one(None, ["a", "b", "c"], 1)
    assert root == {"a": {"b": {"c": 1}}}
    assert tree.set_one(root, ["a", "b", "c"], None) is None
    assert tree.set_one({"a": {"b": 1}, "z": 2}, ["a", "b"], None) == {"z": 2}


def test_set_below_a_primitive_replaces_it() -> None:
    assert tree.set_one({"a": "x"}, ["a", "b"], 1) == {"a": {"b": 1}}


def test_priority_segment() -> None:
    assert tree.set_one({"a": 5}, ["a", ".priority"], 2) == {"a": {".value": 5, ".priority": 2}}
    assert tree.set_one({"a": {".value": 5, ".priority": 2}}, ["a", "b"], 1) == {"a": {"b": 1}}


@given(trees, paths, leaves)
def test_writes_never_change_the_old_root(root: Any, path: list[str], value: Any) -> None:
    before = copy.deepcopy(root)
    after = tree.set_one(root, path, value)
    assert root == before
    assert tree.get(after, path) == value


@given(trees, paths)
def test_untouched_siblings_are_shared(root: Any, path: list[str]) -> None:
    after = tree.set_one(root, path, "new")
    if isinstance(root, dict) and isinstance(after, dict):
        for k, v in root.items():
            if k != path[0]:
                assert after[k] is v


def test_set_many_batches_copy_each_dict_once() -> None:
    root = {"a": {"x": 1}, "b": 2}
    after = tree.set_many(root, [(["a", "y"], 2), (["a", "z"], 3), (["b"], None)])
    assert after == {"a": {"x": 1, "y": 2, "z": 3}}
    assert root == {"a": {"x": 1}, "b": 2}


@pytest.mark.parametrize(
    ("stored", "rendered"),
    [
        ({"0": "a", "1": "b"}, ["a", "b"]),
        ({"1": "a", "2": "b"}, [None, "a", "b"]),
        ({"0": "a", "5": "b"}, {"0": "a", "5": "b"}),
        ({"01": 1}, {"01": 1}),
        ({"-1": 1}, {"-1": 1}),
        ({"a": {".value": 1, ".priority": 3}}, {"a": 1}),
        ({"x": 1, ".priority": 2}, {"x": 1}),
        ("s", "s"),
    ],
)
def test_render(stored: Any, rendered: Any) -> None:
    assert tree.render(stored) == rendered


def test_shallow() -> None:
    assert tree.shallow({"a": {"b": 1}, "c": 2}) == {"a": True, "c": True}
    assert tree.shallow(3) == 3
    assert tree.shallow(None) is None


def test_etag_is_content_addressed() -> None:
    assert tree.etag(None) == "null_etag"
    assert tree.etag({"a": 1, "b": 2}) == tree.etag({"b": 2, "a": 1})
    assert tree.etag({"a": 1}) != tree.etag({"a": 2})
    assert len(tree.etag("x")) == 28


def test_changed() -> None:
    a = {"x": 1}
    assert not tree.changed(a, a)
    assert not tree.changed(a, {"x": 1})
    assert tree.changed(a, None)


def _without_overlaps(entries: Any) -> list[Any]:
    """The entries whose paths neither contain nor lie under an earlier one's (a valid PATCH)."""
    kept: list[Any] = []
    for rel, value in entries:
        if not any(rel[: len(k)] == k or k[: len(rel)] == rel for k, _ in kept):
            kept.append((rel, value))
    return kept


@given(trees, paths, st.lists(st.tuples(paths, st.one_of(st.none(), leaves)), max_size=4))
def test_update_equals_sequential_sets(root: Any, base: list[str], entries: Any) -> None:
    # A PATCH's entries never overlap (the server refuses that), so neither do these.
    kept = _without_overlaps(entries)
    entries = kept
    expected = root
    for rel, value in entries:
        expected = tree.set_one(expected, [*base, *rel], value)
    before = copy.deepcopy(root)
    assert tree.update(root, base, entries) == expected
    assert root == before


def test_deleting_below_a_primitive_keeps_it() -> None:
    root = {"p": True}
    assert tree.set_one(root, ["p", "a"], None) is root
    assert tree.update(root, ["p"], [(["a"], None)]) == {"p": True}
    assert tree.set_one(None, ["x", "y"], None) is None


def test_priority_can_be_removed_from_a_leaf() -> None:
    root = {"a": {".value": 5, ".priority": 1}}
    assert tree.set_one(root, ["a", ".priority"], None) == {"a": 5}
    assert tree.set_one(root, ["a", ".priority"], 2) == {"a": {".value": 5, ".priority": 2}}


@given(trees, st.lists(st.tuples(paths, st.one_of(st.none(), leaves, trees)), max_size=4))
def test_in_place_writes_equal_path_copying(root: Any, writes: Any) -> None:
    expected = tree.set_many(copy.deepcopy(root), writes)
    assert tree.apply_in_place(copy.deepcopy(root), writes) == expected


@given(trees, paths, st.lists(st.tuples(paths, st.one_of(st.none(), leaves)), max_size=4))
def test_update_in_place_equals_update(root: Any, base: list[str], entries: Any) -> None:
    kept = _without_overlaps(entries)
    expected = tree.update(copy.deepcopy(root), base, kept)
    assert tree.update_in_place(copy.deepcopy(root), base, kept) == expected


@given(trees, paths, st.one_of(st.none(), leaves, trees), st.lists(keys, max_size=3))
def test_before_sees_the_old_values_below_the_write(
    root: Any, path: list[str], value: Any, below: list[str]
) -> None:
    original = copy.deepcopy(root)
    old = tree.get(root, path)
    after = tree.apply_in_place(root, [(path, value)])
    before = tree.Before(after, [(tuple(path), old)])
    assert tree.get(before, [*path, *below]) == tree.get(original, [*path, *below])
    if len(path) > 1:
        assert tree.get(before, path[:-1]) is tree.UNKNOWN
        assert tree.changed(tree.get(before, path[:-1]), tree.get(after, path[:-1]))


def test_in_place_is_o_depth_for_wide_objects() -> None:
    import time

    wide = {"users": {f"u{i}": {"n": i} for i in range(200_000)}}
    begin = time.perf_counter()
    for i in range(1000):
        wide = tree.apply_in_place(wide, [(["users", "u1", "n"], i)])
    assert time.perf_counter() - begin < 0.5  # path copying: about 1000 x 5 ms
    assert wide["users"]["u1"] == {"n": 999}
    assert len(wide["users"]) == 200_000


def _reference_get(root: Any, path: list[str]) -> Any:
    """``tree.get`` spelled out rule by rule (the fast one skips checks that cannot matter)."""
    node = root
    for i, key in enumerate(path):
        if type(node) is not dict:
            return None
        if key == ".priority" and i == len(path) - 1:
            return node.get(".priority")
        if ".value" in node:
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


prioritised = st.recursive(
    st.one_of(leaves, st.builds(lambda v: {".value": v, ".priority": 1}, leaves)),
    lambda children: st.dictionaries(keys, children, min_size=1).map(
        lambda d: {**d, ".priority": "p"} if len(d) % 2 else d
    ),
    max_leaves=12,
)


@given(prioritised, st.lists(st.one_of(keys, st.sampled_from([".priority", ".value"])), max_size=4))
def test_get_matches_the_rules(root: Any, path: list[str]) -> None:
    assert tree.get(root, path) == _reference_get(root, path)


# Objects of three keys and more: a deletion leaves more than one, the in-place fast path.
wide_trees = st.recursive(
    leaves, lambda children: st.dictionaries(keys, children, min_size=3), max_leaves=20
)
deletions = st.lists(
    st.tuples(
        st.lists(st.one_of(keys, st.sampled_from([".priority", ".value"])), min_size=1, max_size=4),
        st.none(),
    ),
    max_size=4,
)


@given(st.one_of(wide_trees, prioritised), paths, deletions)
def test_deleting_in_place_equals_update(root: Any, base: list[str], entries: Any) -> None:
    # Given deletions, some through primitives, priorities or .value, most from wide objects
    kept = _without_overlaps(entries)
    # I expect the in-place PATCH to leave what the path-copying one makes
    expected = tree.update(copy.deepcopy(root), base, kept)
    assert tree.update_in_place(copy.deepcopy(root), base, kept) == expected


@given(
    st.one_of(wide_trees, prioritised),
    paths,
    st.lists(st.tuples(paths, st.one_of(st.none(), leaves, trees)), max_size=4),
)
def test_patch_in_place_keeps_what_each_entry_replaced(
    root: Any, base: list[str], entries: Any
) -> None:
    # Given a PATCH's entries, deletions and writes, some through primitives or priorities
    kept = _without_overlaps(entries)
    original = copy.deepcopy(root)
    # When it is applied in place, taking the old values on the way
    before = tree.patch_in_place(root, base, kept)
    # I expect the tree update_in_place makes, and each entry's old value as it was
    assert before.after == tree.update_in_place(copy.deepcopy(original), base, kept)
    assert list(before.olds) == [(*base, *rel) for rel, _ in kept]
    for full, old in before.olds.items():
        assert old == tree.get(original, full)


@given(st.one_of(trees, prioritised, st.dictionaries(st.sampled_from(["0", "1", "3"]), leaves)))
def test_render_to_send_sends_what_render_makes(node: Any) -> None:
    # Given any stored value, flat or nested, with priorities or array-like keys
    # I expect the same rendering, and a flat object with nothing to drop not copied
    assert tree.render_to_send(node) == tree.render(node)
    flat = isinstance(node, dict) and not any(isinstance(v, dict) for v in node.values())
    if flat and ".priority" not in node and ".value" not in node:
        sent = tree.render_to_send(node)
        assert sent is node or isinstance(sent, list)


def test_a_deletion_from_a_wide_object_changes_it_in_place() -> None:
    jobs = {"j1": {"a": 1}, "j2": {"a": 2}, "j3": {"a": 3}}
    root = {"queue": jobs}
    after = tree.update_in_place(root, ["queue"], [(["j2"], None), (["j9", "x"], None)])
    assert after is root and root["queue"] is jobs
    assert jobs == {"j1": {"a": 1}, "j3": {"a": 3}}
    # and one that empties its object still prunes it
    assert tree.update_in_place({"q": {"j1": 1}, "x": 1}, [], [(["q", "j1"], None)]) == {"x": 1}


_segments = st.lists(st.sampled_from(["a", "b", "ab", "a b", "0"]), min_size=1, max_size=4)


@given(st.lists(_segments, max_size=30))
def test_overlapping_finds_an_ancestor_pair_exactly_when_one_exists(paths: list[list[str]]) -> None:
    # The reference compares every pair; the function sorts once.
    expected = any(
        len(a) <= len(b) and b[: len(a)] == a
        for i, a in enumerate(paths)
        for j, b in enumerate(paths)
        if i != j
    )
    pair = tree.overlapping(paths)
    assert (pair is not None) == expected
    if pair is not None:
        a, b = pair
        assert list(a) in paths and list(b) in paths and b[: len(a)] == a


def test_overlapping_on_a_large_flat_update() -> None:
    paths = [("live", "inbox", "c", f"job{i:06d}") for i in range(100_000)]
    assert tree.overlapping(paths) is None
    assert tree.overlapping([*paths, ("live", "inbox", "c")]) == (("live", "inbox", "c"), paths[0])
