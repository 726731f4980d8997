"""Reusable sample steps: required-column check (DataFrame) and pydantic row validation.

They also show how validation libraries plug in: a schema that checks a whole frame
(a pandera ``DataFrameSchema``, say) is a ``DataFrameStep`` whose ``execute`` calls
``schema.validate(df)``; a per-row model (pydantic) is a ``RowTransformStep`` that turns
the model's errors into field-level row errors, as :class:`ValidateDataTypesStep` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from wdh_domain._sanitize import MASK, is_sensitive_key, truncate
from wdh_domain.errors import MissingColumnsError, PipelineConfigError
from wdh_domain.pipelines._types import PipelineContext, Row, RowIssue, StepResult

__all__ = ["CheckRequiredColumnsStep", "ValidateDataTypesStep"]

_MAX_VALUE_CHARS = 60


class CheckRequiredColumnsStep:
    """DataFrame step: fail when any of ``required_columns`` is missing.

    Raises :class:`~wdh_domain.errors.MissingColumnsError` naming every missing column
    and every column present; otherwise returns the frame it was given, unchanged.
    """

    def __init__(self, required_columns: Sequence[str], *, name: str | None = None) -> None:
        if isinstance(required_columns, str):
            raise PipelineConfigError(
                "required_columns must be a sequence of column names, not one string "
                f"({required_columns!r}); write required_columns=[{required_columns!r}]",
                field="required_columns",
            )
        columns = tuple(required_columns)
        if not columns:
            raise PipelineConfigError(
                "required_columns must name at least one column", field="required_columns"
            )
        self.required_columns = columns
        self.name = name or type(self).__name__

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        """Return ``df`` unchanged when every required column is present."""
        present = set(df.columns)
        missing = [column for column in self.required_columns if column not in present]
        if missing:
            raise MissingColumnsError(
                missing, list(df.columns), operation=self.name, domain=context.domain
            )
        return df


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _describe_input(field: str | None, value: object) -> str:
    if field is not None and is_sensitive_key(field.rsplit(".", 1)[-1]):
        return MASK
    return truncate(repr(value), _MAX_VALUE_CHARS)


_NOT_GIVEN = object()


class ValidateDataTypesStep:
    """Row step: validate each row with a pydantic model; report field-level errors.

    Missing values (``NaN``, ``None``, ``pd.NA``, ``NaT``) are given to the model as
    ``None``, so optional fields are written ``int | None``. A valid row is replaced by
    the model's output (``model_dump()``: coerced types, defaults filled) merged over the
    original row, so columns the model does not know are kept unless
    ``keep_extra_columns=False``. An invalid row fails with one error per pydantic
    error: ``error_type`` ``VALIDATION_ERROR``, ``field`` the dotted location, message the
    pydantic message plus the offending value (masked for sensitive fields); an empty
    cell in a required field reads ``required value is missing (the cell is empty)``.
    """

    def __init__(
        self,
        model: type[BaseModel],
        *,
        name: str | None = None,
        keep_extra_columns: bool = True,
    ) -> None:
        candidate: object = model  # checked at runtime for untyped callers
        if not (isinstance(candidate, type) and issubclass(candidate, BaseModel)):
            raise PipelineConfigError(
                f"ValidateDataTypesStep needs a pydantic BaseModel class, got {model!r}",
                field="model",
            )
        self.model = model
        self.keep_extra_columns = keep_extra_columns
        self.name = name or type(self).__name__

    def apply(self, row: Row, context: PipelineContext) -> StepResult:  # noqa: ARG002 - protocol
        """Validate one row; see the class docstring for what the result holds."""
        data = {key: None if _is_missing(value) else value for key, value in row.items()}
        try:
            validated = self.model.model_validate(data)
        except ValidationError as exc:
            return StepResult(row=row, errors=self._issues(exc))
        dumped: dict[str, Any] = validated.model_dump()
        if self.keep_extra_columns:
            row.update(dumped)
            return StepResult(row=row)
        return StepResult(row=dumped)

    @staticmethod
    def _issues(exc: ValidationError) -> list[str | RowIssue]:
        issues: list[str | RowIssue] = []
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or None
            if error.get("input", _NOT_GIVEN) is None and error["type"] != "missing":
                # an empty cell given to a required field: say that, not "should be a
                # valid string (got None)"
                message = "required value is missing (the cell is empty)"
            else:
                message = f"{error['msg']} (got {_describe_input(field, error.get('input'))})"
            issues.append(RowIssue(message=message, field=field, error_type="VALIDATION_ERROR"))
        return issues
