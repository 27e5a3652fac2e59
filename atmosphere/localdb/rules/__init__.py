"""Firebase RTDB security rules: parse a rules file, then decide reads and writes."""

from __future__ import annotations

from .engine import Rules as Rules
from .errors import RulesError as RulesError

__all__ = ["Rules", "RulesError"]
