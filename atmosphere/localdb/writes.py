"""Writes: PUT, POST, PATCH and DELETE, each checked, committed durably, then published."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from atmosphere.rtdb import tree
from atmosphere.rtdb.keys import VALID_KEYS_SEEN, is_valid_key, plainly_valid_paths
from atmosphere.rtdb.pushid import PushIdGenerator
from atmosphere.rtdb.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_STRING_BYTES,
    normalise,
    parse_json,
    resolve,
)

from . import access
from .events import Hub
from .messages import (
    Header,
    PreconditionFailed,
    Request,
    Response,
    etag_header,
    strip_etag,
)
from .request import HttpError, dump
from .store import Store

BAD_PATCH = (
    "Invalid data; couldn't parse JSON object. Are you sending a JSON object with valid key names?"
)
# A string this short is within the 10 MB limit whatever its characters.
_SHORT_STRING = MAX_STRING_BYTES // 4


class Writer:
    """Applies writes to the store's namespaces and tells the listeners."""

    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub
        self.push_ids = PushIdGenerator()
        self.writes = 0  # committed write requests, for the jobs benchmark's writes per job
        self.clock = _now_ms  # server time in ms, for server values (tests fix it)

    def _stored(self, req: Request, body: bytes, path: Sequence[str], now: int) -> Any:
        value, has_sv = normalise(parse_json(body), len(path), now)
        if has_sv:
            value = resolve(value, now, tree.get(req.ns.root, path))
        return value

    def commit(
        self,
        req: Request,
        writes: list[tuple[list[str], Any]],
        entries: list[tuple[list[str], Any]] | None = None,
    ) -> None:
        """Check the rules, log durably, make current, publish (raises only before the log)."""
        ns = req.ns
        before: Any = ns.root
        if req.caller.admin:
            # No rules to judge old and new whole trees: log first, then change the tree in
            # place (O(depth), where copying would cost the width of every object on the way),
            # keeping only the replaced values for the listeners.
            if entries is None:
                olds = [(tuple(p), tree.get(before, p)) for p, _ in writes]
                self.store.log(ns, writes)
                after = tree.apply_in_place(before, writes, self.store.owned())
                before = tree.Before(after, olds)
            else:
                # A PATCH's entries take their old values as they replace them.
                self.store.log(ns, writes)
                before = tree.patch_in_place(before, req.path, entries, self.store.owned())
                after = before.after
            self.store.make_current(ns, after)
        else:
            if entries is None:
                after = tree.set_many(before, writes)
            else:
                after = tree.update(before, req.path, entries)
            if not access.can_write(req.caller, ns, [p for p, _ in writes], before, after):
                raise HttpError(401, access.PERMISSION_DENIED)
            self.store.commit(ns, writes, after)
        self.writes += 1
        # The write is durable now: nothing below may turn the answer into an error (the SDK
        # retries 500/503, which would apply it twice).
        try:
            where = req.path if entries is not None else writes[0][0]
            self.hub.publish(ns.name, where, entries, before, after)
        except Exception:  # pragma: no cover - a listener bug must not fail the writer
            pass

    def _check_if_match(self, req: Request) -> Header | None:
        if_match = req.header(b"if-match")
        if if_match is None:
            return None
        node = tree.get(req.ns.root, req.path)
        current = tree.etag(node)
        if strip_etag(if_match) != current:
            raise PreconditionFailed(current, tree.render(node))
        return etag_header(current)

    def put(self, req: Request, body: bytes) -> Response:
        """PUT: replace the location (``if-match`` makes it conditional)."""
        value = self._stored(req, body, req.path, self.clock())
        try:
            self._check_if_match(req)
        except PreconditionFailed as exc:
            return Response(412, dump(exc.value), [etag_header(exc.etag)])
        want_etag = req.header(b"if-match") is not None or req.header(b"x-firebase-etag") == "true"
        answer = b"" if req.silent else dump(tree.render(value), req.pretty)
        headers = [etag_header(tree.etag(value))] if want_etag else []
        self.commit(req, [(req.path, value)])
        return Response(204 if req.silent else 200, answer, headers)

    def post(self, req: Request, body: bytes) -> Response:
        """POST: store the value under a new push id."""
        if req.header(b"if-match") is not None:
            raise HttpError(400, "if-match is not supported on POST")
        if req.path and req.path[-1] == ".priority":
            raise HttpError(400, "Cannot push below .priority")
        name = self.push_ids.next()
        path = [*req.path, name]
        value = self._stored(req, body, path, self.clock())
        headers = []
        if req.header(b"x-firebase-etag") == "true":
            headers.append(etag_header(tree.etag(value)))
        if value is not None:
            self.commit(req, [(path, value)])
        elif not access.can_write(req.caller, req.ns, [path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        if req.silent:
            return Response(204, b"", headers)
        return Response(200, dump({"name": name}, req.pretty), headers)

    def patch(self, req: Request, body: bytes) -> Response:
        """PATCH: a multi-path update, atomic."""
        headers = req.headers
        if b"if-match" in headers or b"x-firebase-etag" in headers:
            raise HttpError(400, "ETags are not supported on PATCH")
        data = parse_json(body)
        if type(data) is not dict or (req.path and req.path[-1] == ".priority"):
            raise HttpError(400, BAD_PATCH)
        now = self.clock()
        base = req.path
        # One regex over every key at once (a PATCH has a dozen per job, most of them new ids):
        # only when it finds something is each key checked segment by segment.
        checked = plainly_valid_paths(data)
        entries = [
            _patch_entry(key, raw, base, now, req.ns.root, checked) for key, raw in data.items()
        ]
        nested = any(len(segments) > 1 for segments, _ in entries)  # only then can they overlap
        if nested:
            _check_no_overlap([s for s, _ in entries])
        answer = Response(204)
        if not req.silent:
            echo = {"/".join(s): tree.render(v) for s, v in entries}
            answer = Response(200, dump(echo, req.pretty))
        if entries:
            self.commit(req, [([*base, *s], v) for s, v in entries], entries)
        return answer

    def delete(self, req: Request) -> Response:
        """DELETE: remove the location (``if-match`` makes it conditional)."""
        try:
            matched = self._check_if_match(req)
        except PreconditionFailed as exc:
            return Response(412, dump(exc.value), [etag_header(exc.etag)])
        if tree.get(req.ns.root, req.path) is not None:
            self.commit(req, [(req.path, None)])
        elif not access.can_write(req.caller, req.ns, [req.path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        headers = [matched] if matched is not None else []
        if req.header(b"x-firebase-etag") == "true":
            headers = [etag_header(tree.NULL_ETAG)]
        if req.silent:
            return Response(204, b"", headers)
        return Response(200, b"null", headers)


def _patch_entry(
    key: str, raw: Any, base: list[str], now: int, root: Any, checked: bool = False
) -> tuple[list[str], Any]:
    """One PATCH entry as (path below ``base``, stored value); raise HttpError if invalid.

    ``checked``: every segment of ``key`` is known to be a valid key already.
    """
    if "/" in key:
        segments = key.split("/")
        if "" in segments:  # "a//b", "/a": empty segments name nothing
            segments = [s for s in segments if s]
            if not segments:
                raise HttpError(400, BAD_PATCH)
    else:
        segments = [key]
    if not checked:
        seen = VALID_KEYS_SEEN
        for s in segments:
            if s not in seen:  # (a job's id is, from its second path in a PATCH on)
                _check_segments(segments)
                break
    if raw is None:
        return segments, None  # a deletion (half of a job's entries)
    kind = type(raw)
    if (
        kind is bool
        or (kind is str and len(raw) <= _SHORT_STRING)
        or (kind is int and INT64_MIN <= raw <= INT64_MAX)
    ):
        return segments, raw  # the common case: stored exactly as parsed
    value, has_sv = normalise(raw, len(base) + len(segments), now)
    if has_sv:
        value = resolve(value, now, tree.get(root, [*base, *segments]))
    return segments, value


def _check_segments(segments: list[str]) -> None:
    """Raise HttpError unless every segment is a valid key (``.priority`` may end the path)."""
    last = len(segments) - 1
    for i, s in enumerate(segments):
        if not is_valid_key(s) and not (s == ".priority" and i == last):
            raise HttpError(400, BAD_PATCH)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_no_overlap(paths: list[list[str]]) -> None:
    pair = tree.overlapping(paths)
    if pair is not None:
        a, b = pair
        raise HttpError(
            400,
            f"Invalid data; path /{'/'.join(a)} is an ancestor of another path "
            f"/{'/'.join(b)} in the update",
        )
