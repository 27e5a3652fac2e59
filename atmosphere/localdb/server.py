"""Running the embedded server: bind, announce, serve (protocol.py), shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import uvloop

from atmosphere.hosts import allowed_hosts, is_loopback

from . import access, identity
from .protocol import FastServer
from .repair import repair as repair_log
from .service import Config, LocalDb
from .store import COMPACT_AFTER_BYTES, CorruptLog, DataDirInUse, Store


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# The most a Unix socket's path may hold (sun_path is 108 bytes, one for the NUL).
_MAX_UNIX_PATH = 107


def _bind_unix(data_dir: str) -> socket.socket | None:
    """Listen on ``<data_dir>/server.sock`` too (owner only), for this machine's own clients:
    a Unix socket costs less CPU per send and receive than loopback TCP, on both sides.

    None when the path is too long or binding fails: clients then stay on TCP. Called with the
    data dir locked, so a socket file already there is a dead server's.
    """
    path = os.path.abspath(os.path.join(data_dir, "server.sock"))
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        return None
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead server's (a directory there, or not ours: no socket)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Created 0600: no moment when others could connect. The umask is the process's, but this
    # runs at start-up, before the server starts any thread that creates files.
    old_mask = os.umask(0o177)
    try:
        sock.bind(path)
        sock.listen(2048)
    except OSError:
        sock.close()
        return None
    finally:
        os.umask(old_mask)
    sock.set_inheritable(True)
    return sock


def _load_users(path: str, token: str | None) -> dict[str, dict[str, Any]]:
    """``{token: auth}`` from ``path``, keyed for lookup; exits on a bad file."""
    if not token:
        # Without one, "Bearer owner" is admin to anyone: limited users would limit nothing.
        fail("--users needs --token (otherwise anyone here is admin as 'owner')")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the users file {path}: {exc}")
    if not isinstance(data, dict) or not all(
        isinstance(t, str) and len(t) >= 16 and isinstance(a, dict) for t, a in data.items()
    ):
        fail(f"{path}: expected {{token: auth object}}, each token 16 characters or more")
    if token in data:
        fail(f"{path}: a user token equals the admin token")
    return {access.user_key(t): auth for t, auth in data.items()}


def _open_store(store: Store, repair: bool) -> Store:
    """Open ``store``; with ``repair``, cut a corrupt log first (repair.py) instead of failing."""
    for _ in range(1000):  # each pass cuts one log short of its corruption: this ends
        try:
            store.open()
            return store
        except DataDirInUse as exc:
            fail(str(exc))
        except CorruptLog as exc:
            if not repair:
                store.close()
                fail(str(exc))
            for line in repair_log(exc):
                print(f"atmosphere db --repair: {line}", flush=True)
            store.close()
            store = Store(store.dir, store.fsync, store.compact_after_bytes)
    fail(f"{store.dir}: the logs are still corrupt after repairing them")


def fail(message: str) -> NoReturn:
    """Print an error and exit with status 2."""
    print(f"atmosphere db: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def run(
    host: str,
    port: int,
    data_dir: str,
    token: str | None,
    fsync: bool,
    *,
    max_body: int = 32 * 1024 * 1024,
    max_user_body: int = 4 * 1024 * 1024,
    rules_file: str | None = None,
    keep_alive: float = 30.0,
    strict_indexes: bool = False,
    listener_buffer: int = 32 * 1024 * 1024,
    compact_after: int = COMPACT_AFTER_BYTES,
    max_client_connections: int = 1024,
    idle_timeout: float = 120.0,
    request_timeout: float = 60.0,
    repair: bool = False,
    users_file: str | None = None,
    allow_hosts: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
) -> None:
    """Serve until SIGTERM/SIGINT; exit code 2 on a configuration error."""
    if not token and not is_loopback(host):
        fail(f"refusing to bind {host} (not loopback) without a secret token (--token)")
    default_rules = None
    if rules_file is not None:
        default_rules = Path(rules_file).read_text(encoding="utf-8")
        try:
            access.parse_rules(default_rules)
        except ValueError as exc:
            fail(f"bad rules file {rules_file}: {exc}")
    users = _load_users(users_file, token) if users_file is not None else {}
    began = time.monotonic()
    store = _open_store(Store(data_dir, fsync=fsync, compact_after_bytes=compact_after), repair)
    if store.restored_bytes:  # every client waits out a restart: say how long the data took
        took = time.monotonic() - began
        print(f"atmosphere db: restored {store.restored()} in {took:.2f} s", file=sys.stderr)
    key = identity.create_key(data_dir)  # after the lock: only the owner of the dir writes it
    # The tree is acyclic plain data: keep the collector off the restored tree and make
    # collections rarer, so a large database does not add pauses to every few requests.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        sock = _bind(host, port)
    except OSError as exc:
        store.close()
        fail(f"cannot bind {host}:{port}: {exc}")
    config = Config(
        token=token or None,
        max_body=max_body,
        max_user_body=max_user_body,
        keep_alive=keep_alive,
        default_rules=default_rules,
        strict_indexes=strict_indexes,
        listener_buffer=listener_buffer,
        max_client_connections=max_client_connections,
        idle_timeout=idle_timeout,
        request_timeout=request_timeout,
        identity_key=key,
        users=users,
        allowed_hosts=allowed_hosts(host, bool(token), allow_hosts),
        cors_origins=frozenset(cors_origins),
    )
    unix_sock = _bind_unix(data_dir)
    unix_path = unix_sock.getsockname() if unix_sock is not None else None
    server = FastServer(LocalDb(store, config), os.fsencode(unix_path) if unix_path else None)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{actual_port}"
    info = {"pid": os.getpid(), "host": host, "port": actual_port, "url": url, "socket": unix_path}
    (Path(data_dir) / "server.json").write_text(json.dumps(info), encoding="utf-8")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        print(f"atmosphere db listening on {url}", flush=True)
        await server.serve(sock, unix_sock)

    try:
        uvloop.run(main())
    finally:
        # Before the lock goes with the store: a server started next may already have its own.
        for name in ("server.json", "server.sock"):
            with contextlib.suppress(FileNotFoundError):
                (Path(data_dir) / name).unlink()
        store.close()
