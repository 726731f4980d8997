"""Mask secrets and bound the size of data copied into error context and log lines.

``wdh_domain`` must stay installable on its own, so it cannot use ``wdh_logging``'s
redaction; this module is a small local implementation of the same rules:

1. a value under a sensitive *key* becomes ``***``. Keys are split into word parts
   (``DB_PASS`` -> ``db``, ``pass``; ``dbPassword`` -> ``db``, ``password``) and are
   sensitive when their compacted form contains ``password``, ``passwd``, ``secret``,
   ``token``, ``apikey``, ``credential``... or when one part is exactly ``pass``,
   ``pgpass``, ``pwd``, ``dsn``, ``auth``, ``salt`` or ``cookie`` (so ``compass`` and
   ``passed`` are not);
2. inside text, the password of every URL (``scheme://{user}:{password}@{host}``, up to
   the LAST ``@`` before the host, so ``u:pa@ss@host`` hides ``pa@ss``), the value of
   every ``key=value`` / ``key: value`` pair whose key is sensitive (``password=...``,
   ``"token": "..."``, ``DB_PASS=...``) and ``Bearer``/``Basic`` credentials become ``***``;
3. secret objects (anything with ``get_secret_value()``, like pydantic's ``SecretStr``)
   become ``***``;
4. mappings, lists, tuples and sets are walked; below :data:`MAX_DEPTH` levels a
   container is replaced by ``***`` rather than copied unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MASK", "MAX_DEPTH", "is_sensitive_key", "sanitize", "sanitize_text", "truncate"]

MASK: Final = "***"

MAX_DEPTH: Final = 6
"""Containers nested deeper than this are masked as a whole."""

# Fragments searched in the compacted key (lower case, separators removed).
_SENSITIVE_FRAGMENTS: Final = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "authorization",
    "databaseurl",
    "databaseuri",
    "dburl",
    "dburi",
    "connectionstring",
    "connstr",
    "sessionid",
)

# Word parts that are sensitive only as a whole part ("pass" yes, "compass" no).
_SENSITIVE_PARTS: Final = frozenset({"pass", "pgpass", "pwd", "dsn", "auth", "salt", "cookie"})

_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")

# scheme://{user}:{password}@{host}: the password runs to the LAST "@" before whitespace or
# a quote, so an unencoded "@" inside it cannot leave a tail behind.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/?#@'\"]*:)(?P<password>[^\s'\"]*)@",
    re.IGNORECASE,
)

# key=value, key: value, "key": "value" in free text; the key decides (is_sensitive_key).
# Heads and values are matched separately so that "failed: DB_PASS=x" finds both heads.
_PAIR_HEAD: Final = re.compile(r"""(?P<key>\b[A-Za-z_][\w\-.]*)["']?\s*[=:]\s*""")
_PAIR_VALUE: Final = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"',;&)}\]]+""")

# Authorization: Bearer VALUE / Basic VALUE
_AUTH_SCHEME: Final = re.compile(
    r"(?P<head>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/\-]+=*)", re.IGNORECASE
)

_PRIMITIVES: Final = (bool, int, float, complex, bytes, type(None))


def is_sensitive_key(key: object) -> bool:
    """Tell whether a mapping key names a secret (``password``, ``DB_PASS``, ``API-Key``...)."""
    if not isinstance(key, str):
        return False
    parts = [part for part in _NON_ALNUM.split(_CAMEL_BOUNDARY.sub("_", key).lower()) if part]
    compact = "".join(parts)
    if any(fragment in compact for fragment in _SENSITIVE_FRAGMENTS):
        return True
    return any(part in _SENSITIVE_PARTS for part in parts)


def _mask_pairs(text: str) -> str:
    pieces: list[str] = []
    done = 0
    for head in _PAIR_HEAD.finditer(text):
        if head.start() < done or not is_sensitive_key(head.group("key")):
            continue
        value = _PAIR_VALUE.match(text, head.end())
        if value is None:
            continue
        quote = value.group(0)[0] if value.group(0)[0] in "\"'" else ""
        pieces += [text[done : head.end()], quote, MASK, quote]
        done = value.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def sanitize_text(text: str) -> str:
    """Mask URL passwords, sensitive ``key=value`` pairs and bearer credentials in ``text``."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    # Bearer/Basic first: "Authorization: Bearer X" would otherwise mask only "Bearer".
    text = _AUTH_SCHEME.sub(rf"\g<head>{MASK}", text)
    return _mask_pairs(text)


def sanitize(data: Any, *, _depth: int = 0) -> Any:
    """Return a copy of ``data`` with secret values masked (``data`` is not modified).

    Strings are masked with :func:`sanitize_text`; mappings come back as ``dict`` with
    the values of sensitive keys replaced by ``"***"``; lists, tuples and sets keep
    their kind and are sanitized element-wise; secret objects become ``"***"``; a
    container nested more than :data:`MAX_DEPTH` levels deep becomes ``"***"``. Other
    values are returned as they are (callers that render them to text pass the text
    through :func:`sanitize_text` again).
    """
    if isinstance(data, str):
        return sanitize_text(data)
    if isinstance(data, _PRIMITIVES):
        return data
    if callable(getattr(type(data), "get_secret_value", None)):
        return MASK
    if not isinstance(data, Mapping | list | tuple | set | frozenset):
        return data
    if _depth >= MAX_DEPTH:
        return MASK
    return _sanitize_container(data, _depth + 1)


def _sanitize_container(data: Any, depth: int) -> Any:
    if isinstance(data, Mapping):
        return {
            key: MASK if is_sensitive_key(key) else sanitize(value, _depth=depth)
            for key, value in data.items()
        }
    items = [sanitize(item, _depth=depth) for item in data]
    for kind in (tuple, frozenset, set):  # subclasses (namedtuples...) become the plain kind
        if isinstance(data, kind):
            return kind(items)
    return items


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, marking the cut with ``...``."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 3:
        return text[:max_chars]
    return text[: max_chars - 3] + "..."
