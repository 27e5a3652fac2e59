"""The transport sends a request's head and a small body in one send (one system call)."""

from __future__ import annotations

from atmosphere.db._http import _ONE_SEND_BYTES, _connection


class _Socket:
    """Records what is sent; nothing is read."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def _sent(body: bytes | None, https: bool = False) -> list[bytes]:
    conn = _connection("127.0.0.1", 9400, https, 5.0, None)
    sock = _Socket()
    conn.sock = sock  # connected: http.client sends on it as it is
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    conn.request("PATCH", "/a.json?print=silent", body=body, headers=headers)
    return sock.sends


def test_head_and_small_body_leave_in_one_send() -> None:
    body = b'{"jobs/j1/state":"assigned"}'
    for https in (False, True):
        sends = _sent(body, https)
        assert len(sends) == 1
        head, _, rest = sends[0].partition(b"\r\n\r\n")
        assert rest == body
        assert head.startswith(b"PATCH /a.json?print=silent HTTP/1.1\r\n")
        assert b"\r\nContent-Length: %d" % len(body) in head
        assert b"\r\nAuthorization: Bearer t" in head


def test_a_request_without_a_body_is_unchanged() -> None:
    sends = _sent(None)
    assert len(sends) == 1
    assert sends[0].endswith(b"\r\n\r\n")


def test_a_large_body_is_sent_after_the_head_without_a_copy() -> None:
    body = b"x" * (_ONE_SEND_BYTES + 1)
    sends = _sent(body)
    assert len(sends) == 2
    assert sends[0].endswith(b"\r\n\r\n")
    assert sends[1] == body
