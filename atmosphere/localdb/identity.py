"""Proving that the server answering on a port is the one that owns a data directory.

Anyone on this machine can listen on a free port first and pose as the database. So the
server writes a fresh random key into its data directory (mode 0600: only its user can read
it) and answers ``GET /.settings/identity.json?nonce=N`` with HMAC-SHA256(key, N). A client
that can read the key checks the answer; a squatter cannot compute it, and replaying an old
answer does not help because the nonce is new each time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

KEY_FILE = "server.key"
IDENTITY_PATH = b"/.settings/identity.json"
_NONCE = re.compile(r"[0-9a-f]{16,128}")


def create_key(data_dir: str | os.PathLike[str]) -> str:
    """Write a new key to ``<data_dir>/server.key`` (0600) and return it."""
    key = secrets.token_hex(32)
    path = Path(data_dir) / KEY_FILE
    tmp = path.with_name(KEY_FILE + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


def read_key(data_dir: str | os.PathLike[str]) -> str | None:
    """The key in ``data_dir``, or None when there is none (no server started there)."""
    try:
        return (Path(data_dir) / KEY_FILE).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def new_nonce() -> str:
    """A fresh challenge."""
    return secrets.token_hex(16)


def valid_nonce(nonce: str) -> bool:
    """Whether ``nonce`` is a challenge the server answers (hex, 16 to 128 digits)."""
    return _NONCE.fullmatch(nonce) is not None


def proof(key: str, nonce: str) -> str:
    """The answer to ``nonce`` that only the holder of ``key`` can give."""
    return hmac.new(key.encode("ascii"), nonce.encode("ascii"), hashlib.sha256).hexdigest()


def proves(key: str, nonce: str, answer: object) -> bool:
    """Whether ``answer`` is the right proof for ``nonce`` (constant time)."""
    return isinstance(answer, str) and hmac.compare_digest(answer, proof(key, nonce))
