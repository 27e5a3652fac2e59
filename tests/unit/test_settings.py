"""Settings: the checks that refuse a configuration before any process starts."""

from __future__ import annotations

import pytest

from atmosphere.errors import ConfigError
from atmosphere.settings import Settings


@pytest.mark.parametrize("root", ["atmosphere", "staging", "tenant-1/atmosphere"])
def test_a_root_is_one_or_more_database_keys(root: str) -> None:
    assert Settings(root=root).root == root


@pytest.mark.parametrize(
    "root", ["", "/", "/atmosphere", "atmosphere/", "a//b", "a.b", "a#b", "a$"]
)
def test_a_root_that_is_no_database_path_is_refused(root: str) -> None:
    # Given a root that would spell paths like "/live/queue" or that Firebase refuses as a key
    with pytest.raises(ConfigError, match="root"):
        Settings(root=root)


def test_the_root_from_the_environment_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="root"):
        Settings.from_env({"ATMOSPHERE_ROOT": "a.b"})


def test_dead_after_must_outlast_the_heartbeat() -> None:
    with pytest.raises(ConfigError, match="dead_after"):
        Settings(heartbeat_interval=5.0, dead_after=5.0)
