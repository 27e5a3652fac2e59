"""SSEParser against a reference: the WHATWG event-stream rules applied to the whole stream.

The parser has a fast path for ``\\n``-only chunks and a general one; whichever a chunking
takes, the events must be the ones the reference reads from the same bytes at once.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.db._sse import SSEEvent, SSEParser

_BOM = b"\xef\xbb\xbf"


def reference_events(raw: bytes) -> list[SSEEvent]:
    """The events of ``raw`` read at once, the spec's steps one by one (no speed tricks)."""
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)[:-1]  # the last piece has no line end: not a line
    events: list[SSEEvent] = []
    event_type, data, has_data = "", "", False
    last_id: str | None = None
    retry: int | None = None
    for line in lines:
        if line == "":
            if has_data:
                events.append(SSEEvent(event_type or "message", data[:-1], last_id, retry))
            event_type, data, has_data = "", "", False
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
            has_data = True
        elif name == "id" and "\x00" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events


def fed(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    parser = SSEParser()
    return [e for a, b in zip(points, points[1:], strict=False) for e in parser.feed(raw[a:b])]


_value = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12).map(str.encode),
    st.binary(max_size=8),  # invalid UTF-8 too
    st.sampled_from([b"", b" ", b"  x", b"7", b"12", b"1\x002", b"null", b'{"path":"/"}']),
).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
_name = st.sampled_from([b"data", b"event", b"id", b"retry", b"foo", b"", b"dat", b"data "])
_line = st.one_of(
    st.tuples(_name, st.sampled_from([b":", b": ", b""]), _value).map(b"".join),
    st.just(b""),  # dispatch
    _value.map(lambda v: b":" + v),  # a comment
)
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@settings(max_examples=500, deadline=None)
@given(
    lines=st.lists(st.tuples(_line, _eol), max_size=25),
    tail=_value,
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_frames_at_any_chunk_boundaries_match_the_reference(
    lines: list[tuple[bytes, bytes]], tail: bytes, bom: bool, cuts: list[int]
) -> None:
    raw = (_BOM if bom else b"") + b"".join(line + eol for line, eol in lines) + tail
    expected = reference_events(raw)
    assert fed(raw, []) == expected
    assert fed(raw, cuts) == expected


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["put", "patch", "keep-alive"]),
            st.lists(
                st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")),
                min_size=1,
                max_size=3,
            ),
        ),
        max_size=10,
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_lf_only_streams_as_servers_send_them(
    events: list[tuple[str, list[str]]], cuts: list[int]
) -> None:
    raw = "".join(
        f"event: {kind}\n" + "".join(f"data: {line}\n" for line in data) + "\n"
        for kind, data in events
    ).encode()
    expected = [SSEEvent(kind, "\n".join(data)) for kind, data in events]
    assert reference_events(raw) == expected
    assert fed(raw, cuts) == expected


def test_the_reference_itself_on_the_spec_examples() -> None:
    # The WHATWG examples: "data" without a colon is an empty data line; a space after the
    # colon is dropped, only one.
    assert reference_events(b"data\n\ndata\ndata\n\ndata:\n") == [
        SSEEvent(data=""),
        SSEEvent(data="\n"),
    ]
    assert reference_events(b"data:test\n\ndata: test\n\ndata:  x\n\n") == [
        SSEEvent(data="test"),
        SSEEvent(data="test"),
        SSEEvent(data=" x"),
    ]
