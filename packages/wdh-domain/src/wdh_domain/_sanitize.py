"""Mask secrets and bound the size of data copied into error context and log lines.

``wdh_domain`` must stay installable on its own, so it cannot use ``wdh_logging``'s
redaction; this small helper covers what error context needs: values under sensitive
keys (password, token, secret, api_key, ...) are replaced by a mask, passwords inside
connection URLs are masked, and the rendered text is truncated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "is_sensitive_key", "sanitize", "sanitize_text", "truncate"]

MASK = "***"

# Substrings of a key (compared case-insensitively, "-" and " " read as "_") that mark
# its value as secret. Substrings, so that "db_password" or "X-Api-Key" are caught too.
_SENSITIVE_PARTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "authorization",
    "database_url",
    "dsn",
)

# scheme://user:password@host  ->  scheme://user:***@host  # pragma: allowlist secret
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s]*(?P<at>@)")

_MAX_DEPTH = 4


def is_sensitive_key(key: object) -> bool:
    """Tell whether a mapping key names a secret (``password``, ``API-Key``, ``db_token``...)."""
    if not isinstance(key, str):
        return False
    normalized = key.lower().replace("-", "_").replace(" ", "_")
    return any(part in normalized for part in _SENSITIVE_PARTS)


def sanitize_text(text: str) -> str:
    """Mask the password part of every ``scheme://user:<password>@host`` URL in ``text``."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('at')}", text)


def sanitize(data: Any, *, _depth: int = 0) -> Any:
    """Return a copy of ``data`` with secret values masked.

    Mappings are copied with the values of sensitive keys replaced by ``"***"`` and
    other values sanitized recursively (down to a few levels); lists and tuples are
    sanitized element-wise; strings have URL passwords masked; anything else is
    returned as is.
    """
    if isinstance(data, str):
        return sanitize_text(data)
    if _depth >= _MAX_DEPTH:
        return data
    if isinstance(data, Mapping):
        return {
            key: MASK if is_sensitive_key(key) else sanitize(value, _depth=_depth + 1)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [sanitize(item, _depth=_depth + 1) for item in data]
    return data


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, marking the cut with ``...``."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 3:
        return text[:max_chars]
    return text[: max_chars - 3] + "..."
