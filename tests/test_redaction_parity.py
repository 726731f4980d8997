"""The two copies of the redaction rules behave the same on one shared corpus.

``wdh_domain`` must install alone (DESIGN: only pandas, numpy, pydantic, structlog), so it
cannot import ``wdh_logging`` and keeps its own copy of the rules in
``wdh_domain._sanitize``. This corpus is what keeps that copy from drifting away from
``wdh_logging._redaction``: every secret must vanish from BOTH outputs, every benign text
must come out of BOTH unchanged, and both must classify every key the same way. The mask
strings may differ between the copies, so behaviour is compared, never exact output.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wdh_domain._sanitize import is_sensitive_key as domain_is_sensitive_key
from wdh_domain._sanitize import sanitize_text as domain_sanitize_text
from wdh_logging import is_sensitive_key as logging_is_sensitive_key
from wdh_logging import redact_text as logging_redact_text

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret

REDACTORS: dict[str, Callable[[str], str]] = {
    "wdh_logging.redact_text": logging_redact_text,
    "wdh_domain._sanitize.sanitize_text": domain_sanitize_text,
}

# (text, substrings that must be gone, substrings that must stay readable)
SECRET_TEXTS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # quoted values are masked whole, spaces and all
    ('password="correct horse battery"', ("correct", "horse", "battery"), ("password=",)),
    ("dsn: host=db password='my secret pw'", ("my secret", "secret pw", " pw'"), ("dsn",)),
    ('{"password": "a b c", "user": "bob"}', ("a b c", '"b c"'), ('"user": "bob"',)),
    ("{'api_key': 'alpha beta', 'n': 1}", ("alpha", "beta"), ("'n': 1",)),
    ('{\\"token\\": \\"gamma delta\\", \\"n\\": 1}', ("gamma", "delta"), ('\\"n\\": 1',)),
    ('password="esc \\" aped tail" next=1', ("esc", "aped", "tail"), ("next=1",)),
    ("password='cut off secret\nnext line", ("cut off", "off secret"), ("next line",)),
    # unquoted pairs in DSNs, env dumps, query strings
    (f"host=h user=u password={PLANTED} dbname=d", (PLANTED,), ("host=h", "dbname=d")),
    (f"note: password={PLANTED}", (PLANTED,), ("note:",)),
    (f"env DB_PASS={PLANTED}; PGPASSWORD={PLANTED}", (PLANTED,), ("env",)),
    (f"x-api-key: {PLANTED}", (PLANTED,), ()),
    (f"accessToken={PLANTED}&page=2", (PLANTED,), ("page=2",)),
    (f"https://api.example/x?api_key={PLANTED}&page=2", (PLANTED,), ("page=2",)),
    (f"WDH_ANNUITY_SALT={PLANTED}", (PLANTED,), ()),
    (f"DATABASE_URL={PLANTED}", (PLANTED,), ()),
    # URLs: the password up to the LAST '@' before the host
    (f"postgresql://wdh:{PLANTED}@db:5432/x", (PLANTED,), ("@db:5432/x",)),
    (f"postgresql://u:pa@ss{PLANTED}@h/db", ("pa@ss", PLANTED), ("@h/db",)),
    (f"redis://:{PLANTED}@cache:6379/0", (PLANTED,), ("cache:6379",)),
    (f"failed: postgresql+psycopg2://u:{PLANTED}@h/db (timeout)", (PLANTED,), ("(timeout)",)),
    # Authorization headers: any scheme, the credential goes
    (f"Authorization: Bearer {PLANTED}", (PLANTED,), ("Authorization",)),
    ("Authorization: Digest abcdef", ("abcdef",), ("Authorization",)),
    (f"Authorization: Basic {PLANTED}", (PLANTED,), ()),
    (f"{{'authorization': 'Basic {PLANTED}'}}", (PLANTED,), ()),
    ('"Authorization": "Bearer two words"', ("two words", "words"), ()),
    # a free-standing token-like Bearer credential
    (f"sent Bearer {PLANTED}.0123456789 to api", (PLANTED,), ("to api",)),
]

BENIGN_TEXTS: list[str] = [
    "rows passed=10",
    "compass: north",
    "Basic income plan",
    "Bearer of bad news",
    "bearer responsibilities: many",
    "tokens_used=1234 max_tokens=4096",
    "secretary: Ms. Jones",
    "passenger=3 bypass=1 basalt=2",
    "postgresql://user@h/db",
    "postgresql://h:5432/db",
    "plain text, nothing to hide",
    "author: Ada; authored_by=ada",
    "",
]

SENSITIVE_KEYS: list[str] = [
    "password",
    "PASSWORD",
    "DB_PASSWORD",
    "DB_PASS",
    "db_pass",
    "PGPASS",
    "PGPASSWORD",
    "dbPassword",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "clientSecret",
    "token",
    "accessToken",
    "WDH_PROVIDER_EQC_TOKEN",
    "api_key",
    "x-api-key",
    "X-API-KEY",
    "APIKey",
    "accessKey",
    "Authorization",
    "credentials",
    "private_key",
    "DATABASE_URL",
    "db_url",
    "dsn",
    "connection_string",
    "WDH_ANNUITY_SALT",
    "Set-Cookie",
    "session_id",
    "Auth Token",
]

BENIGN_KEYS: list[str] = [
    "passed",
    "rows_passed",
    "passenger",
    "compass",
    "bypass",
    "secretary",
    "tokens_used",
    "max_tokens",
    "authored_by",
    "author",
    "basalt",
    "url",
    "execution_id",
    "amount",
    "domain",
]


def test_the_corpus_is_large_enough() -> None:
    assert len(SECRET_TEXTS) + len(BENIGN_TEXTS) >= 30
    assert len(SENSITIVE_KEYS) + len(BENIGN_KEYS) >= 20


@pytest.mark.parametrize("redactor", REDACTORS.values(), ids=REDACTORS.keys())
@pytest.mark.parametrize(("text", "secrets", "kept"), SECRET_TEXTS)
def test_both_copies_mask_every_secret(
    redactor: Callable[[str], str], text: str, secrets: tuple[str, ...], kept: tuple[str, ...]
) -> None:
    masked = redactor(text)
    for secret in secrets:
        assert secret not in masked, f"{secret!r} leaked: {masked!r}"
    for readable in kept:
        assert readable in masked, f"{readable!r} lost: {masked!r}"


@pytest.mark.parametrize("redactor", REDACTORS.values(), ids=REDACTORS.keys())
@pytest.mark.parametrize("text", BENIGN_TEXTS)
def test_both_copies_keep_benign_text(redactor: Callable[[str], str], text: str) -> None:
    assert redactor(text) == text


@pytest.mark.parametrize("key", SENSITIVE_KEYS)
def test_both_copies_flag_sensitive_keys(key: str) -> None:
    assert (logging_is_sensitive_key(key), domain_is_sensitive_key(key)) == (True, True)


@pytest.mark.parametrize("key", BENIGN_KEYS)
def test_both_copies_keep_benign_keys(key: str) -> None:
    assert (logging_is_sensitive_key(key), domain_is_sensitive_key(key)) == (False, False)
