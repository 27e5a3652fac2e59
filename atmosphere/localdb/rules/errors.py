"""The error the rules engine raises for a rules file it cannot accept."""

from __future__ import annotations


class RulesError(ValueError):
    """The rules text is not valid: bad JSON, an unknown rule key, or an unparsable expression."""
