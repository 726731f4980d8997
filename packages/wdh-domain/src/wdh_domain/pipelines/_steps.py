"""A reusable sample step: the required-column check (a DataFrame step).

It also shows how validation libraries plug in: a schema that checks a whole frame (a
pandera ``DataFrameSchema``, say) is a ``DataFrameStep`` whose ``execute`` calls
``schema.validate(df)``; one that rejects single rows is a ``ValidationStep``, as
``ValidateSchemaStep`` (column-wise) and ``ValidateDataTypesStep`` (row-wise) are.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from wdh_domain.errors import MissingColumnsError, PipelineConfigError
from wdh_domain.pipelines._types import PipelineContext

__all__ = ["CheckRequiredColumnsStep"]


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
