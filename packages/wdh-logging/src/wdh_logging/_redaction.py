"""Secret redaction for log events: sensitive keys, URL passwords and secret objects.

Three rules, applied recursively to mappings, lists, tuples and sets:

1. a value whose *key* is sensitive by its word parts (``password``, ``DB_PASSWORD``,
   ``db_pass``, ``PGPASS``, ``x-api-key``, ``DATABASE_URL``, ``WDH_<X>_SALT``, ... in
   any case; not ``passed``, ``compass`` or ``tokens_used``) becomes ``***REDACTED***``;
2. inside every string -- values, mapping keys, decoded ``bytes`` -- the password of a
   URL (``scheme://{user}:{password}@{host}``), the value of a sensitive
   ``key=value``/``key: value`` pair, the credential of an ``Authorization:`` header
   and a token-like ``Bearer`` credential become ``***``;
3. a secret object (anything with ``get_secret_value()``, such as pydantic's
   ``SecretStr``) becomes ``***REDACTED***`` without its secret ever being read.

Any other object (``bytes`` included) whose ``repr`` would reveal a secret is replaced
by its redacted text (what the renderers would have printed anyway); harmless objects
pass through untouched so renderers can format them as usual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "REDACTED",
    "is_sensitive_key",
    "redact_text",
    "redact_texts",
    "sanitize_for_logging",
    "sanitize_key",
]

REDACTED: Final = "***REDACTED***"
"""What replaces the value of a sensitive key or a secret object."""

_MASK: Final = "***"

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

# scheme://{user}:{password}@{host} -- the password runs to the LAST "@" of its word, so an
# unencoded "@" inside it cannot leave a tail behind, and it may hold a few unencoded
# spaces ("u:my pass word@host"): one word when it reaches an "@", else the fewest words
# (up to five) that do.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/?#@'\"]*:)"
    r"(?P<password>[^\s'\"]*(?=@)|[^\s'\"@]*(?:[ \t]+[^\s'\",;]+){1,4}?(?=@))@",
    re.IGNORECASE,
)


def _may_hold_secret(text: str) -> bool:
    """Whether *text* may match a redaction rule: every rule needs a ":" or "=" (URLs,
    pairs, headers) or the word "bearer", so text without them is returned as is,
    cheaply (row error messages are many). Substring tests scan much faster than a
    regex."""
    return ":" in text or "=" in text or "bearer" in text.lower()


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

_PRIMITIVES: Final = (bool, int, float, complex, type(None))


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


def redact_text(text: str) -> str:
    """Return *text* with URL passwords, ``key=value`` secrets and bearer tokens masked.

    ``key=value`` / ``key: value`` pairs are masked only when *key* is sensitive by
    `is_sensitive_key`; ``Bearer``/``Basic`` credentials only after an auth-like key
    (``Authorization: Basic ...``) or, for ``Bearer``, when followed by a token-like
    string (16+ characters including a digit or ``._~+/=``).
    """
    if not text or not _may_hold_secret(text):
        return text
    text = _URL_PASSWORD.sub(rf"\g<head>{_MASK}@", text)
    text = _mask_pairs(text)
    return _BEARER.sub(rf"\g<head>{_MASK}", text)


_BATCH: Final = 1024


def redact_texts(texts: Sequence[str]) -> list[str]:
    """Return `redact_text` of each of *texts*.

    Texts that cannot hold a secret are the common case (a column of rejected values):
    they are ruled out a batch at a time, with one scan of the batch joined by newlines
    (no secret pattern spans a newline), before any is redacted on its own.
    """
    out: list[str] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        if _may_hold_secret("\n".join(batch)):
            out.extend(map(redact_text, batch))
        else:
            out.extend(batch)
    return out


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
        return f"{value['open']}{_MASK}{value['eclose']}"
    if value["quote"] is not None:
        scheme = _QUOTED_SCHEME.match(value["quoted"])
        kept = scheme.group(0) if scheme else ""
        return f"{value['quote']}{kept}{_MASK}{value['close'] or ''}"
    return f"{value['scheme'] or ''}{_MASK}"


def sanitize_for_logging(obj: Any) -> Any:
    """Return a redacted copy of *obj*; the input itself is never modified.

    Mappings come back as plain ``dict``, lists as ``list``, tuples as ``tuple`` and
    sets as ``set`` (containers are always copied, even when nothing was redacted).
    Strings are masked with `redact_text`; values under sensitive keys and secret
    objects become ``"***REDACTED***"``; a self-referencing container is cut at the
    point where it repeats.
    """
    return _sanitize(obj, set())


def sanitize_key(key: Any) -> Any:
    """Return *key* with any secret inside it masked, still usable as a mapping key.

    A string key holding a URL (``{"postgresql://{user}:{password}@{host}/db": 1}``) is
    masked like any other string; other keys go through the value rules and fall back to their
    redacted ``repr`` when the result would not be hashable. Two keys that differ only
    in their secret collapse into one -- losing a value beats printing a password.
    """
    if isinstance(key, str):
        return redact_text(key)
    masked = _sanitize(key, set())
    try:
        hash(masked)
    except TypeError:
        return redact_text(repr(masked))
    return masked


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
            sanitize_key(key): REDACTED if is_sensitive_key(key) else _sanitize(value, active)
            for key, value in obj.items()
        }
    items = [_sanitize(item, active) for item in obj]
    if isinstance(obj, list):
        return items
    if isinstance(obj, tuple):
        # namedtuples keep their type so renderers show them as before
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return set(items)


def _sanitize_bytes(raw: bytes | bytearray) -> object:
    """Keep harmless bytes as they are; a leaking one becomes its redacted text.

    UTF-8 bytes are decoded and masked as text (so a password spelled in non-ASCII is
    matched as a whole); other bytes are masked in their ``repr``. The renderers would
    have printed the ``repr`` anyway, raw bytes never reach them once they leak.
    """
    try:
        shown = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        shown = repr(raw)
    masked = redact_text(shown)
    return raw if masked == shown else masked


def _sanitize_object(obj: object) -> object:
    """Keep a harmless object as it is; replace a leaking one by its redacted repr."""
    if isinstance(obj, bytes | bytearray):
        return _sanitize_bytes(obj)
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
