"""``ValidateDataTypesStep``: every row validated by a pydantic model, one call per row.

The work around the model call is done column-wise: blank cells are found per column
before the loop, the loop is the model's core validator called on one dict per row (a
generated loop, run chunk by chunk; for a flat model, the validator of its fields, which
gives the field values without making an instance), and the output frame is built once,
column by column, from the validated rows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, islice, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray
from pydantic import BaseModel, ValidationError

from wdh_domain.errors import DataValidationError, PipelineConfigError
from wdh_domain.pipelines._blank import column_cells
from wdh_domain.pipelines._frames import frame_from_columns, frame_from_rows
from wdh_domain.pipelines._rowwise_scan import Keep, field_dict_validator, row_maker, scanner
from wdh_domain.pipelines._schema_columns import describe_error
from wdh_domain.pipelines._schema_plan import compile_model
from wdh_domain.pipelines._schema_step import SchemaValidation
from wdh_domain.pipelines._types import PipelineContext
from wdh_logging import redact_text

__all__ = ["ValidateDataTypesStep", "model_input_rows"]

_CHUNK = 1024
"""Rows validated between two conversions of their results to output: few enough that
the results are still in the CPU cache when they are read (measured: larger chunks,
whose results are read back from memory, are slower)."""


def _input_rows(df: pd.DataFrame, cells: list[list[Any]]) -> Iterable[dict[Any, Any]]:
    """One fresh dict per row (column label -> cell), made lazily from the cell lists."""
    if not len(df.columns):
        return ({} for _ in range(len(df)))
    return map(row_maker(list(df.columns)), *cells)


def model_input_rows(df: pd.DataFrame) -> list[dict[Any, Any]]:
    """The rows :class:`ValidateDataTypesStep` gives its model: one fresh dict per row
    (column label -> Python value), missing and blank cells as ``None``.

    Useful to call the model by hand on exactly what the step validates (to debug a
    verdict, or to time the bare model). The columns must be unique.
    """
    return list(_input_rows(df, column_cells(df)[0]))


class _Failures:
    """The failed rows and their errors, kept as parallel lists (one entry per error)."""

    __slots__ = ("codes", "fields", "messages", "positions", "rows")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.positions: list[int] = []
        self.fields: list[str | None] = []
        self.codes: list[str] = []
        self.messages: list[str] = []

    def add(self, position: int, exc: ValidationError) -> int:
        """Record row ``position``'s errors (field, pydantic's type, readable message);
        return how many rows failed so far."""
        self.rows.append(position)
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or None
            message = describe_error(field or "", error["type"], error["msg"], error.get("input"))
            self.positions.append(position)
            self.fields.append(field)
            self.codes.append(error["type"])
            self.messages.append(redact_text(message))
        return len(self.rows)

    def table(self) -> pd.DataFrame:
        """The errors as a frame with the columns ``position, field, code, message``."""
        return pd.DataFrame(
            {
                "position": np.array(self.positions, dtype=np.int64),
                "field": np.array(self.fields, dtype=object),
                "code": np.array(self.codes, dtype=object),
                "message": np.array(self.messages, dtype=object),
            }
        )


class ValidateDataTypesStep:
    """Validation step: validate each row with a pydantic model; report field-level errors.

    Each row goes to the model as a dict (column label -> value) and is validated by it
    alone, so field validators, model validators and every constraint run as
    ``model_validate`` runs them. Missing cells (``NaN``, ``None``, ``pd.NA``, ``NaT``,
    and text that is empty or only whitespace) are given to the model as ``None``, so
    optional fields are written ``int | None``.

    A valid row becomes the model's output (``model_dump()``: coerced types, defaults
    filled) merged over the row, so columns the model does not know are kept unless
    ``keep_extra_columns=False``; column dtypes are inferred from the values (a column
    the input had keeps its dtype when every value still fits it). An invalid row
    fails with one error per pydantic error: ``field`` the dotted location (``None``
    for a model-level error), ``code`` pydantic's error type, message the pydantic
    message plus the offending value (masked for sensitive fields); an empty cell in a
    required field reads ``required value is missing (the cell is empty)``.

    In a pipeline the step runs through :meth:`validate`, which stops at the first row
    that exceeds the run's error budget. An exception other than a validation error
    (a bug in a validator) fails the step.
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
        self._fields = tuple(model.model_fields)
        # For a flat model (every field compiles to a plain column type, no extras, no
        # serializers) model_dump() equals the instance's field dict: skip the dump.
        plans = compile_model(model)
        self._dump_is_dict = (
            all(plan.kind is not None for plan in plans)
            and model.model_config.get("extra") != "allow"
        )
        # ... and when the model makes nothing but its instance, its fields' validator
        # gives that dict without the instance.
        self._field_dicts = field_dict_validator(model) if self._dump_is_dict else None
        # Int fields whose values are exactly pydantic's ints (or None): no instance, no
        # model_post_init, between the validator and the values.
        self._int_fields = frozenset(
            plan.name for plan in plans if plan.kind == "int" and self._field_dicts is not None
        )

    def validate(
        self,
        df: pd.DataFrame,
        context: PipelineContext,
        *,
        max_failures: int | None = None,
    ) -> SchemaValidation:
        """Validate ``df`` row by row; stop at the row where failures exceed
        ``max_failures`` (``None``: no limit). See :class:`SchemaValidation`."""
        if not df.columns.is_unique:
            duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
            raise DataValidationError(
                f"Step '{self.name}' needs unique column names; duplicated: "
                f"{', '.join(duplicated)}",
                operation=self.name,
                domain=context.domain,
                field=", ".join(duplicated),
            )
        cells, blanks = column_cells(df)
        flat = self._dump_is_dict
        # Flat models: each field's values, one list per field; else the merged rows.
        values: list[list[Any]] = [[] for _ in self._fields]
        merged: list[dict[Any, Any]] = []
        failures = _Failures()
        limit = sys.maxsize if max_failures is None else max_failures
        checked = self._scan(
            list(df.columns),
            cells,
            total=len(df),
            failures=failures,
            limit=limit,
            values=values,
            merged=merged,
        )
        failed = np.array(failures.rows, dtype=np.int64)
        keep = np.ones(checked, dtype=bool)
        keep[failed] = False
        index = df.index[:checked][keep]
        if flat:
            data = self._frame(
                df, cells=cells, blanks=blanks, values=values, keep=keep, index=index
            )
        else:
            data = frame_from_rows(merged, index=index, template=df)
        return SchemaValidation(
            data=data, failed=failed, errors=failures.table(), stopped=checked < len(df)
        )

    def _scan(
        self,
        labels: list[Any],
        cells: list[list[Any]],
        *,
        total: int,
        failures: _Failures,
        limit: int,
        values: list[list[Any]],
        merged: list[dict[Any, Any]],
    ) -> int:
        """Validate the ``total`` rows in order, recording failures; return how many rows
        were checked: all, or up to the one whose failure exceeds ``limit``.

        Valid rows go, in order, to ``values`` (a flat model: one list per field) or to
        ``merged`` (the output rows). The rows are validated by one generated loop per
        chunk of :data:`_CHUNK` rows; what it keeps of a chunk's valid rows is turned
        into output before the next chunk, so only a chunk's results are alive at once.
        """
        validate: Callable[[Any], Any] = self._validate
        if not self._dump_is_dict:
            mode: Keep = "row"
        elif self._field_dicts is None:
            mode = "dict"
        else:
            mode, validate = "first", self._field_dicts
        scan = scanner(labels, mode)
        rows: Iterator[tuple[Any, ...]] = zip(*cells, strict=True) if cells else repeat((), total)
        getters = [itemgetter(name) for name in self._fields]
        start, failed_before, stop_at = 0, 0, -1
        kept: list[Any] = []

        def fail(exc: ValidationError) -> bool:
            nonlocal stop_at
            # The failing row is the chunk's next row: after the ones kept and failed.
            position = start + len(kept) + len(failures.rows) - failed_before
            if failures.add(position, exc) > limit:
                stop_at = position
                return True
            return False

        def keep_merged(row: dict[Any, Any], model: BaseModel) -> None:
            kept.append(self._merged(row, model))

        while start < total:
            kept = []
            failed_before = len(failures.rows)
            stopped = scan(
                islice(rows, _CHUNK), validate, keep_merged if mode == "row" else kept.append, fail
            )
            if mode == "row":
                merged.extend(kept)
            else:
                for column, getter in zip(values, getters, strict=True):
                    column.extend(map(getter, kept))
            if stopped:
                return stop_at + 1
            start += _CHUNK
        return total

    def _merged(self, row: dict[Any, Any], model: BaseModel) -> dict[Any, Any]:
        dumped = model.model_dump()
        if self.keep_extra_columns:
            row.update(dumped)
            return row
        return dumped

    def _frame(
        self,
        df: pd.DataFrame,
        *,
        cells: list[list[Any]],
        blanks: list[np.ndarray],
        values: list[list[Any]],
        keep: np.ndarray,
        index: pd.Index,
    ) -> pd.DataFrame:
        """The kept rows' frame, built column-wise: the model's fields from their values,
        the other columns (when kept) from the input with blank cells as None.

        A text column (pandas string dtype) whose values come out as they went in is
        taken from the input, blank cells made missing, instead of being rebuilt from
        Python strings: that is the frame the values would give, at a fraction of the cost.
        """
        positions = np.flatnonzero(keep)
        whole = len(positions) == len(df)
        picks = None if whole else keep.tolist()
        produced = dict(zip(self._fields, values, strict=True))
        where = {label: position for position, label in enumerate(df.columns)}
        if self.keep_extra_columns:  # the input's columns, then the fields it lacks
            order = [*df.columns, *(name for name in self._fields if name not in where)]
        else:
            order = list(self._fields)
        columns: dict[Any, Any] = {}
        for label in order:
            position = where.get(label)
            new = produced.get(label)
            if position is None:  # a field without an input column
                columns[label] = new
                continue
            column = df.iloc[:, position]
            blank = blanks[position]
            text = isinstance(column.dtype, pd.StringDtype) and not blank[positions].all()
            if text and new is None:  # an input text column, as it came in
                columns[label] = _text_column(column, blank, positions, whole)
                continue
            cell = cells[position]
            if new is None:
                columns[label] = cell if picks is None else list(compress(cell, picks))
            elif label in self._int_fields:
                columns[label] = _int64_or_list(new)
            elif (
                text
                and _first_present(new) is str
                and new == (cell if picks is None else list(compress(cell, picks)))
            ):
                columns[label] = _text_column(column, blank, positions, whole)
            else:
                columns[label] = new
        return frame_from_columns(columns, index=index, template=df)


def _int64_or_list(values: list[Any]) -> np.ndarray | list[Any]:
    """An int field's values as an int64 array, the dtype pandas infers from a list of
    ints (made without pandas' per-value inference); the list itself when a value is
    None or does not fit in int64, for pandas to infer as it would."""
    try:
        return np.fromiter(values, dtype=np.int64, count=len(values))
    except (TypeError, OverflowError):
        return values


def _first_present(values: list[Any]) -> type:
    """The type of the first value that is not None (``NoneType`` when there is none)."""
    return type(next((value for value in values if value is not None), None))


def _text_column(
    column: pd.Series, blank: np.ndarray, positions: np.ndarray, whole: bool
) -> ExtensionArray:
    """A string-dtype input column at ``positions``, its blank cells missing (one take:
    a blank cell's position becomes -1, which ``take`` fills with the missing value).
    All missing is excluded by the caller: pandas makes a list of None an object column."""
    text: ExtensionArray = column.array
    if whole and not blank.any():
        return text
    return text.take(np.where(blank[positions], -1, positions), allow_fill=True)
