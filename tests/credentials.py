"""Credentials for tests of the client's transport (scripted servers check what is sent)."""

from __future__ import annotations

from atmosphere.db.client import TokenCredentials


class CountingCredential(TokenCredentials):
    """A bearer token that changes each time it is refreshed: t0, t1, ..."""

    def __init__(self) -> None:
        super().__init__("t0")
        self.refreshes = 0

    def refresh(self, request: object) -> None:
        self.refreshes += 1
        self.token = f"t{self.refreshes}"
