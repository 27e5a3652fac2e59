"""Configuration -> a connected database: real Firebase, the official emulator, or embedded.

``resolve(settings)`` is the pure decision (which URL, which credential, what to probe);
``connect(settings)`` acts on it: loads credentials, finds or starts the embedded server, and
turns every configuration mistake into a ``ConfigError`` that says what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from atmosphere.errors import ConfigError, PermissionDenied
from atmosphere.paths import Paths
from atmosphere.settings import Settings

from . import embedded
from .client import FirebaseDatabase
from .supervisor import Supervisor

Kind = Literal["firebase", "emulator", "url", "embedded"]
_FIREBASE_DOMAINS = (".firebaseio.com", ".firebasedatabase.app")
_NOT_RUNNING = (
    "no database is running at {url}: start `atmosphere dispatcher` (or `atmosphere db`) "
    "or set ATMOSPHERE_DATABASE_URL"
)

_NOT_OURS = (
    "something answers on {url} but it is not the atmosphere db server of {data_dir} (it "
    "cannot prove it holds {data_dir}/server.key): another program, or another user's server, "
    "holds the port; stop it or set ATMOSPHERE_DB_PORT"
)


@dataclass(frozen=True)
class Target:
    """Where the database is and how to authenticate to it."""

    kind: Kind
    database_url: str  # what FirebaseDatabase resolves (db/_endpoint.py)
    base_url: str | None = None  # http://host:port for local servers (probed before use)
    namespace: str | None = None
    credentials: str | None = None  # service-account file (real Firebase only)
    token: str | None = None  # Bearer token for the embedded server
    uid: str | None = None  # the limited user this process is (None: admin)
    # firebase-admin's databaseAuthVariableOverride: the auth the rules judge (real Firebase
    # and the emulator; an embedded server's users file maps each token to its auth instead)
    auth_override: dict[str, Any] | None = None


def resolve(settings: Settings) -> Target:
    """Decide which database ``settings`` describe (pure; raises ConfigError)."""
    target = _where(settings)
    return replace(target, uid=settings.db_uid, auth_override=_auth_override(settings, target))


def _where(settings: Settings) -> Target:
    token = str(settings.db_token) if settings.db_token is not None else None
    url = settings.database_url
    if url is None:
        if settings.emulator_host:
            host = _emulator_host(settings.emulator_host)
            return _local("emulator", f"http://{host}", settings.namespace, None)
        base = f"http://{_netloc(settings.db_host, settings.db_port)}"
        return _local("embedded", base, settings.namespace, token)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        if settings.emulator_host:  # as firebase-admin does: ns = the first DNS label
            base = f"http://{_emulator_host(settings.emulator_host)}"
            return _local("emulator", base, host.split(".")[0], None)
        if not host.endswith(_FIREBASE_DOMAINS) or parts.path.strip("/"):
            raise ConfigError(
                f"database URL {url!r} is not a Firebase Realtime Database URL: use "
                "https://<name>.firebaseio.com or https://<name>.<region>.firebasedatabase.app"
            )
        return Target("firebase", f"https://{parts.netloc}", credentials=settings.credentials)
    if parts.scheme == "http" and host:
        ns = parse_qs(parts.query).get("ns", [])
        if len(ns) != 1 or not ns[0]:
            raise ConfigError(f"database URL {url!r} needs exactly one ?ns=<name>")
        return _local("url", f"http://{parts.netloc}", ns[0], token)
    raise ConfigError(
        f"database URL {url!r} is not http(s)://host[:port]; use https://<db>.firebaseio.com "
        "or http://127.0.0.1:<port>?ns=<name>"
    )


def connect(
    settings: Settings, *, start_embedded: bool = False, wait: float | None = None
) -> FirebaseDatabase:
    """A connected database for ``settings``.

    Args:
        settings: where the database is (see ``resolve``).
        start_embedded: start the embedded server as a child process when it is not running
            and restart it whenever it dies (it is stopped again by ``FirebaseDatabase.close()``);
            when another process started it from the same data directory, watch it and restart
            it if it dies (supervisor.py).
        wait: seconds to wait for a local server to come up; None fails at once.

    Raises:
        ConfigError: the configuration is wrong, credentials are missing or invalid, or no
            local server answers.
    """
    target = resolve(settings)
    if target.kind == "firebase":
        credential = load_credential(target.credentials)
        database = FirebaseDatabase(target.database_url, credential=credential, **_as(target))
        return _signed_in(database, target, settings)
    assert target.base_url is not None and target.namespace is not None
    server = None
    # The embedded server found on its default port must prove it owns our data directory.
    ours = settings.data_dir if target.kind == "embedded" else None
    if not embedded.is_running(target.base_url, target.namespace, data_dir=ours):
        if ours is not None and embedded.is_running(target.base_url, target.namespace):
            raise ConfigError(_NOT_OURS.format(url=target.base_url, data_dir=ours))
        if target.kind == "embedded" and start_embedded:
            server = _start_or_find(settings, target)
        elif not wait or not embedded.wait_running(
            target.base_url, target.namespace, wait, data_dir=ours
        ):
            raise ConfigError(_NOT_RUNNING.format(url=target.database_url))
    elif target.kind == "embedded" and start_embedded:
        server = _watch(settings, target)
    database = FirebaseDatabase(
        target.database_url, token=target.token, embedded=server, **_as(target)
    )
    return _signed_in(database, target, settings)


def _auth_override(settings: Settings, target: Target) -> dict[str, Any] | None:
    """The auth a limited user's process asks firebase-admin to be judged as, if any."""
    uid = settings.db_uid
    if target.kind in ("embedded", "url"):
        if settings.db_claims is not None:
            raise ConfigError(
                "ATMOSPHERE_DB_CLAIMS is for real Firebase: an embedded server's users file "
                "(atmosphere db --users) holds each user's claims"
            )
        if uid is not None and target.token is None:
            raise ConfigError(
                f"ATMOSPHERE_DB_UID={uid} needs that user's own token in ATMOSPHERE_DB_TOKEN "
                "(the server's --users file maps the token to the uid and its claims)"
            )
        return None
    if uid is None:
        if settings.db_claims is not None:
            raise ConfigError("ATMOSPHERE_DB_CLAIMS needs ATMOSPHERE_DB_UID (whose claims?)")
        return None
    try:
        claims = json.loads(settings.db_claims) if settings.db_claims is not None else {}
    except ValueError as error:
        raise ConfigError(f"ATMOSPHERE_DB_CLAIMS is not JSON: {error}") from None
    if not isinstance(claims, dict):
        raise ConfigError('ATMOSPHERE_DB_CLAIMS must be a JSON object: {"atmosphere": "cloud"}')
    return {"uid": uid, "token": claims}


def _as(target: Target) -> dict[str, Any]:
    return {} if target.auth_override is None else {"auth_override": target.auth_override}


def _signed_in(database: FirebaseDatabase, target: Target, settings: Settings) -> FirebaseDatabase:
    """``database``, once the rules grant its uid (if limited) that uid's own replies.

    A token or claims meant for another uid would otherwise surface later as a cloud that
    never registers or a maker whose submits are all refused.
    """
    if target.uid is None:
        return database
    try:
        database.get(Paths(settings.root).replies(target.uid), shallow=True)
    except PermissionDenied:
        database.close()
        raise ConfigError(
            f"the database does not know this process as uid {target.uid!r}: its credentials "
            "(ATMOSPHERE_DB_TOKEN, or ATMOSPHERE_DB_CLAIMS) stand for another user or role, "
            f"or the rules are not the shipped ones (docs/security.md)"
        ) from None
    except BaseException:
        database.close()
        raise
    return database


def load_credential(path: str | None) -> Any:
    """A firebase-admin credential from a service-account file, or application defaults."""
    import google.auth
    import google.auth.exceptions
    from firebase_admin import credentials

    if path is None:
        try:
            google.auth.default()
        except google.auth.exceptions.GoogleAuthError as error:
            raise ConfigError(
                "real Firebase needs credentials: set GOOGLE_APPLICATION_CREDENTIALS (or "
                "ATMOSPHERE_CREDENTIALS) to a service-account JSON file, or run "
                f"`gcloud auth application-default login` ({error})"
            ) from None
        return credentials.ApplicationDefault()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"credentials file {path!r} does not exist")
    try:
        json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"credentials file {path!r} is not a JSON file: {error}") from None
    try:
        return credentials.Certificate(str(file))
    except (ValueError, OSError) as error:
        raise ConfigError(
            f"credentials file {path!r} is not a valid service-account key: {error}"
        ) from None


def _start_or_find(settings: Settings, target: Target) -> embedded.EmbeddedServer | None:
    assert target.base_url is not None and target.namespace is not None
    try:
        server = embedded.start(
            settings.db_host,
            settings.db_port,
            settings.data_dir,
            token=target.token,
            fsync=settings.fsync,
        )
    except ConfigError:
        # Another process may have started it at the same moment (port or data dir taken).
        if embedded.wait_running(
            target.base_url, target.namespace, 5.0, data_dir=settings.data_dir
        ):
            return _watch(settings, target)
        raise
    Supervisor(server, target.namespace).start()
    return server


def _watch(settings: Settings, target: Target) -> embedded.EmbeddedServer | None:
    """Supervise a server another process started, if it serves our data directory."""
    assert target.base_url is not None and target.namespace is not None
    options = embedded.ServerOptions(
        settings.db_host, settings.db_port, settings.data_path, target.token, settings.fsync
    )
    server = embedded.EmbeddedServer(None, target.base_url, options)
    return server if Supervisor(server, target.namespace).start().running else None


def _local(kind: Kind, base: str, ns: str, token: str | None) -> Target:
    return Target(kind, f"{base}?ns={ns}", base_url=base, namespace=ns, token=token)


def _emulator_host(value: str) -> str:
    if "//" in value or ":" not in value:
        raise ConfigError(
            f"emulator host {value!r} must be host:port (FIREBASE_DATABASE_EMULATOR_HOST)"
        )
    return value


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
