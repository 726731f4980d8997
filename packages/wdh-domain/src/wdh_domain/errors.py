"""Errors raised by ``wdh_domain``: one root, typed keyword-only context (Decision #4).

Every error that leaves ``wdh_domain`` is a :class:`WdhDomainError`. Its context is an
:class:`ErrorContext` (``error_type``, ``operation``, ``domain``, ``row_number``,
``field``, ``input_data``), and ``str(err)`` is the one-line format every pipeline
error uses::

    [ERROR_TYPE] message | Domain: X | Row: N | Field: Y

Parts whose value is unknown are left out. ``input_data`` never appears in the
message: it is kept on the context only, rendered as text with secret values masked
(keys such as ``password``, ``token``, ``secret``, ``api_key``) and truncated to
:data:`MAX_INPUT_DATA_CHARS` characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from wdh_domain._row_column import ROW_COLUMN
from wdh_domain._text import truncate
from wdh_logging import redact_text, sanitize_for_logging

__all__ = [
    "MAX_INPUT_DATA_CHARS",
    "CleansingRuleError",
    "DataValidationError",
    "DuplicateRuleError",
    "ErrorContext",
    "MissingColumnsError",
    "PipelineConfigError",
    "PipelineFailedError",
    "PipelineInputError",
    "UnknownRuleError",
    "WdhDomainError",
    "render_input_data",
]

MAX_INPUT_DATA_CHARS = 500


def render_input_data(data: Any, *, max_chars: int = MAX_INPUT_DATA_CHARS) -> str | None:
    """Render ``data`` for error context: secrets masked, at most ``max_chars`` characters.

    Returns ``None`` for ``None``; strings are kept as text, anything else is ``repr``-ed
    after masking (a mapping's sensitive keys keep their name, their value becomes ``***``).
    The rendered text is masked once more, for objects whose ``repr`` shows a secret.
    """
    if data is None:
        return None
    clean = sanitize_for_logging(data)
    text = clean if isinstance(clean, str) else redact_text(repr(clean))
    return truncate(text, max_chars)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorContext:
    """Structured context of one error or warning (Decision #4).

    ``operation`` names what was running (inside a pipeline: the step name);
    ``row_number`` is the 0-based position of the row in the pipeline run's input
    frame (``initial_data.iloc[row_number]``); ``input_data`` is already sanitized and
    truncated text; ``traceback`` holds the formatted traceback when the error was an
    unexpected exception raised by a step (a bug rather than bad data).
    """

    error_type: str
    message: str
    operation: str | None = None
    domain: str | None = None
    row_number: int | None = None
    field: str | None = None
    input_data: str | None = None
    traceback: str | None = None

    def format(self) -> str:
        """Render ``[ERROR_TYPE] message | Domain: X | Row: N | Field: Y`` (known parts only)."""
        parts = [f"[{self.error_type}] {self.message}"]
        if self.domain is not None:
            parts.append(f"Domain: {self.domain}")
        if self.row_number is not None:
            parts.append(f"Row: {self.row_number}")
        if self.field is not None:
            parts.append(f"Field: {self.field}")
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the context as a plain dict (for logs, JSON and audit tables)."""
        return asdict(self)

    def __str__(self) -> str:
        return self.format()


class WdhDomainError(Exception):
    """Root of every error raised by ``wdh_domain``; carries an :class:`ErrorContext`.

    ``error_type`` defaults to the class's :attr:`default_error_type`. ``input_data`` may be
    any value (typically the row at fault); it is stored sanitized and truncated.
    """

    default_error_type: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        operation: str | None = None,
        domain: str | None = None,
        row_number: int | None = None,
        field: str | None = None,
        input_data: Any = None,
    ) -> None:
        self.context = ErrorContext(
            error_type=error_type or self.default_error_type,
            message=redact_text(message),
            operation=operation,
            domain=domain,
            row_number=row_number,
            field=field,
            input_data=render_input_data(input_data),
        )
        super().__init__(self.context.format())

    @property
    def message(self) -> str:
        """The message without the context parts."""
        return self.context.message

    @property
    def error_type(self) -> str:
        """The ``ERROR_TYPE`` shown in brackets."""
        return self.context.error_type

    @property
    def operation(self) -> str | None:
        """What was running when the error happened (e.g. the step name)."""
        return self.context.operation

    @property
    def domain(self) -> str | None:
        """The data domain (or pipeline) the error belongs to."""
        return self.context.domain

    @property
    def row_number(self) -> int | None:
        """0-based row position in the run's input, when the error concerns one row."""
        return self.context.row_number

    @property
    def field(self) -> str | None:
        """The column or model field at fault, when known."""
        return self.context.field

    @property
    def input_data(self) -> str | None:
        """The input at fault, sanitized and truncated, or ``None``."""
        return self.context.input_data


class PipelineConfigError(WdhDomainError, ValueError):
    """A pipeline, step, retry policy or rule was configured wrongly (raised when built)."""

    default_error_type = "CONFIG_ERROR"


class PipelineInputError(WdhDomainError, TypeError):
    """``Pipeline.run`` was given something that is not a pandas DataFrame."""

    default_error_type = "INPUT_ERROR"


class DataValidationError(WdhDomainError):
    """Data is not valid. Raised from ``RowTransformStep.apply`` it fails that one row only."""

    default_error_type = "VALIDATION_ERROR"


class MissingColumnsError(DataValidationError):
    """Required columns are absent from a DataFrame; lists what is missing and present."""

    default_error_type = "MISSING_COLUMNS"

    def __init__(
        self,
        missing: Sequence[str],
        present: Sequence[object],
        *,
        operation: str | None = None,
        domain: str | None = None,
    ) -> None:
        self.missing = tuple(missing)
        self.present = tuple(str(column) for column in present if column != ROW_COLUMN)
        present_text = ", ".join(self.present) if self.present else "(none)"
        super().__init__(
            f"Missing required column(s): {', '.join(self.missing)}; "
            f"columns present: {present_text}",
            operation=operation,
            domain=domain,
            field=", ".join(self.missing),
        )


class PipelineFailedError(WdhDomainError):
    """Raised by ``PipelineResult.raise_for_status()`` when a run did not succeed."""

    default_error_type = "PIPELINE_FAILED"


class CleansingRuleError(WdhDomainError):
    """A cleansing rule could not be registered, found or applied."""

    default_error_type = "CLEANSING_RULE_ERROR"


class DuplicateRuleError(CleansingRuleError):
    """A cleansing rule with this name is already registered."""

    default_error_type = "DUPLICATE_RULE"


class UnknownRuleError(CleansingRuleError):
    """No cleansing rule is registered under this name."""

    default_error_type = "UNKNOWN_RULE"
