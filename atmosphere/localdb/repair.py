"""``atmosphere db --repair``: cut the logs at a corrupt record, keeping a copy of all it drops.

Start-up refuses a log with a corrupt record in the middle (store.CorruptLog), because the
acknowledged writes after it would otherwise vanish without a word. Repairing is the
operator's explicit choice to give them up: the damaged log is copied aside, cut at the bad
record, and every later log is moved aside too, so the database restarts at a consistent
prefix of its history and nothing is deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .store import CorruptLog


def backup_name(path: Path, stamp: str) -> Path:
    """Where a log that repair changes or drops is kept (not a ``log.<N>`` name: not replayed)."""
    return path.with_name(f"{path.name}.corrupt-{stamp}")


def repair(corrupt: CorruptLog) -> list[str]:
    """Cut ``corrupt.path`` at the bad record and set later logs aside; what was done, in lines.

    Call it while holding the data directory's lock (the store that raised it still does).
    """
    path, stamp = corrupt.path, time.strftime("%Y%m%d-%H%M%S")
    copy = backup_name(path, stamp)
    shutil.copy2(path, copy)
    with open(path, "r+b") as f:
        f.truncate(corrupt.offset)
        f.flush()
        os.fsync(f.fileno())
    done = [f"copied {path.name} to {copy.name}, cut it at byte {corrupt.offset}"]
    number = int(path.name.split(".", 1)[1])
    for later in sorted(path.parent.glob("log.*")):
        suffix = later.name[4:]
        if suffix.isdigit() and int(suffix) > number:
            later.rename(backup_name(later, stamp))
            done.append(f"moved {later.name} (written after the corruption) aside")
    return done
