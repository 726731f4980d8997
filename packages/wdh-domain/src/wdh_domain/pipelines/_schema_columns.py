"""Column-wise checks of one compiled field: parse, coerce and check a whole column.

Each kind has a fast path for the canonical text (or native dtype) of its values, done
with pandas/numpy over the column. A cell the fast path does not take -- unusual text,
a failed constraint, an unexpected type -- is validated by pydantic itself (a
``TypeAdapter`` of the field's annotated type), once per distinct value. Pydantic thus
decides every borderline case, so verdicts, error types and messages are its own, while
well-formed data never leaves vectorized code.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype
from pydantic import ValidationError

from wdh_domain._text import truncate
from wdh_domain.pipelines._schema_arrow import (
    arrow_dates,
    arrow_decimal_digits,
    arrow_decimals,
    decimal_bounds,
    decimal_column,
)
from wdh_domain.pipelines._schema_pattern import pattern_matches
from wdh_domain.pipelines._schema_plan import FieldPlan
from wdh_logging import is_sensitive_key, redact_text, redact_texts, sanitize_for_logging

__all__ = ["FieldCheck", "check_field", "describe_error", "describe_errors"]

_MAX_VALUE_CHARS: Final = 60
_EMPTY_CELL: Final = "required value is missing (the cell is empty)"
# The mask wdh_logging puts on the value of a sensitive key, taken from it (one redaction).
_MASKED: Final = str(sanitize_for_logging({"password": "x"})["password"])

_INT_TEXT: Final = r"-?(?:0|[1-9][0-9]{0,17})"
_FLOAT_TEXT: Final = r"[+-]?[0-9]{1,300}(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,3})?"
_DECIMAL_TEXT: Final = r"[+-]?[0-9]+(?:\.[0-9]+)?"
_DATE_TEXT: Final = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATETIME_TEXT: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
)
_ASCII_SPACE: Final = " \t\n\r\x0b\x0c"
_BOOL_TEXT: Final = {
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
}


@lru_cache(maxsize=1024)
def _sensitive(field: str) -> bool:
    return is_sensitive_key(field.rsplit(".", 1)[-1])


def describe_error(field: str, error_type: str, message: str, value: object) -> str:
    """The row error message both validation steps use: pydantic's message plus the
    offending value (masked for a sensitive field), or a plain "the cell is empty".
    A ``missing`` field has no value: pydantic's input there is the whole row, which is
    not shown."""
    unshown = _unshown(error_type, message, value, sensitive=_sensitive(field))
    if unshown is not None:
        return unshown
    try:
        # Bad values repeat (a file of thousands of failures holds a few distinct
        # ones): each is shown once, then reused. Keyed by type: 1, 1.0 and True are
        # equal but shown differently.
        return _shown_with(message, (type(value).__module__, type(value).__qualname__), value)
    except TypeError:  # unhashable (a list, a dict)
        return _shown(message, redact_text(repr(value)))


def describe_errors(
    fields: Sequence[str],
    error_types: Sequence[str],
    messages: Sequence[str],
    values: Sequence[object],
) -> list[str]:
    """:func:`describe_error` of many errors at once (parallel sequences): the values'
    texts are redacted together, which is what a column of distinct bad values costs."""
    out = list(map(_shown, messages, redact_texts(list(map(repr, values)))))
    sensitive = {field: _sensitive(field) for field in set(fields)}
    if any(sensitive.values()) or "missing" in error_types or None in values:
        for index, (field, error_type, message, value) in enumerate(
            zip(fields, error_types, messages, values, strict=True)
        ):
            unshown = _unshown(error_type, message, value, sensitive=sensitive[field])
            if unshown is not None:
                out[index] = unshown
    return out


def _unshown(error_type: str, message: str, value: object, *, sensitive: bool) -> str | None:
    """The message of an error whose value is not shown: a missing field, an empty
    cell, a sensitive field; ``None`` for the others."""
    if error_type == "missing":
        return message
    if value is None:
        return _EMPTY_CELL
    if sensitive:
        return f"{message} (got {_MASKED})"
    return None


@lru_cache(maxsize=4096)
def _shown_with(message: str, _kind: tuple[str, str], value: object) -> str:
    return _shown(message, redact_text(repr(value)))


def _shown(message: str, text: str) -> str:
    """*message* with the (redacted) text of the offending value."""
    return f"{message} (got {truncate(text, _MAX_VALUE_CHARS)})"


@dataclass(slots=True)
class FieldCheck:
    """Outcome of one field over one chunk: output ``values`` (one per row) and the
    failures as parallel arrays (row position in the chunk, dotted field, type, message)."""

    values: Any
    positions: np.ndarray
    fields: np.ndarray
    codes: np.ndarray
    messages: np.ndarray


def _text(column: pd.Series) -> pd.Series | None:
    """The column as pandas text when every present value is a str, else None."""
    if isinstance(column.dtype, pd.StringDtype):
        return column
    if column.dtype == object and infer_dtype(column, skipna=True) in ("string", "empty"):
        return column.astype("str")
    return None


def _matches(text: pd.Series | None, pattern: str, n: int) -> np.ndarray:
    if text is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(text.str.fullmatch(pattern).fillna(value=False), dtype=bool)


_ARROW_COMPARE: Final = ("greater", "greater_equal", "less", "less_equal")


def _bounds(plan: FieldPlan, values: Any, ok: np.ndarray) -> np.ndarray:
    """``ok`` minus the cells that break gt/ge/lt/le (pydantic then words the error)."""
    checks: list[tuple[Any, Any]] = [
        (plan.gt, np.greater),
        (plan.ge, np.greater_equal),
        (plan.lt, np.less),
        (plan.le, np.less_equal),
    ]
    if not isinstance(values, np.ndarray):  # an Arrow decimal array
        kernels = zip((plan.gt, plan.ge, plan.lt, plan.le), _ARROW_COMPARE, strict=True)
        return decimal_bounds(values, ok, [(b, k) for b, k in kernels if b is not None])
    for bound, compare in checks:
        if bound is None:
            continue
        if values.dtype != object:
            ok = ok & compare(values, bound)
        else:
            passed = [
                bool(compare(v, bound)) if keep else False
                for v, keep in zip(values, ok, strict=True)
            ]
            ok = ok & np.asarray(passed, dtype=bool)
    return ok


def _fast_int(_plan: FieldPlan, column: pd.Series, present: np.ndarray) -> tuple[Any, np.ndarray]:
    n = len(column)
    if column.dtype.kind in "iu":
        return column.to_numpy(dtype=np.int64), present.copy()
    if column.dtype.kind == "f":
        raw = column.to_numpy(dtype=np.float64)
        ok = present & np.isfinite(raw) & (np.floor(raw) == raw) & (np.abs(raw) < 2**53)
        return np.where(ok, raw, 0).astype(np.int64), ok
    text = _text(column)
    ok = present & _matches(text, _INT_TEXT, n)
    values = np.zeros(n, dtype=np.int64)
    if text is not None and ok.any():
        values[ok] = text[ok].astype(np.int64).to_numpy()
    return values, ok


def _fast_float(_plan: FieldPlan, column: pd.Series, present: np.ndarray) -> tuple[Any, np.ndarray]:
    n = len(column)
    if column.dtype.kind in "iuf":
        raw = column.to_numpy(dtype=np.float64)
        return raw, present & np.isfinite(raw) if column.dtype.kind == "f" else present.copy()
    text = _text(column)
    ok = present & _matches(text, _FLOAT_TEXT, n)
    values = np.zeros(n, dtype=np.float64)
    if text is not None and ok.any():
        values[ok] = text[ok].astype(np.float64).to_numpy()
        ok &= np.isfinite(values)
    return values, ok


def _fast_decimal(
    plan: FieldPlan, column: pd.Series, present: np.ndarray
) -> tuple[Any, np.ndarray]:
    n = len(column)
    text = _text(column)
    ok = present & _matches(text, _DECIMAL_TEXT, n)
    if (
        text is not None
        and ok.any()
        and (plan.max_digits is not None or plan.decimal_places is not None)
    ):
        whole, places = _decimal_digits(text[ok])
        fits = np.ones(len(whole), dtype=bool)
        if plan.max_digits is not None:
            fits &= (whole + places) <= plan.max_digits
        if plan.decimal_places is not None:
            fits &= places <= plan.decimal_places
        if plan.max_digits is not None and plan.decimal_places is not None:
            fits &= whole <= plan.max_digits - plan.decimal_places
        ok[np.flatnonzero(ok)[~fits]] = False
    arrow = arrow_decimals(text, ok, plan.max_digits, plan.decimal_places)
    if arrow is not None:
        return arrow, ok
    values = np.full(n, None, dtype=object)
    if text is not None and ok.any():
        values[ok] = list(map(Decimal, text[ok].tolist()))
    return values, ok


def _decimal_digits(good: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(digits before the point, digits after it) of each decimal text, counted as
    pydantic counts them on the normalized value: no leading zeros before the point, no
    trailing zeros after it."""
    counted = arrow_decimal_digits(good)
    if counted is not None:
        return counted
    unsigned = good.str.lstrip("+-")
    parts = unsigned.str.partition(".")
    whole = parts[0].str.lstrip("0").str.len().to_numpy()
    places = parts[2].str.rstrip("0").str.len().to_numpy()
    return whole, places


def _fast_str(plan: FieldPlan, column: pd.Series, present: np.ndarray) -> tuple[Any, np.ndarray]:
    text = _text(column)
    if text is None:
        return np.full(len(column), None, dtype=object), np.zeros(len(column), dtype=bool)
    ok = present.copy()
    if plan.strip:
        # Python and pydantic agree on ASCII whitespace; a cell with any other space-like
        # character at an end goes to pydantic.
        ascii_stripped = text.str.strip(_ASCII_SPACE)
        ok &= np.asarray(ascii_stripped.eq(text.str.strip()).fillna(value=False), dtype=bool)
        text = ascii_stripped
    if plan.min_length is not None or plan.max_length is not None:
        lengths = text.str.len().fillna(0).to_numpy(dtype=np.int64)
        if plan.min_length is not None:
            ok &= lengths >= plan.min_length
        if plan.max_length is not None:
            ok &= lengths <= plan.max_length
    if plan.pattern is not None:
        ok &= pattern_matches(text, plan.pattern)
    # Kept as pandas text (Arrow-backed when pyarrow is there): no Python str per cell.
    return text, ok


def _fast_temporal(
    plan: FieldPlan, column: pd.Series, present: np.ndarray
) -> tuple[Any, np.ndarray]:
    n = len(column)
    text = _text(column)
    pattern = _DATE_TEXT if plan.kind == "date" else _DATETIME_TEXT
    ok = present & _matches(text, pattern, n)
    values = np.full(n, None, dtype=object)
    if text is None or not ok.any():
        return values, ok
    if plan.kind == "date":
        dates = arrow_dates(text[ok])
        if dates is not None:
            parsed, days = dates
            values[np.flatnonzero(ok)[parsed]] = days
            ok[np.flatnonzero(ok)[~parsed]] = False
            return values, ok
    stamps = pd.to_datetime(text[ok], format="ISO8601", errors="coerce")
    # pandas parses year 0, which Python's date and datetime (and pydantic) refuse
    parsed = (stamps.notna() & stamps.dt.year.ge(1)).to_numpy(dtype=bool)
    ok[np.flatnonzero(ok)[~parsed]] = False
    good = stamps[parsed]
    if plan.kind == "date":
        values[ok] = good.dt.date.to_numpy(dtype=object)
    else:
        values[ok] = good.dt.to_pydatetime()
    return values, ok


def _fast_bool(_plan: FieldPlan, column: pd.Series, present: np.ndarray) -> tuple[Any, np.ndarray]:
    if column.dtype == bool:
        return column.to_numpy(), present.copy()
    text = _text(column)
    if text is None:
        return np.zeros(len(column), dtype=bool), np.zeros(len(column), dtype=bool)
    mapped = text.str.lower().map(_BOOL_TEXT)
    ok = present & np.asarray(mapped.notna())
    return mapped.eq(other=True).to_numpy(dtype=bool), ok


def _fast_choice(plan: FieldPlan, column: pd.Series, present: np.ndarray) -> tuple[Any, np.ndarray]:
    text = _text(column)
    if text is None:
        return np.full(len(column), None, dtype=object), np.zeros(len(column), dtype=bool)
    mapped = text.map(plan.choices)
    ok = present & np.asarray(mapped.notna())
    return mapped.to_numpy(dtype=object), ok


_FAST = {
    "int": _fast_int,
    "float": _fast_float,
    "decimal": _fast_decimal,
    "str": _fast_str,
    "date": _fast_temporal,
    "datetime": _fast_temporal,
    "bool": _fast_bool,
    "choice": _fast_choice,
}


@dataclass(slots=True)
class _Verdicts:
    """Pydantic's verdicts on some cells, as arrays parallel to those cells."""

    ok: np.ndarray
    values: np.ndarray
    where: np.ndarray
    codes: np.ndarray
    messages: np.ndarray
    extra: list[tuple[int, str, str, str]]  # (cell, where, code, message) of 2nd+ errors


def _distinct(cells: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """(code per cell, distinct values): equal values share a code, but never values of
    different types (``1``, ``1.0`` and ``True`` are equal in Python)."""
    if infer_dtype(cells, skipna=False) == "string":
        codes, uniques = pd.factorize(cells)
        return codes, list(uniques)
    index: dict[Any, int] = {}
    distinct: list[Any] = []
    codes = np.empty(len(cells), dtype=np.int64)
    for cell, value in enumerate(cells.tolist()):
        try:
            key = (type(value), value)
            code = index.get(key)
            if code is None:
                code = index[key] = len(distinct)
                distinct.append(value)
        except TypeError:  # unhashable: its own code
            code = len(distinct)
            distinct.append(value)
        codes[cell] = code
    return codes, distinct


_JUDGED_AT_ONCE: Final = 2048
"""Distinct values validated per pydantic call: pydantic's error list for them is held
at once, so this bounds memory when every value fails."""


def _judge(plan: FieldPlan, cells: np.ndarray) -> _Verdicts:
    """Validate ``cells`` with the field's ``TypeAdapter``, once per distinct value.

    The distinct values go to pydantic as lists (of ``_JUDGED_AT_ONCE``): a file of
    failures costs one call per list, not one raised exception per value, and their
    messages are worded together. The values that passed are then validated once more,
    on their own, for their output (usually few: the fast path took the well-formed
    cells already).
    """
    codes, distinct = _distinct(cells)
    size = len(distinct)
    verdicts = _Judged(size)
    for start in range(0, size, _JUDGED_AT_ONCE):
        verdicts.judge(plan, distinct[start : start + _JUDGED_AT_ONCE], start)
    extra = [
        (int(cell), path, kind, text)
        for number, path, kind, text in verdicts.extra
        for cell in np.flatnonzero(codes == number)
    ]
    return _Verdicts(
        verdicts.ok[codes],
        verdicts.values[codes],
        verdicts.where[codes],
        verdicts.kinds[codes],
        verdicts.messages[codes],
        extra,
    )


class _Judged:
    """Pydantic's verdicts on distinct values, filled a list of them at a time."""

    def __init__(self, size: int) -> None:
        self.ok = np.ones(size, dtype=bool)
        self.values = np.full(size, None, dtype=object)
        self.where = np.full(size, None, dtype=object)
        self.kinds = np.full(size, None, dtype=object)
        self.messages = np.full(size, None, dtype=object)
        self.extra: list[tuple[int, str, str, str]] = []  # 2nd+ errors: (value, where, …)

    def judge(self, plan: FieldPlan, values: list[Any], offset: int) -> None:
        assert plan.adapter is not None  # noqa: S101 - compiled fields always have one
        try:
            passed = plan.adapter.validate_python(values)
        except ValidationError as exc:
            passed = None
            self._failed(_Errors.of(exc, plan.name, values), offset)
        good = np.flatnonzero(self.ok[offset : offset + len(values)])
        if passed is None and len(good):
            passed = plan.adapter.validate_python([values[number] for number in good])
        for number, value in zip(good, passed or (), strict=True):
            self.values[offset + number] = value

    def _failed(self, errors: _Errors, offset: int) -> None:
        numbers = np.array(errors.numbers, dtype=np.int64)
        texts = describe_errors(errors.paths, errors.types, errors.messages, errors.inputs)
        paths = np.array(errors.paths, dtype=object)
        types = np.array(errors.types, dtype=object)
        texts_array = np.array(texts, dtype=object)
        # A value's errors are listed together, its first one first.
        _, first = np.unique(numbers, return_index=True)
        failed = numbers[first] + offset
        self.ok[failed] = False
        self.where[failed], self.kinds[failed] = paths[first], types[first]
        self.messages[failed] = texts_array[first]
        if len(first) < len(numbers):
            rest = np.ones(len(numbers), dtype=bool)
            rest[first] = False
            self.extra.extend(
                (int(numbers[i]) + offset, paths[i], types[i], texts[i])
                for i in np.flatnonzero(rest)
            )


@dataclass(frozen=True, slots=True)
class _Errors:
    """Pydantic's errors for a list of values, as parallel lists: the value's index,
    the dotted field, the error type, pydantic's message and the value it is about."""

    numbers: list[int]
    paths: list[str]
    types: list[str]
    messages: list[str]
    inputs: list[Any]

    @classmethod
    def of(cls, exc: ValidationError, name: str, values: list[Any]) -> _Errors:
        """An error at a value itself (``loc`` is its index: every compiled type) is
        about that value, so pydantic need not copy the inputs into its errors, which
        is a good part of what listing many errors costs."""
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        locs: list[tuple[int | str, ...]] = list(map(_LOC, errors))
        types: list[str] = list(map(_TYPE, errors))
        messages: list[str] = list(map(_MSG, errors))
        if max(map(len, locs), default=1) == 1:
            numbers: list[int] = list(map(_FIRST, locs))  # ints: the values' indexes
            inputs = list(map(values.__getitem__, numbers))
            return cls(numbers, [name] * len(errors), types, messages, inputs)
        full = exc.errors(include_url=False, include_context=False)
        return cls(
            [int(loc[0]) for loc in locs],
            [_path(name, loc) for loc in locs],
            types,
            messages,
            [error.get("input") for error in full],
        )


_LOC: Final = operator.itemgetter("loc")
_TYPE: Final = operator.itemgetter("type")
_MSG: Final = operator.itemgetter("msg")
_FIRST: Final = operator.itemgetter(0)


def _path(name: str, loc: tuple[int | str, ...]) -> str:
    """The dotted field of an error at ``loc`` in the list of cells (its index first)."""
    return name if len(loc) == 1 else ".".join([name, *map(str, loc[1:])])


def _column_values(
    plan: FieldPlan, values: Any, missing: np.ndarray, at: np.ndarray, fixed: np.ndarray
) -> Any:
    """The output column: native dtype where the kind has one, else Python objects.
    ``fixed`` holds pydantic's values for the cells at positions ``at``."""
    if isinstance(values, pd.Series):  # text: stays text; blank cells become missing
        text = values.reset_index(drop=True)
        if len(at):
            text.iloc[at] = fixed
        return text.mask(missing).array
    if not isinstance(values, np.ndarray):  # an Arrow decimal array
        return decimal_column(values, missing, at, fixed)
    if plan.kind in ("int", "float", "bool"):
        if not len(at) and not missing.any():
            return values
        fixed_list = fixed.tolist()
        if plan.kind == "float" and all(isinstance(v, float) for v in fixed_list):
            out = values.astype(np.float64, copy=True)
            out[at] = np.asarray(fixed_list, dtype=np.float64)
            out[missing] = np.nan
            return out
        if plan.kind == "int" and all(type(v) is int and -(2**63) <= v < 2**63 for v in fixed_list):
            array = pd.array(values, dtype="Int64")
            array[at] = np.asarray(fixed_list, dtype=np.int64)
            array[missing] = pd.NA
            return array
        values = values.astype(object)
    out = np.array(values, dtype=object, copy=True)
    out[at] = fixed
    out[missing] = None
    return out


def check_field(plan: FieldPlan, column: pd.Series | None, missing: np.ndarray) -> FieldCheck:
    """Validate and coerce ``column`` (``None``: the frame lacks it) for ``plan``.

    ``missing`` marks the blank cells; they are ``None`` to pydantic (allowed when the
    field is ``| None``, else the error pydantic gives for ``None``). A missing column is
    a missing key to pydantic: the field's default, else the error ``missing``.
    """
    n = len(missing)
    if column is None and plan.has_default:
        values = np.empty(n, dtype=object)
        values[:] = [plan.default() for _ in range(n)] if n else []
        return FieldCheck(values, np.array([], dtype=np.int64), *_no_errors())
    if column is None:
        return FieldCheck(
            values=np.full(n, None, dtype=object),
            positions=np.arange(n, dtype=np.int64),
            fields=np.full(n, plan.name, dtype=object),
            codes=np.full(n, "missing", dtype=object),
            messages=np.full(n, "Field required", dtype=object),
        )
    present = ~missing
    values, ok = _FAST[plan.kind or "str"](plan, column, present)
    ok = _bounds(plan, values, ok) if plan.kind in ("int", "float", "decimal") else ok
    slow = present & ~ok
    if not plan.nullable:
        slow |= missing
    at = np.flatnonzero(slow)
    cells = column.iloc[at].to_numpy(dtype=object, copy=True)  # only these become objects
    cells[missing[at]] = None
    verdicts = _judge(plan, cells)
    bad = ~verdicts.ok
    positions = at[bad]
    fields, codes, messages = verdicts.where[bad], verdicts.codes[bad], verdicts.messages[bad]
    if verdicts.extra:
        extra = np.asarray(verdicts.extra, dtype=object)
        positions = np.concatenate([positions, at[extra[:, 0].astype(np.int64)]])
        fields = np.concatenate([fields, extra[:, 1]])
        codes = np.concatenate([codes, extra[:, 2]])
        messages = np.concatenate([messages, extra[:, 3]])
    return FieldCheck(
        values=_column_values(plan, values, missing, at[verdicts.ok], verdicts.values[verdicts.ok]),
        positions=positions,
        fields=fields,
        codes=codes,
        messages=messages,
    )


def _no_errors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    empty = np.array([], dtype=object)
    return empty, empty, empty
