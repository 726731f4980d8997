"""Reusable sample steps: required-column check (DataFrame) and pydantic row validation.

They also show how validation libraries plug in: a schema that checks a whole frame
(a pandera ``DataFrameSchema``, say) is a ``DataFrameStep`` whose ``execute`` calls
``schema.validate(df)``; a per-row model (pydantic) is a ``RowTransformStep`` that turns
the model's errors into field-level row errors, as :class:`ValidateDataTypesStep` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from wdh_domain.errors import MissingColumnsError, PipelineConfigError
from wdh_domain.pipelines._blank import blanks_to_none
from wdh_domain.pipelines._schema_columns import describe_error
from wdh_domain.pipelines._schema_plan import compile_model
from wdh_domain.pipelines._types import PipelineContext, Row, RowIssue, StepResult

__all__ = ["CheckRequiredColumnsStep", "ValidateDataTypesStep"]


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


class ValidateDataTypesStep:
    """Row step: validate each row with a pydantic model; report field-level errors.

    Missing cells (``NaN``, ``None``, ``pd.NA``, ``NaT``, and text that is empty or only
    whitespace) are given to the model as ``None``, so optional fields are written
    ``int | None``; they are found column-wise in :meth:`prepare`, before the rows are
    made, so the per-row work is the model call alone. A valid row is replaced by
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
        self._validate = model.__pydantic_validator__.validate_python  # model_validate's core
        # For a flat model (every field compiles to a plain column type, no extras, no
        # serializers) model_dump() equals the instance's field dict: skip the dump.
        self._dump_is_dict = (
            all(plan.kind is not None for plan in compile_model(model))
            and model.model_config.get("extra") != "allow"
        )

    def prepare(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:  # noqa: ARG002
        """Turn every missing or blank cell into ``None``, column by column."""
        return blanks_to_none(df)

    def apply(self, row: Row, context: PipelineContext) -> StepResult:  # noqa: ARG002 - protocol
        """Validate one row; see the class docstring for what the result holds."""
        try:
            validated = self._validate(row)
        except ValidationError as exc:
            return StepResult(row=row, errors=self._issues(exc))
        dumped: dict[str, Any] = (
            validated.__dict__ if self._dump_is_dict else validated.model_dump()
        )
        if self.keep_extra_columns:
            row.update(dumped)
            return StepResult(row=row)
        return StepResult(row=dict(dumped))

    @staticmethod
    def _issues(exc: ValidationError) -> list[str | RowIssue]:
        issues: list[str | RowIssue] = []
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or None
            message = describe_error(field or "", error["type"], error["msg"], error.get("input"))
            issues.append(
                RowIssue(message, field=field, error_type="VALIDATION_ERROR", code=error["type"])
            )
        return issues
