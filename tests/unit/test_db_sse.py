"""SSEParser: incremental event-stream parsing, independent of how the bytes are chunked."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.db._sse import SSEEvent, SSEParser

FIREBASE_SAMPLE = (
    b'event: put\ndata: {"path": "/", "data": {"a": 1, "b": 2}}\n\n'
    b"event: keep-alive\ndata: null\n\n"
    b'event: put\ndata: {"path": "/c", "data": {"foo": true, "bar": false}}\n\n'
    b'event: patch\ndata: {"path": "/c", "data": {"foo": 3, "baz": 4}}\n\n'
)


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    return [e for chunk in chunks for e in parser.feed(chunk)]


def test_firebase_sample_stream() -> None:
    events = feed_all([FIREBASE_SAMPLE])
    assert [e.event for e in events] == ["put", "keep-alive", "put", "patch"]
    assert json.loads(events[3].data) == {"path": "/c", "data": {"foo": 3, "baz": 4}}
    assert events[1].data == "null"


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    whole = feed_all([FIREBASE_SAMPLE])
    assert feed_all([bytes([b]) for b in FIREBASE_SAMPLE]) == whole


def test_incomplete_event_waits_for_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: put\ndata: 1\n") == []
    assert parser.feed(b"\n") == [SSEEvent("put", "1")]


def test_crlf_and_cr_line_ends_including_split_pairs() -> None:
    assert feed_all([b"event: a\r\ndata: 1\r\n\r\n"]) == [SSEEvent("a", "1")]
    assert feed_all([b"event: a\rdata: 1\r\r"]) == [SSEEvent("a", "1")]
    # A \r\n split across chunks is one line end, not two (which would dispatch early).
    assert feed_all([b"event: a\r", b"\ndata: 1\r", b"\n\r", b"\n"]) == [SSEEvent("a", "1")]
    assert feed_all([b"data: 1\r", b"", b"\n\r", b"", b"\n"]) == [SSEEvent("message", "1")]


def test_multiline_data_comments_id_retry_and_unknown_fields() -> None:
    stream = (
        b": this is a comment\n"
        b"id: 7\nretry: 1500\nretry: soon\nfoo: bar\n"
        b"data: first\ndata:second\ndata\n\n"
        b"event: x\n\n"  # no data: not dispatched
        b"data: y\n\n"
    )
    assert feed_all([stream]) == [
        SSEEvent("message", "first\nsecond\n", "7", 1500),
        SSEEvent("message", "y", "7", 1500),
    ]


def test_utf8_split_inside_a_character_and_bom() -> None:
    raw = "\ufeffdata: café ☁\n\n".encode()
    assert feed_all([raw[i : i + 1] for i in range(len(raw))]) == [SSEEvent(data="café ☁")]


def test_large_event_in_chunks_is_linear() -> None:
    payload = json.dumps({"path": "/", "data": "x" * 2_000_000})
    raw = f"event: put\ndata: {payload}\n\n".encode()
    events = feed_all([raw[i : i + 4096] for i in range(0, len(raw), 4096)])
    assert events == [SSEEvent("put", payload)]


_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=30
)
_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_"), min_size=1, max_size=12)
_events = st.lists(
    st.tuples(_name, st.lists(_text, min_size=1, max_size=4), st.none() | _name),
    max_size=8,
)


@given(
    events=_events,
    eols=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1),
    cuts=st.lists(st.integers(min_value=0)),
)
def test_any_split_of_a_valid_stream_gives_the_same_events(
    events: list[tuple[str, list[str], str | None]], eols: list[str], cuts: list[int]
) -> None:
    lines: list[str] = []
    expected: list[SSEEvent] = []
    last_id = None
    for name, data_lines, event_id in events:
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        lines.append(f"event: {name}")
        lines.extend(f"data: {d}" for d in data_lines)
        lines.append(": keep going")
        lines.append("")
        expected.append(SSEEvent(name, "\n".join(data_lines), last_id))
    out, prev = [], ""
    for i, line in enumerate(lines):
        # "\r" then an empty line ended by "\n" would be one CRLF: that is a different stream.
        eol = "\r" if prev == "\r" and not line else eols[i % len(eols)]
        out.append(line + eol)
        prev = eol
    raw = "".join(out).encode()
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    chunks = [raw[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert feed_all([raw]) == expected
    assert feed_all(chunks) == expected
