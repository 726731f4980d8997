"""sanitize_for_logging / redact_text: what is masked, what is kept, nothing mutated."""

from __future__ import annotations

import copy
from collections import namedtuple
from typing import Any

import pytest
from pydantic import SecretBytes, SecretStr

from wdh_logging import (
    REDACTED,
    is_sensitive_key,
    redact_text,
    redact_texts,
    sanitize_for_logging,
)

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "DB_PASSWORD",
        "passwd",
        "pwd",
        "user_pwd",
        "passphrase",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh-token",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "X-API-KEY",
        "authorization",
        "Authorization",
        "auth",
        "credentials",
        "private_key",
        "DATABASE_URL",
        "database_url",
        "db_url",
        "dsn",
        "connection_string",
        "WDH_ANNUITY_SALT",
        "WDH_PROVIDER_EQC_TOKEN",
        "cookie",
        "Set-Cookie",
        "session_id",
        # a "pass" word part, and the libpq spellings
        "DB_PASS",
        "db_pass",
        "pass",
        "PGPASS",
        "PGPASSWORD",
        "dbpassword",
        # camel case is split into word parts too
        "dbPassword",
        "accessToken",
        "clientSecret",
        "APIKey",
        "xApiKey",
    ],
)
def test_sensitive_keys_are_recognised(key: str) -> None:
    assert is_sensitive_key(key)
    assert sanitize_for_logging({key: PLANTED}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "event",
        "domain",
        "execution_id",
        "rows",
        "author",
        "table",
        "url",
        "passenger",
        "basalt",
        # ordinary words that merely contain a sensitive one
        "passed",
        "rows_passed",
        "compass",
        "bypass",
        "secretary",
        "tokens_used",
        "max_tokens",
        "authored_by",
    ],
)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_sensitive_key(key)
    assert sanitize_for_logging({key: "value"}) == {key: "value"}


def test_nested_containers_are_walked_and_types_kept() -> None:
    Pair = namedtuple("Pair", "name value")
    data: dict[str, Any] = {
        "outer": {
            "inner": [{"password": PLANTED}, ("keep", {"Api-Key": PLANTED})],
            "set": {f"postgresql://u:{PLANTED}@h/db"},
            "frozen": frozenset({"plain"}),
        },
        "pair": Pair("token_holder", {"secret": PLANTED}),
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }
    result = sanitize_for_logging(data)
    assert PLANTED not in repr(result)
    assert result["outer"]["inner"][0] == {"password": REDACTED}
    assert result["outer"]["inner"][1] == ("keep", {"Api-Key": REDACTED})
    assert result["outer"]["set"] == {"postgresql://u:***@h/db"}
    assert result["outer"]["frozen"] == {"plain"}
    assert isinstance(result["pair"], Pair)
    assert result["pair"].value == {"secret": REDACTED}
    assert (result["count"], result["ratio"], result["flag"], result["nothing"]) == (
        3,
        0.5,
        True,
        None,
    )


def test_input_is_never_mutated() -> None:
    data: dict[str, Any] = {
        "password": PLANTED,
        "nested": {"token": PLANTED, "items": [f"redis://:{PLANTED}@cache:6379/0"]},
    }
    before = copy.deepcopy(data)
    result = sanitize_for_logging(data)
    assert data == before
    assert result is not data
    assert result["nested"] is not data["nested"]
    assert result["nested"]["items"] is not data["nested"]["items"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"postgresql://user:{PLANTED}@db.example:5432/wdh",
            "postgresql://user:***@db.example:5432/wdh",
        ),
        (
            f"failed: postgresql+psycopg2://u:{PLANTED}@h/db (timeout)",
            "failed: postgresql+psycopg2://u:***@h/db (timeout)",
        ),
        (f"redis://:{PLANTED}@cache:6379/0", "redis://:***@cache:6379/0"),
        # an unencoded '@' inside the password must not leave a tail behind
        (f"postgresql://u:{PLANTED}@x@h/db", "postgresql://u:***@h/db"),
        # an unencoded space inside the password: the whole password, not its tail
        (f"postgresql://u:my {PLANTED} pw@h/db failed", "postgresql://u:***@h/db failed"),
        (f"dsn postgresql://u:{PLANTED} x@h:5432/db", "dsn postgresql://u:***@h:5432/db"),
        # the first word reaching an "@" ends the password: the rest stays readable
        (
            f"pg://u:{PLANTED}@h failed for bob@example.org",
            "pg://u:***@h failed for bob@example.org",
        ),
        # host:port with no credentials is left alone, sentence and all
        (
            "http://h:8080 is down, mail ops@example.org",
            "http://h:8080 is down, mail ops@example.org",
        ),
        (f"'mysql://root:{PLANTED}@h/db'", "'mysql://root:***@h/db'"),
        (f"host=h user=u password={PLANTED} dbname=d", "host=h user=u password=*** dbname=d"),
        (
            f"https://api.example/x?api_key={PLANTED}&page=2",
            "https://api.example/x?api_key=***&page=2",
        ),
        (f'{{"token": "{PLANTED}"}}', '{"token": "***"}'),
        (f"Authorization: Bearer {PLANTED}", "Authorization: Bearer ***"),
        ("postgresql://user@h/db", "postgresql://user@h/db"),
        ("postgresql://h:5432/db", "postgresql://h:5432/db"),
        ("plain text, nothing to hide", "plain text, nothing to hide"),
        # an ordinary key in front must not hide a sensitive pair behind it
        (f"note: password={PLANTED}", "note: password=***"),
        (
            f"DB_PASS={PLANTED} PGPASS={PLANTED} pass={PLANTED} n=1",
            "DB_PASS=*** PGPASS=*** pass=*** n=1",
        ),
        (f"Authorization: Basic {PLANTED}", "Authorization: Basic ***"),
        (f"{{'authorization': 'Basic {PLANTED}'}}", "{'authorization': 'Basic ***'}"),
        # a free-standing Bearer credential is masked when it looks like a token
        (f"sent Bearer {PLANTED}.0123456789 to api", "sent Bearer *** to api"),
        ("", ""),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_texts_masks_each_text_as_redact_text_does() -> None:
    # Thousands of harmless texts around one secret, across batch boundaries.
    texts = [f"'value {i}'" for i in range(2500)]
    texts[1700] = f"password={PLANTED}"
    texts.append(f"postgresql://u:{PLANTED}@h/db")
    redacted = redact_texts(texts)
    assert redacted == [redact_text(text) for text in texts]
    assert PLANTED not in "".join(redacted)
    assert redacted[:1700] == texts[:1700]
    assert redact_texts([]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password="correct horse battery"', 'password="***"'),
        ("dsn: host=db password='my secret pw'", "dsn: *** password='***'"),
        ('{"password": "a b c", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'password': 'a b', 'n': 1}", "{'password': '***', 'n': 1}"),
        # JSON escapes inside the value, and JSON inside an escaped string (a repr)
        ('password="a \\" b c" next=1', 'password="***" next=1'),
        ('{\\"token\\": \\"a b c\\", \\"n\\": 1}', '{\\"token\\": \\"***\\", \\"n\\": 1}'),
        # an unclosed quote (a truncated message) is masked to the end of its line
        ("password='cut off secret\nnext line", "password='***\nnext line"),
        ('"Authorization": "Bearer abc def"', '"Authorization": "Bearer ***"'),
        ('"Authorization": "abc def"', '"Authorization": "***"'),
    ],
)
def test_quoted_secrets_are_masked_whole(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_objects_are_redacted_without_being_read() -> None:
    result = sanitize_for_logging(
        {
            "value": SecretStr(PLANTED),
            "raw": SecretBytes(PLANTED.encode()),
            "list": [SecretStr("x")],
        }
    )
    assert result == {"value": REDACTED, "raw": REDACTED, "list": [REDACTED]}


def test_objects_whose_repr_leaks_are_replaced_by_the_redacted_repr() -> None:
    error = ConnectionError(f"could not connect to postgresql://u:{PLANTED}@h/db")
    result = sanitize_for_logging({"error": error})
    assert result["error"] == "ConnectionError('could not connect to postgresql://u:***@h/db')"


def test_harmless_objects_are_kept_as_they_are() -> None:
    error = ValueError("nothing secret")
    marker = object()
    result = sanitize_for_logging({"error": error, "marker": marker, "raw": b"bytes"})
    assert result["error"] is error
    assert result["marker"] is marker
    assert result["raw"] == b"bytes"


def test_broken_repr_does_not_break_redaction() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert sanitize_for_logging([Broken()]) == ["<unrepresentable Broken>"]


def test_self_referencing_containers_are_cut() -> None:
    loop: list[Any] = ["a"]
    loop.append(loop)
    assert sanitize_for_logging(loop) == ["a", "<recursion>"]
    shared = {"k": "v"}
    # the same (non-cyclic) object twice is not a recursion
    assert sanitize_for_logging([shared, shared]) == [{"k": "v"}, {"k": "v"}]


def test_top_level_values() -> None:
    assert sanitize_for_logging(f"sqlite:///x.db and postgresql://a:{PLANTED}@h") == (
        "sqlite:///x.db and postgresql://a:***@h"
    )
    assert sanitize_for_logging(SecretStr(PLANTED)) == REDACTED
    assert sanitize_for_logging(42) == 42


@pytest.mark.parametrize(
    "text",
    [
        "rows passed=10 failed=2",
        "compass: north",
        "secretary: Bob",
        "Basic income plan",
        "tokens_used=1200 max_tokens=4096",
        "Bearer of bad news",
        "bearer responsibilities",
        "passenger: Ada, bypass=true",
    ],
)
def test_ordinary_text_stays_readable(text: str) -> None:
    assert redact_text(text) == text


def test_string_keys_are_redacted_like_values() -> None:
    data = {f"postgresql://user:{PLANTED}@db/x": 1, "nested": [{f"see mysql://a:{PLANTED}@h": 2}]}
    result = sanitize_for_logging(data)
    assert result == {"postgresql://user:***@db/x": 1, "nested": [{"see mysql://a:***@h": 2}]}
    assert PLANTED not in repr(result)


def test_non_string_keys_are_redacted_and_stay_hashable() -> None:
    url = f"postgresql://u:{PLANTED}@h/db"
    result = sanitize_for_logging(
        {(url, 1): "tuple", url.encode(): "bytes", frozenset({url}): "frozen", 7: "int"}
    )
    assert PLANTED not in repr(result)
    assert result[("postgresql://u:***@h/db", 1)] == "tuple"
    assert result["postgresql://u:***@h/db"] == "bytes"
    assert result["{'postgresql://u:***@h/db'}"] == "frozen"
    assert result[7] == "int"


def test_bytes_holding_a_secret_are_redacted() -> None:
    url = f"postgresql://u:{PLANTED}@h/db"
    result = sanitize_for_logging(
        {
            "raw": url.encode(),
            "buffer": bytearray(url.encode()),
            "binary": b"\xff\x00 " + url.encode(),
            "pair": f"password={PLANTED}".encode(),
        }
    )
    assert PLANTED not in repr(result)
    assert result["raw"] == "postgresql://u:***@h/db"
    assert result["buffer"] == "postgresql://u:***@h/db"
    assert result["binary"] == "b'\\xff\\x00 postgresql://u:***@h/db'"
    assert result["pair"] == "password=***"
    harmless = bytearray(b"plain")
    assert sanitize_for_logging([harmless])[0] is harmless
