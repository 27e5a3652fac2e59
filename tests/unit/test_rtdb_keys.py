"""keys.plainly_valid_paths: the one-regex test of a whole update's keys (the client's)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.rtdb.keys import MAX_KEY_BYTES, invalid_key, plainly_valid_paths, split_path

_chars = st.sampled_from(["a", "b", "/", ".", "#", "$", "[", "]", "\x00", "\x7f", "\n", "é", "-"])
_paths = st.lists(
    st.one_of(st.text(_chars, max_size=8), st.just("k" * (MAX_KEY_BYTES + 1))), max_size=4
)


def _each_valid(paths: list[str]) -> bool:
    return all(split_path(p) and invalid_key(split_path(p)) is None for p in paths)


@given(_paths)
def test_plainly_valid_paths_says_true_only_of_valid_ones(paths: list[str]) -> None:
    if plainly_valid_paths(paths):
        assert _each_valid(paths)


def test_the_usual_keys_pass_and_each_kind_of_fault_falls_to_the_full_check() -> None:
    assert plainly_valid_paths(["jobs/-P7w_Wy/state", "live/inbox/c1/-P7w_Wy", "a//b/"])
    for bad in ("a/.priority", "a/b#", "/", "", "a/" + "k" * (MAX_KEY_BYTES // 4 + 1)):
        assert not plainly_valid_paths(["jobs/x", bad])
    assert not plainly_valid_paths([1, "a"])  # type: ignore[list-item]
