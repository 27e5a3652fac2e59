"""Secrets out of log lines: tokens sent in URLs (``?auth=``, ``access_token=``) are masked.

Clients of the embedded server may send their token as a query parameter, and every HTTP
library logs the URLs it requests (urllib3 at DEBUG, request errors in their message).
"""

from __future__ import annotations

import logging
import re

_IN_URL = re.compile(r"([?&;](?:auth|access_token|token|key)=)[^&;#\s'\"]+", re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the values of token query parameters masked."""
    return _IN_URL.sub(r"\1" + MASK, text) if "=" in text else text


class RedactTokens(logging.Filter):
    """A handler filter masking tokens in every record that passes, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to the handlers of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())
