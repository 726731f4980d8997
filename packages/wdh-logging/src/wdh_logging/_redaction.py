"""Secret redaction for log events: sensitive keys, URL passwords and secret objects.

Three rules, applied recursively to mappings, lists, tuples and sets:

1. a value whose *key* looks sensitive (``password``, ``DB_PASSWORD``, ``x-api-key``,
   ``DATABASE_URL``, ``WDH_<X>_SALT``, ... in any case) becomes ``***REDACTED***``;
2. inside every string, the password of a URL (``scheme://{user}:{password}@{host}``),
   ``password=...``-style pairs and ``Bearer``/``Basic`` credentials become ``***``;
3. a secret object (anything with ``get_secret_value()``, such as pydantic's
   ``SecretStr``) becomes ``***REDACTED***`` without its secret ever being read.

Any other object whose ``repr`` would reveal a URL password is replaced by its
redacted ``repr`` (what the renderers would have printed anyway); harmless objects
pass through untouched so renderers can format them as usual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["REDACTED", "is_sensitive_key", "redact_text", "sanitize_for_logging"]

REDACTED: Final = "***REDACTED***"
"""What replaces the value of a sensitive key or a secret object."""

_MASK: Final = "***"

# Key fragments that mark a value as secret (searched, any case). The specification's
# list (password, token, api[_-]?key, secret, DATABASE_URL, WDH_.*_SALT,
# WDH_PROVIDER_.*_TOKEN) plus the usual spellings of the same things.
_SENSITIVE_KEY: Final = re.compile(
    r"""
      pass(?:word|wd|phrase)
    | (?:^|[_\-.])pwd(?:$|[_\-.])
    | secret
    | token
    | api[_\-]?key
    | authorization | (?:^|[_\-.])auth(?:$|[_\-.])
    | credential
    | private[_\-]?key
    | (?:database|db)[_\-]?(?:url|uri|dsn)
    | (?:^|[_\-.])dsn(?:$|[_\-.])
    | conn(?:ection)?[_\-]?str(?:ing)?
    | (?:^|[_\-.])salt(?:$|[_\-.])
    | (?:^|[_\-.])(?:set[_\-])?cookie(?:$|[_\-.])
    | session[_\-]?id
    """,
    re.IGNORECASE | re.VERBOSE,
)

# scheme://{user}:{password}@{host} -- the password runs to the LAST "@" before whitespace or
# a quote, so an unencoded "@" inside it cannot leave a tail behind.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/?#@'\"]*:)(?P<password>[^\s'\"]*)@",
    re.IGNORECASE,
)

# password=VALUE, "token": "VALUE", api_key: VALUE ... inside free text (libpq DSNs,
# query strings, serialised JSON, exception messages).
_INLINE_PAIR: Final = re.compile(
    r"""(?P<head>\b[\w\-]*(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|credential)[\w\-]*
         ["']?\s*[=:]\s*["']?)
        (?P<value>[^\s"',;&)}\]]+)""",
    re.IGNORECASE | re.VERBOSE,
)

# Authorization: Bearer VALUE / Basic VALUE
_AUTH_SCHEME: Final = re.compile(
    r"(?P<head>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/\-]+=*)", re.IGNORECASE
)

_PRIMITIVES: Final = (bool, int, float, complex, bytes, type(None))


def is_sensitive_key(key: object) -> bool:
    """Tell whether a mapping key names a secret (``DB_PASSWORD``, ``x-api-key``, ...)."""
    return _SENSITIVE_KEY.search(str(key)) is not None


def redact_text(text: str) -> str:
    """Return *text* with URL passwords, ``key=value`` secrets and bearer tokens masked."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(rf"\g<head>{_MASK}@", text)
    text = _INLINE_PAIR.sub(rf"\g<head>{_MASK}", text)
    return _AUTH_SCHEME.sub(rf"\g<head>{_MASK}", text)


def sanitize_for_logging(obj: Any) -> Any:
    """Return a redacted copy of *obj*; the input itself is never modified.

    Mappings come back as plain ``dict``, lists as ``list``, tuples as ``tuple`` and
    sets as ``set`` (containers are always copied, even when nothing was redacted).
    Strings are masked with `redact_text`; values under sensitive keys and secret
    objects become ``"***REDACTED***"``; a self-referencing container is cut at the
    point where it repeats.
    """
    return _sanitize(obj, set())


def _sanitize(obj: Any, active: set[int]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, _PRIMITIVES):
        return obj
    if _is_secret_object(obj):
        return REDACTED
    if isinstance(obj, Mapping | list | tuple | set | frozenset):
        if id(obj) in active:
            return "<recursion>"
        active.add(id(obj))
        try:
            return _sanitize_container(obj, active)
        finally:
            active.discard(id(obj))
    return _sanitize_object(obj)


def _sanitize_container(obj: Any, active: set[int]) -> Any:
    if isinstance(obj, Mapping):
        return {
            key: REDACTED if is_sensitive_key(key) else _sanitize(value, active)
            for key, value in obj.items()
        }
    items = [_sanitize(item, active) for item in obj]
    if isinstance(obj, list):
        return items
    if isinstance(obj, tuple):
        # namedtuples keep their type so renderers show them as before
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return set(items)


def _sanitize_object(obj: object) -> object:
    """Keep a harmless object as it is; replace a leaking one by its redacted repr."""
    try:
        shown = repr(obj)
    except Exception:  # noqa: BLE001 -- a broken __repr__ must not break logging
        return f"<unrepresentable {type(obj).__name__}>"
    masked = redact_text(shown)
    return obj if masked == shown else masked


def _is_secret_object(obj: object) -> bool:
    # Duck-typed so that wdh_logging needs no pydantic: SecretStr, SecretBytes and any
    # look-alike expose get_secret_value().
    return callable(getattr(type(obj), "get_secret_value", None))
