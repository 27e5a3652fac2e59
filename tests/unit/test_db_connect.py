"""Configuration resolution and the ConfigError messages of connect()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atmosphere.db import embedded
from atmosphere.db.connect import Target, connect, load_credential, resolve
from atmosphere.errors import ConfigError
from atmosphere.settings import Secret, Settings
from tests.support import free_port


@pytest.mark.parametrize(
    ("settings", "target"),
    [
        (
            Settings(),
            Target(
                "embedded",
                "http://127.0.0.1:9400?ns=atmosphere",
                base_url="http://127.0.0.1:9400",
                namespace="atmosphere",
            ),
        ),
        (
            Settings(db_port=9500, namespace="prod", db_token=Secret("t0k")),
            Target(
                "embedded",
                "http://127.0.0.1:9500?ns=prod",
                base_url="http://127.0.0.1:9500",
                namespace="prod",
                token="t0k",
            ),
        ),
        (
            Settings(emulator_host="localhost:9000"),
            Target(
                "emulator",
                "http://localhost:9000?ns=atmosphere",
                base_url="http://localhost:9000",
                namespace="atmosphere",
            ),
        ),
        (
            Settings(database_url="https://my-app.firebaseio.com", emulator_host="127.0.0.1:9000"),
            Target(
                "emulator",
                "http://127.0.0.1:9000?ns=my-app",
                base_url="http://127.0.0.1:9000",
                namespace="my-app",
            ),
        ),
        (
            Settings(database_url="https://my-app.firebaseio.com/", credentials="/k.json"),
            Target("firebase", "https://my-app.firebaseio.com", credentials="/k.json"),
        ),
        (
            Settings(database_url="https://x-default-rtdb.europe-west1.firebasedatabase.app"),
            Target("firebase", "https://x-default-rtdb.europe-west1.firebasedatabase.app"),
        ),
        (
            Settings(database_url="http://127.0.0.1:4000?ns=demo", db_token=Secret("s")),
            Target(
                "url",
                "http://127.0.0.1:4000?ns=demo",
                base_url="http://127.0.0.1:4000",
                namespace="demo",
                token="s",
            ),
        ),
    ],
)
def test_resolve(settings: Settings, target: Target) -> None:
    assert resolve(settings) == target


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(database_url="ftp://x"), "is not http\\(s\\)://host"),
        (Settings(database_url="https://example.com"), "not a Firebase Realtime Database URL"),
        (Settings(database_url="https://a.firebaseio.com/sub"), "not a Firebase Realtime"),
        (Settings(database_url="http://127.0.0.1:9000"), "needs exactly one \\?ns="),
        (Settings(emulator_host="http://localhost:9000"), "must be host:port"),
    ],
)
def test_resolve_explains_bad_configuration(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(settings)


def test_settings_from_env_feed_resolve() -> None:
    env = {
        "ATMOSPHERE_DATABASE_URL": "https://app.firebaseio.com",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
    }
    assert resolve(Settings.from_env(env)).credentials == "/keys/sa.json"
    assert resolve(Settings.from_env({"FIREBASE_DATABASE_EMULATOR_HOST": "h:1"})).kind == (
        "emulator"
    )


def test_no_server_running_fails_at_once_with_advice() -> None:
    settings = Settings(db_port=free_port())
    with pytest.raises(ConfigError, match="no database is running at .*atmosphere dispatcher"):
        connect(settings)
    with pytest.raises(ConfigError, match="ATMOSPHERE_DATABASE_URL"):
        connect(settings, wait=0.2)


def test_missing_credentials_file(tmp_path: Path) -> None:
    settings = Settings(
        database_url="https://app.firebaseio.com", credentials=str(tmp_path / "nope.json")
    )
    with pytest.raises(ConfigError, match="does not exist"):
        connect(settings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a JSON file"),
        (json.dumps({"type": "authorized_user"}), "not a valid service-account key"),
        (
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "p",
                    "client_email": "a@p.iam.gserviceaccount.com",
                    "private_key": "garbage",
                    "token_uri": "https://oauth2.googleapis.com/token",
                }
            ),
            "not a valid service-account key",
        ),
    ],
)
def test_invalid_credentials_file(tmp_path: Path, content: str, message: str) -> None:
    key = tmp_path / "key.json"
    key.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_credential(str(key))


def test_no_application_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    import google.auth.exceptions

    def no_adc(*args: Any, **kwargs: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("none found")  # type: ignore[no-untyped-call]

    # google.auth.default() would probe the GCE metadata server; answer as a laptop would.
    monkeypatch.setattr(google.auth, "default", no_adc)
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        connect(Settings(database_url="https://app.firebaseio.com"))


def test_emulator_not_running_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no database is running at http://127.0.0.1"):
        connect(Settings(emulator_host=f"127.0.0.1:{free_port()}"))
    assert embedded.is_running(f"http://127.0.0.1:{free_port()}", "x") is False
