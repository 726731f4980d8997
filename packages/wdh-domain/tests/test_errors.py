"""Error context (Decision #4): format, typed fields, sanitizing and truncation."""

from __future__ import annotations

import pytest

from wdh_domain import errors
from wdh_domain._sanitize import MAX_DEPTH, is_sensitive_key, sanitize, sanitize_text, truncate
from wdh_domain.errors import (
    MAX_INPUT_DATA_CHARS,
    CleansingRuleError,
    DataValidationError,
    ErrorContext,
    PipelineConfigError,
    WdhDomainError,
    render_input_data,
)

pytestmark = pytest.mark.unit


def test_error_message_follows_the_format() -> None:
    error = DataValidationError(
        "Input should be a valid integer",
        operation="ValidateDataTypesStep",
        domain="annuity",
        row_number=15,
        field="amount",
        input_data={"amount": "abc"},
    )

    assert str(error) == (
        "[VALIDATION_ERROR] Input should be a valid integer | Domain: annuity | Row: 15 | "
        "Field: amount"
    )
    assert (error.error_type, error.operation, error.domain) == (
        "VALIDATION_ERROR",
        "ValidateDataTypesStep",
        "annuity",
    )
    assert (error.row_number, error.field, error.input_data) == (15, "amount", "{'amount': 'abc'}")
    assert error.message == "Input should be a valid integer"
    assert isinstance(error, WdhDomainError)


def test_unknown_parts_are_left_out_and_error_type_can_be_overridden() -> None:
    assert str(WdhDomainError("plain")) == "[DOMAIN_ERROR] plain"
    assert str(WdhDomainError("x", error_type="CUSTOM", row_number=0)) == "[CUSTOM] x | Row: 0"
    assert str(ErrorContext(error_type="T", message="m", field="f")) == "[T] m | Field: f"


def test_error_context_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ErrorContext("T", "m")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        DataValidationError("m", "annuity")  # type: ignore[call-arg]


def test_every_error_is_rooted_in_wdh_domain_error() -> None:
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [c for c in exported if isinstance(c, type) and issubclass(c, Exception)]

    assert {c.__name__ for c in classes} == {
        "CleansingRuleError",
        "DataValidationError",
        "DuplicateRuleError",
        "MissingColumnsError",
        "PipelineConfigError",
        "PipelineFailedError",
        "PipelineInputError",
        "UnknownRuleError",
        "WdhDomainError",
    }
    assert all(issubclass(c, WdhDomainError) for c in classes)
    assert issubclass(PipelineConfigError, ValueError)
    assert issubclass(CleansingRuleError, WdhDomainError)


def test_input_data_is_sanitized_and_truncated() -> None:
    row = {
        "name": "x" * 2000,
        "password": "s3cr3t-planted",  # pragma: allowlist secret
        "nested": {"API-Key": "k-planted"},
    }

    error = DataValidationError("bad", input_data=row)

    assert error.input_data is not None
    assert len(error.input_data) == MAX_INPUT_DATA_CHARS
    assert error.input_data.endswith("...")
    short = render_input_data({"password": "s3cr3t-planted", "nested": {"API-Key": "k-planted"}})
    assert short == "{'password': '***', 'nested': {'API-Key': '***'}}"
    assert render_input_data(None) is None
    assert render_input_data("plain text") == "plain text"


def test_message_masks_url_passwords() -> None:
    error = WdhDomainError("cannot reach postgresql+psycopg2://user:s3cr3t-planted@host/db")

    assert "s3cr3t-planted" not in str(error)
    assert "postgresql+psycopg2://user:***@host/db" in str(error)


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("api-key", True),
        ("Auth Token", True),
        ("client_secret", True),
        ("DATABASE_URL", True),
        ("amount", False),
        ("name", False),
        (3, False),
    ],
)
def test_sensitive_keys(key: object, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_sanitize_walks_containers_and_leaves_other_values() -> None:
    data = {"rows": [{"token": "t"}, ("a", "b")], "n": 1}

    assert sanitize(data) == {"rows": [{"token": "***"}, ("a", "b")], "n": 1}
    assert sanitize(5) == 5
    assert sanitize_text("no url here") == "no url here"
    assert truncate("abcdef", 4) == "a..."
    assert truncate("abcdef", 2) == "ab"
    assert truncate("abc", 10) == "abc"


PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://wdh:{PLANTED}@db:5432/x", "postgresql://wdh:***@db:5432/x"),
        # an unencoded "@" in the password: masked up to the LAST "@" before the host
        (f"pg://wdh:pa@{PLANTED}@db/x", "pg://wdh:***@db/x"),  # pragma: allowlist secret
        (f"connect failed: password={PLANTED} host=db", "connect failed: password=*** host=db"),
        (f"token: {PLANTED}", "token: ***"),
        (f"env DB_PASS={PLANTED}; PGPASS={PLANTED}", "env DB_PASS=***; PGPASS=***"),
        (f'{{"api_key": "{PLANTED} x", "n": 1}}', '{"api_key": "***", "n": 1}'),
        (f"Authorization: Bearer {PLANTED}", "Authorization: Bearer ***"),
        ("compass=north passed=3 bypass=1", "compass=north passed=3 bypass=1"),
        ("no secret here", "no secret here"),
    ],
)
def test_sanitize_text_masks_urls_pairs_and_bearer_tokens(text: str, expected: str) -> None:
    assert sanitize_text(text) == expected


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("DB_PASS", True),
        ("PGPASS", True),
        ("db_pass", True),
        ("dbPassword", True),
        ("X-Api-Key", True),
        ("session_id", True),
        ("compass", False),
        ("passed", False),
        ("bypass", False),
        ("amount", False),
        (3, False),
    ],
)
def test_sensitive_keys_use_word_parts(key: object, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_sanitize_walks_sets_and_masks_beyond_the_depth_limit() -> None:
    class Secret:
        def get_secret_value(self) -> str:
            return PLANTED

    nested: object = {"password": PLANTED}
    for _ in range(MAX_DEPTH + 2):
        nested = {"level": nested}
    data = {
        "set": {f"password={PLANTED}"},
        "frozen": frozenset({"x"}),
        "secret": Secret(),
        "deep": nested,
    }

    clean = sanitize(data)

    assert clean["set"] == {"password=***"}
    assert clean["frozen"] == frozenset({"x"})
    assert clean["secret"] == "***"
    assert PLANTED not in repr(clean)
    level = clean["deep"]
    for _ in range(MAX_DEPTH - 1):
        level = level["level"]
    assert level == "***"  # deeper data is masked, not returned raw
    assert data["set"] == {f"password={PLANTED}"}  # the input is not modified
