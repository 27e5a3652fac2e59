"""An incremental Server-Sent Events parser (the WHATWG event-stream rules), pure and chunk-fed.

Bytes go in as they arrive from the socket, in chunks of any size; complete events come out.
Lines end in ``\\n``, ``\\r\\n`` or ``\\r`` (also when a ``\\r\\n`` pair is split across chunks).
Work is linear in the input: each byte is scanned for a line end once.

Servers (Firebase's and ours) end lines with ``\\n`` only, and every event is a put or patch
with one data line, so that case takes a fast path: one C-level split of the chunk into
lines, fields matched on bytes, and a line decoded to text only when it is kept (an event's
data once, at dispatch). A chunk with a ``\\r`` goes the general way, a regex search per line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_EOL = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event: its type, its data (lines joined by \\n), last id and retry.

    A NamedTuple, not a frozen dataclass: one is made per event, and it costs a third.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed raw stream bytes; get back the events they complete."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # no line end in _buf[:_scanned]
        self._skip_lf = False  # the last chunk ended in \r: a leading \n belongs to it
        self._started = False
        self._event = ""
        self._data: list[bytes] = []
        self._has_data = False
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk``; return the events it completes, in order."""
        if not chunk:
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buf = self._buf
        buf += chunk
        if not self._started and not self._strip_bom():
            return []
        if b"\r" not in chunk:  # (what buf held before has no line end left, so no \r)
            return self._feed_lf()
        events: list[SSEEvent] = []
        start = 0
        pos = self._scanned
        while (m := _EOL.search(buf, pos)) is not None:
            end = m.start()
            event = self._line(bytes(buf[start:end]))
            if event is not None:
                events.append(event)
            start = pos = self._after_eol(end)
        if start:
            del buf[:start]
        self._scanned = len(buf)
        return events

    def _feed_lf(self) -> list[SSEEvent]:
        """``feed`` for a buffer whose lines all end in ``\\n``: one split, bytes compared."""
        buf = self._buf
        last = buf.rfind(b"\n", self._scanned)
        if last < 0:
            self._scanned = len(buf)
            return []
        lines = buf[:last].split(b"\n")
        del buf[: last + 1]
        self._scanned = len(buf)
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                data = self._data  # a new list after a dispatch
            elif line.startswith(b"data:"):
                data.append(bytes(line[6:] if line[5:6] == b" " else line[5:]))
                self._has_data = True
            elif line.startswith(b"event:"):
                value = line[7:] if line[6:7] == b" " else line[6:]
                self._event = value.decode("utf-8", errors="replace")
            else:
                self._line(bytes(line))
        return events

    def _strip_bom(self) -> bool:
        """Drop a leading UTF-8 BOM; False while too few bytes have come to tell."""
        buf = self._buf
        if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)):
            return False
        self._started = True
        if buf.startswith(_BOM):
            del buf[: len(_BOM)]
        return True

    def _after_eol(self, end: int) -> int:
        """Index just past the line end at ``end`` (\r\n counts as one)."""
        buf = self._buf
        if buf[end] != 0x0D:
            return end + 1
        if end + 1 == len(buf):
            self._skip_lf = True  # the \n of a \r\n may start the next chunk
            return end + 1
        return end + 2 if buf[end + 1] == 0x0A else end + 1

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None  # a comment
        name_raw, colon, value_raw = raw.partition(b":")
        if colon and value_raw[:1] == b" ":
            value_raw = value_raw[1:]
        if name_raw == b"data":
            self._data.append(value_raw)  # decoded once, at dispatch
            self._has_data = True
            return None
        name = name_raw.decode("utf-8", errors="replace")
        value = value_raw.decode("utf-8", errors="replace")
        if name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event_type, self._event = self._event or "message", ""
        if not self._has_data:
            return None  # an event without data lines is not dispatched
        lines, self._data, self._has_data = self._data, [], False
        # \n cannot be inside a multi-byte character, so decoding the joined lines is decoding
        # each (an invalid sequence becomes the same U+FFFD either way).
        data = (lines[0] if len(lines) == 1 else b"\n".join(lines)).decode("utf-8", "replace")
        return SSEEvent(event_type, data, self.last_event_id, self.retry)
