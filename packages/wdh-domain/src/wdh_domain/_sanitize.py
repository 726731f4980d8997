"""Mask secrets and bound the size of data copied into error context and log lines.

Why a local copy of ``wdh_logging``'s redaction: DESIGN requires that
``pip install packages/wdh-domain`` works ALONE, bringing only pandas, numpy, pydantic
and structlog, so ``wdh_domain`` may not depend on ``wdh_logging``. The text and key
rules below are therefore a copy of ``wdh_logging._redaction`` -- the SAME rules, kept in
step by ``tests/test_redaction_parity.py`` (change both modules and that corpus together):

1. a value under a sensitive *key* becomes ``***``. Keys are judged by their word parts
   (split on ``_ - .``, blanks and camel-case humps): ``password``, ``DB_PASS``,
   ``PGPASSWORD``, ``x-api-key``, ``accessToken``, ``DATABASE_URL``... are sensitive;
   ``passed``, ``compass``, ``secretary``, ``tokens_used`` and ``max_tokens`` are not;
2. inside text, the password of every URL (``scheme://{user}:{password}@{host}``, up to
   the LAST ``@`` before the host, so ``u:pa@ss@host`` hides ``pa@ss``), the WHOLE value
   of every ``key=value`` / ``key: value`` / ``"key": "value"`` pair whose key is
   sensitive (a quoted value up to its closing quote, quotes kept around the mask), the
   credential after ``Authorization: <scheme>`` and a token-like ``Bearer`` credential
   (16+ characters with a digit or one of ``._~+/=``; not ``Bearer of bad news``)
   become ``***``;
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

# Sensitive *keys* are judged by their word parts: the key is split on "_", "-", ".",
# blanks and camel-case humps ("dbPassword" -> db, password; "X-API-KEY" -> x, api, key)
# and lower-cased. Whole words decide, so "tokens_used", "max_tokens", "passed",
# "passenger", "compass", "secretary" and "basalt" stay readable. A key is sensitive when
#   1. a part is one of _SENSITIVE_PARTS (the specification's password, token, secret,
#      salt -- hence WDH_<X>_SALT and WDH_PROVIDER_<X>_TOKEN -- plus usual spellings);
#   2. two neighbouring parts form one of _SENSITIVE_PAIRS (api key, DATABASE_URL, ...);
#   3. a part *contains* password/passwd/passphrase ("PGPASSWORD", "dbpassword") or
#      *ends with* token/secret/apikey ("accesstoken", "clientsecret", "xapikey").
# Plurals are deliberate: "secrets" and "credentials" hold secrets, "tokens" usually
# counts them (LLM usage), so it is not masked.
_SENSITIVE_PARTS: Final = frozenset(
    {
        "password", "passwd", "passphrase", "pass", "pwd", "pgpass", "dbpass",
        "secret", "secrets", "token", "apikey", "authorization", "auth",
        "credential", "credentials", "dsn", "salt", "cookie", "sessionid",
    }
)  # fmt: skip
_SENSITIVE_PAIRS: Final = frozenset(
    {
        ("api", "key"), ("private", "key"), ("secret", "key"), ("access", "key"),
        ("session", "id"), ("set", "cookie"),
        ("database", "url"), ("database", "uri"), ("database", "dsn"),
        ("db", "url"), ("db", "uri"), ("db", "dsn"),
        ("connection", "string"), ("connection", "str"), ("conn", "string"), ("conn", "str"),
    }
)  # fmt: skip
_SENSITIVE_INFIXES: Final = ("password", "passwd", "passphrase")
_SENSITIVE_SUFFIXES: Final = ("token", "secret", "apikey")

# One word part: an upper-case run before a capitalised word ("API" in "APIKey"), a
# (capitalised) lower-case word, an upper-case run, or digits.
_KEY_PART: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# scheme://{user}:{password}@{host} -- the password runs to the LAST "@" before whitespace or
# a quote, so an unencoded "@" inside it cannot leave a tail behind.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/?#@'\"]*:)(?P<password>[^\s'\"]*)@",
    re.IGNORECASE,
)

# KEY=VALUE, "KEY": "VALUE", KEY: VALUE inside free text (libpq DSNs, query strings,
# serialised JSON, headers, exception messages). The value is masked only when KEY is
# sensitive by the key rules above (so "rows passed=10" and "compass: north" stay).
# Heads and values are matched separately so that an ordinary key consumes only itself
# ("note: password=x" must still mask x).
_PAIR_HEAD: Final = re.compile(r"""(?<![\w.\-])(?P<key>[A-Za-z_][\w.\-]*)(?:\\?["'])?\s*[=:]\s*""")
# A value is matched WHOLE: a quoted one up to its closing quote (backslash escapes
# honoured; an unclosed quote runs to the end of the line), so that
# password="correct horse battery" leaves no word behind; the quotes stay around the
# mask. \"...\" is the same inside an escaped string (a repr of JSON). After an
# auth-like key a scheme word is kept and the credential after it masked:
# "Authorization: Basic dXNlcjpwYXNz" -> "Authorization: Basic ***".
_PAIR_VALUE: Final = re.compile(
    r"""(?P<open>\\(?P<eq>["']))(?P<escaped>.*?)(?P<eclose>\\(?P=eq)|(?=\n)|\Z)
      | (?P<quote>["'])(?P<quoted>(?:\\.|(?!(?P=quote))[^\\\n])*)(?P<close>(?P=quote))?
      | (?P<scheme>(?:bearer|basic|digest|token|negotiate)\s+(?=[^\s"',;&)}\]]))?
        (?P<bare>[^\s"',;&)}\]]+)""",
    re.IGNORECASE | re.VERBOSE,
)
# The scheme word kept at the start of a quoted credential ("Bearer ***").
_QUOTED_SCHEME: Final = re.compile(
    r"(?:bearer|basic|digest|token|negotiate)\s+(?=\S)", re.IGNORECASE
)

# "Bearer <token>" without a header name in front: masked only when what follows looks
# like an opaque token -- 16+ characters of the token alphabet with at least one digit
# or one of ._~+/= -- so "Bearer of bad news" or "bearer responsibilities" stay readable.
_BEARER: Final = re.compile(
    r"(?P<head>\bbearer\s+)"
    r"(?P<value>(?=[A-Za-z0-9._~+/\-]*[0-9._~+/=])[A-Za-z0-9._~+/\-]{16,}=*)",
    re.IGNORECASE,
)

_PRIMITIVES: Final = (bool, int, float, complex, bytes, type(None))


def is_sensitive_key(key: object) -> bool:
    """Tell whether a mapping key names a secret, judged by its word parts.

    ``DB_PASSWORD``, ``db_pass``, ``PGPASS``, ``x-api-key``, ``accessToken``,
    ``DATABASE_URL``, ``WDH_ANNUITY_SALT`` and ``WDH_PROVIDER_EQC_TOKEN`` are sensitive;
    ``passed``, ``passenger``, ``compass``, ``secretary``, ``tokens_used`` and
    ``max_tokens`` are not (see the rules in the module source).
    """
    parts = [part.lower() for part in _KEY_PART.findall(str(key))]
    for index, part in enumerate(parts):
        if (
            part in _SENSITIVE_PARTS
            or any(infix in part for infix in _SENSITIVE_INFIXES)
            or part.endswith(_SENSITIVE_SUFFIXES)
            or tuple(parts[index : index + 2]) in _SENSITIVE_PAIRS
        ):
            return True
    return False


def _mask_pairs(text: str) -> str:
    pieces: list[str] = []
    done = 0
    for head in _PAIR_HEAD.finditer(text):
        if head.start() < done or not is_sensitive_key(head["key"]):
            continue
        value = _PAIR_VALUE.match(text, head.end())
        if value is None:
            continue
        pieces += [text[done : head.end()], _masked_value(value)]
        done = value.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _masked_value(value: re.Match[str]) -> str:
    """The mask that replaces one matched value: quotes and a scheme word are kept."""
    if value["open"] is not None:
        return f"{value['open']}{MASK}{value['eclose']}"
    if value["quote"] is not None:
        scheme = _QUOTED_SCHEME.match(value["quoted"])
        kept = scheme.group(0) if scheme else ""
        return f"{value['quote']}{kept}{MASK}{value['close'] or ''}"
    return f"{value['scheme'] or ''}{MASK}"


def sanitize_text(text: str) -> str:
    """Return ``text`` with URL passwords, ``key=value`` secrets and bearer tokens masked.

    The same rules as ``wdh_logging.redact_text`` (see the module docstring).
    """
    if not text:
        return text
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    text = _mask_pairs(text)
    return _BEARER.sub(rf"\g<head>{MASK}", text)


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
