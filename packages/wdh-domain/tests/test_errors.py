"""Error context (Decision #4): format, typed fields, sanitizing and truncation."""

from __future__ import annotations

import pytest

from wdh_domain import errors
from wdh_domain._text import truncate
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


def test_truncate_marks_the_cut() -> None:
    assert truncate("abcdef", 4) == "a..."
    assert truncate("abcdef", 2) == "ab"
    assert truncate("abc", 10) == "abc"
