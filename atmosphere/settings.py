"""Configuration: one frozen Settings, from defaults, the environment (ATMOSPHERE_*) or a URL.

This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import ConfigError


class Secret(str):
    """A string whose repr is masked, so tokens never reach logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('**********')"


# One table of defaults: Settings and the CLI options both read it.
DEFAULTS: dict[str, Any] = {
    "database_url": None,  # None: the embedded server, started for you
    "credentials": None,  # path to a service-account JSON (real Firebase only)
    "emulator_host": None,  # FIREBASE_DATABASE_EMULATOR_HOST, as firebase-admin reads it
    "root": "atmosphere",  # every Atmosphere path lives under this one key
    "data_dir": ".atmosphere",  # the embedded server's files
    "db_host": "127.0.0.1",
    "db_port": 9400,
    "db_token": None,  # required by the embedded server when it binds beyond loopback
    # Hardened (docs/security.md): the limited user this process signs in as. Its cloud id and
    # maker id are this uid, the rules' only way to tell whose inbox and replies are whose.
    "db_uid": None,
    "db_claims": None,  # that user's claims as JSON, for the auth override (real Firebase only)
    "namespace": "atmosphere",  # the embedded server's ns= for the default database
    "fsync": False,  # fsync every embedded write (power-loss durability, slower)
    "station_host": "127.0.0.1",
    "station_port": 3000,
    "station_token": None,
    "heartbeat_interval": 2.0,  # seconds between cloud heartbeats
    "dead_after": 6.0,  # a cloud silent this long is dead; its jobs are requeued
    "max_deaths": 3,  # a job whose clouds died this many times is failed (CloudDied)
    "lease_seconds": 3.0,  # dispatcher leader lease; a standby takes over after it lapses
    "retention": 7 * 24 * 3600.0,  # finished jobs are kept this long, then collected
    "stats_retention": 7 * 24 * 3600.0,  # per-minute analytics are kept this long
    "max_data_bytes": 1_000_000,  # the largest job data (JSON bytes) a maker may submit
    "default_timeout": 60.0,  # seconds, when a job gives none
}

_ENV_PREFIX = "ATMOSPHERE_"
_FLOATS = {k for k, v in DEFAULTS.items() if isinstance(v, float)}
_INTS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_BOOLS = {k for k, v in DEFAULTS.items() if isinstance(v, bool)}
_SECRETS = {"db_token", "station_token"}
# Keys joined by "/": Firebase refuses . $ # [ ] and control characters in a key, and an empty
# segment would spell paths such as "/live/queue" that no reader looks at.
_ONE_KEY = r"[^./$#\[\]\x00-\x1f\x7f]+"
_ROOT = re.compile(rf"{_ONE_KEY}(?:/{_ONE_KEY})*")
_KEY = re.compile(_ONE_KEY)


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to find the database and behave; immutable."""

    database_url: str | None = DEFAULTS["database_url"]
    credentials: str | None = DEFAULTS["credentials"]
    emulator_host: str | None = DEFAULTS["emulator_host"]
    root: str = DEFAULTS["root"]
    data_dir: str = DEFAULTS["data_dir"]
    db_host: str = DEFAULTS["db_host"]
    db_port: int = DEFAULTS["db_port"]
    db_token: Secret | None = DEFAULTS["db_token"]
    db_uid: str | None = DEFAULTS["db_uid"]
    db_claims: str | None = DEFAULTS["db_claims"]
    namespace: str = DEFAULTS["namespace"]
    fsync: bool = DEFAULTS["fsync"]
    station_host: str = DEFAULTS["station_host"]
    station_port: int = DEFAULTS["station_port"]
    station_token: Secret | None = DEFAULTS["station_token"]
    heartbeat_interval: float = DEFAULTS["heartbeat_interval"]
    dead_after: float = DEFAULTS["dead_after"]
    max_deaths: int = DEFAULTS["max_deaths"]
    lease_seconds: float = DEFAULTS["lease_seconds"]
    retention: float = DEFAULTS["retention"]
    stats_retention: float = DEFAULTS["stats_retention"]
    max_data_bytes: int = DEFAULTS["max_data_bytes"]
    default_timeout: float = DEFAULTS["default_timeout"]
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in _SECRETS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                object.__setattr__(self, name, Secret(value))
        if not _ROOT.fullmatch(self.root):
            raise ConfigError(
                f"root {self.root!r} is not a database path: one or more keys joined by '/', "
                "without . $ # [ ] or control characters"
            )
        if self.db_uid is not None and not _KEY.fullmatch(self.db_uid):
            raise ConfigError(
                f"db_uid {self.db_uid!r} cannot be a database key (it names the cloud's inbox "
                "and the maker's replies): no / . $ # [ ] or control characters"
            )
        if self.dead_after <= self.heartbeat_interval:
            raise ConfigError("dead_after must be longer than heartbeat_interval")
        if self.max_deaths < 1:
            raise ConfigError("max_deaths must be at least 1")

    @property
    def uses_embedded(self) -> bool:
        """True when no database is configured, so the embedded server is the database."""
        return self.database_url is None

    @property
    def embedded_url(self) -> str:
        """The URL of the embedded server these settings describe."""
        return f"http://{self.db_host}:{self.db_port}?ns={self.namespace}"

    @property
    def data_path(self) -> Path:
        """The embedded server's data directory as a Path."""
        return Path(self.data_dir)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (None values are ignored, as CLI options pass them)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ATMOSPHERE_* variables (plus the two Google/Firebase ones)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in DEFAULTS:
            raw = env.get(_ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            values[name] = _cast(name, raw)
        if "credentials" not in values and env.get("GOOGLE_APPLICATION_CREDENTIALS"):
            values["credentials"] = env["GOOGLE_APPLICATION_CREDENTIALS"]
        if "emulator_host" not in values and env.get("FIREBASE_DATABASE_EMULATOR_HOST"):
            values["emulator_host"] = env["FIREBASE_DATABASE_EMULATOR_HOST"]
        return cls(**values)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Settings:
        """Settings for one database URL (``https://NAME.firebaseio.com`` or ``http://h:p?ns=N``)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"database URL {url!r} is not http(s)://host[:port]; "
                "use https://<db>.firebaseio.com or http://127.0.0.1:<port>?ns=<name>"
            )
        if parts.scheme == "http":
            ns = parse_qs(parts.query).get("ns", [])
            if len(ns) != 1 or not ns[0]:
                raise ConfigError(f"database URL {url!r} needs exactly one ?ns=<name>")
        return cls(database_url=url, **overrides)


def _cast(name: str, raw: str) -> Any:
    try:
        if name in _BOOLS:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if name in _FLOATS:
            return float(raw)
        if name in _INTS:
            return int(raw)
    except ValueError:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    if name in _SECRETS:
        return Secret(raw)
    return raw
