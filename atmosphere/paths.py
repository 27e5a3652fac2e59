"""The only place database paths are spelled. See docs/protocol.md for what lives where.

Everything Atmosphere stores sits under one root key (Settings.root, default "atmosphere").
``live/`` holds the small, hot control plane that the dispatcher mirrors through ONE stream,
so it sees every change in commit order; bulky history (``jobs/``, ``stats/``) and per-maker
replies sit outside it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    """Database paths under one root. All returned paths are relative to the database root."""

    root: str = "atmosphere"

    # -- the control plane (mirrored by the dispatcher) --------------------------------------
    @property
    def live(self) -> str:
        return f"{self.root}/live"

    def queue(self, job_type: str | None = None, job_id: str | None = None) -> str:
        return _join(self.live, "queue", job_type, job_id)

    def delayed(self, job_id: str | None = None) -> str:
        return _join(self.live, "delayed", job_id)

    def clouds(self, cloud_id: str | None = None) -> str:
        return _join(self.live, "clouds", cloud_id)

    def inbox(self, cloud_id: str | None = None, job_id: str | None = None) -> str:
        return _join(self.live, "inbox", cloud_id, job_id)

    def outcomes(self, job_id: str | None = None) -> str:
        return _join(self.live, "outcomes", job_id)

    def chains(self, chain_id: str | None = None) -> str:
        return _join(self.live, "chains", chain_id)

    def schedules(self, name: str | None = None) -> str:
        return _join(self.live, "schedules", name)

    def commands(self, command_id: str | None = None) -> str:
        """Operator requests (retry/discard a failed job, run a schedule now) from the station."""
        return _join(self.live, "commands", command_id)

    @property
    def lease(self) -> str:
        return f"{self.live}/lease"

    def dispatchers(self, dispatcher_id: str | None = None) -> str:
        """Every running dispatcher (leader and standbys) announces itself here."""
        return _join(self.live, "dispatchers", dispatcher_id)

    # -- history and replies (not mirrored by the dispatcher) --------------------------------
    def jobs(self, job_id: str | None = None) -> str:
        return _join(self.root, "jobs", job_id)

    def replies(self, maker_id: str | None = None, reply_id: str | None = None) -> str:
        return _join(self.root, "replies", maker_id, reply_id)

    def stats(self, minute: str | None = None) -> str:
        return _join(self.root, "stats", minute)

    def rel(self, path: str) -> str:
        """``path`` relative to the root ("atmosphere/live/x" -> "live/x")."""
        prefix = self.root + "/"
        return path[len(prefix) :] if path.startswith(prefix) else path


def _join(*parts: str | None) -> str:
    return "/".join(p for p in parts if p)
