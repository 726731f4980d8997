"""Value preparation shared by both load paths: validate once, convert for each path.

``prepare_frame`` checks the projected frame against the target columns and normalises it,
so that the COPY path and the generic path see the same values and fail on the same rows:

* NaN, NaT, None and ``pd.NA`` are NULL;
* text must not contain NUL bytes (PostgreSQL cannot store them) and must fit ``varchar(n)``;
* floats must be finite (infinity is rejected for every column kind);
* integer columns get whole numbers inside the column's range (a float column holding
  ``3.0`` is fine, ``3.5`` is an error instead of PostgreSQL's silent rounding);
* ``numeric(p, s)`` values must fit the column's integer digits;
* timestamps mean one instant whatever the session ``TimeZone``: naive values are UTC;
  for ``timestamp without time zone`` columns tz-aware values are converted to UTC wall
  time, for ``timestamptz`` columns naive values are marked UTC. This holds for
  ``datetime64`` columns and for Python ``datetime`` objects in object columns alike;
  ``datetime`` objects bound for a ``date`` column keep the date as written.

Row numbers in messages are 0-based positions in the frame (``df.iloc[row]``); a message
names the column and the first offending row, never a value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from wdh_io.errors import DataValidationError
from wdh_io.loader._text_forms import TextFormError, is_null, to_text_column

__all__ = [
    "TEXT_FORM_KINDS",
    "ColumnKind",
    "ColumnSpec",
    "column_spec",
    "duplicate_keys_error",
    "prepare_frame",
    "python_rows",
    "to_arrow",
]

_MAX_ROWS_LISTED = 10


class ColumnKind(enum.Enum):
    """What the loader needs to know about a target column's type."""

    INTEGER = "integer"
    FLOAT = "float"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    JSON = "json"
    BYTEA = "bytea"
    UUID = "uuid"
    ARRAY = "array"
    INTERVAL = "interval"
    OTHER = "other"


#: Kinds sent as one text form on both paths (see ``_text_forms``).
TEXT_FORM_KINDS = frozenset(
    {ColumnKind.JSON, ColumnKind.BYTEA, ColumnKind.UUID, ColumnKind.ARRAY, ColumnKind.INTERVAL}
)


@dataclass(frozen=True)
class ColumnSpec:
    """A reflected target column: name, kind, nullability and size limits."""

    name: str
    kind: ColumnKind
    nullable: bool
    max_length: int | None = None
    int_range: tuple[int, int] | None = None
    #: ``10 ** (precision - scale)`` for ``numeric(p, s)``: values must be below it.
    numeric_limit: int | None = None
    #: A ``timestamptz`` column whose default is the transaction's timestamp (``now()``,
    #: ``CURRENT_TIMESTAMP``, ``transaction_timestamp()``).
    defaults_to_now: bool = False


#: Server defaults (as PostgreSQL prints them, lowercased) that give the transaction's
#: timestamp: the same instant for every row the transaction writes.
_NOW_DEFAULTS = frozenset({"now()", "current_timestamp", "transaction_timestamp()"})


def _defaults_to_now(column: sa.Column[Any]) -> bool:
    default = column.server_default
    text = getattr(getattr(default, "arg", None), "text", None)
    return isinstance(text, str) and text.strip().lower() in _NOW_DEFAULTS


def column_spec(column: sa.Column[Any], dialect_name: str) -> ColumnSpec:  # noqa: PLR0911, PLR0912
    """Classify a reflected column."""
    type_ = column.type
    nullable = bool(column.nullable)
    name = str(column.name)
    if isinstance(type_, sa.Integer):
        bits = 64
        if dialect_name != "sqlite":  # SQLite integers are always 64-bit
            if isinstance(type_, sa.SmallInteger):
                bits = 16
            elif not isinstance(type_, sa.BigInteger):
                bits = 32
        bound = 2 ** (bits - 1)
        return ColumnSpec(name, ColumnKind.INTEGER, nullable, int_range=(-bound, bound - 1))
    if isinstance(type_, sa.Float):
        return ColumnSpec(name, ColumnKind.FLOAT, nullable)
    if isinstance(type_, sa.Numeric):
        limit = None
        if type_.precision is not None:
            limit = 10 ** (type_.precision - (type_.scale or 0))
        return ColumnSpec(name, ColumnKind.NUMERIC, nullable, numeric_limit=limit)
    if isinstance(type_, sa.Boolean):
        return ColumnSpec(name, ColumnKind.BOOLEAN, nullable)
    if isinstance(type_, sa.DateTime):
        if type_.timezone:
            return ColumnSpec(
                name, ColumnKind.TIMESTAMPTZ, nullable, defaults_to_now=_defaults_to_now(column)
            )
        return ColumnSpec(name, ColumnKind.TIMESTAMP, nullable)
    if isinstance(type_, sa.Date):
        return ColumnSpec(name, ColumnKind.DATE, nullable)
    if isinstance(type_, sa.String):
        return ColumnSpec(name, ColumnKind.TEXT, nullable, max_length=type_.length)
    for sa_type, kind in _TEXT_FORM_TYPES:
        if isinstance(type_, sa_type):
            return ColumnSpec(name, kind, nullable)
    return ColumnSpec(name, ColumnKind.OTHER, nullable)


_TEXT_FORM_TYPES: tuple[tuple[type[Any], ColumnKind], ...] = (
    (sa.JSON, ColumnKind.JSON),
    (sa.LargeBinary, ColumnKind.BYTEA),
    (sa.Uuid, ColumnKind.UUID),
    (sa.ARRAY, ColumnKind.ARRAY),
    (sa.Interval, ColumnKind.INTERVAL),
    (postgresql.INTERVAL, ColumnKind.INTERVAL),
)


class _Where:
    """Where a frame lives, for error messages."""

    def __init__(self, table: str, schema: str | None) -> None:
        self.table = table
        self.schema = schema

    def fail(self, message: str, *, column: str | None, positions: np.ndarray[Any, Any]) -> None:
        first = int(positions[0])
        count = len(positions)
        if count > 1:
            message = f"{message} ({count} rows, first shown)"
        raise DataValidationError(
            message, table=self.table, schema=self.schema, column=column, row=first
        )


def _positions(
    mask: pd.Series | np.ndarray[Any, Any] | pa.Array | pa.ChunkedArray,
) -> np.ndarray[Any, Any]:
    if isinstance(mask, pa.Array | pa.ChunkedArray):
        values = mask.fill_null(False).to_numpy(zero_copy_only=False)
    elif isinstance(mask, pd.Series):
        values = mask.to_numpy(dtype=bool, na_value=False)
    else:
        values = mask
    return np.flatnonzero(values)


def _is_float_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(series.dtype)


def _arrow_type(series: pd.Series) -> pa.DataType | None:
    dtype = series.dtype
    return dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else None


def _is_text_dtype(series: pd.Series) -> bool:
    """pandas ``string``/``str`` dtype, or an Arrow-backed string column."""
    if isinstance(series.dtype, pd.StringDtype):
        return True
    arrow = _arrow_type(series)
    return arrow is not None and (pa.types.is_string(arrow) or pa.types.is_large_string(arrow))


def _object_positions(series: pd.Series, predicate: Any) -> np.ndarray[Any, Any]:
    flags = np.fromiter(
        (predicate(v) for v in series.to_numpy(dtype=object)), dtype=bool, count=len(series)
    )
    return np.flatnonzero(flags)


def _is_infinite(value: object) -> bool:
    if isinstance(value, float | np.floating):
        return math.isinf(value)
    if isinstance(value, decimal.Decimal):
        return value.is_infinite()
    return False


def _has_nul(value: object) -> bool:
    return isinstance(value, str) and "\x00" in value


#: ``infer_dtype`` results whose object columns become Arrow columns in one C-level pass.
_ARROW_INFERRED = {"string": pa.large_string(), "date": pa.date32()}


def _arrowize(series: pd.Series) -> pd.Series:
    """An object column of one plain type (``str``, ``date``) as an Arrow column.

    The checks then run column-wise (pyarrow compute) and COPY reuses the Arrow data
    instead of converting cell by cell; the generic path reads the same values back.
    """
    if series.dtype != object:
        return series
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred not in _ARROW_INFERRED:
        return series
    try:
        array = pa.array(series, type=_ARROW_INFERRED[inferred], from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return series
    return pd.Series(
        pd.arrays.ArrowExtensionArray(array), index=series.index, name=series.name, copy=False
    )


_NULL_TEXTS = pa.array(["None", "nan", "<NA>", "NaT"], type=pa.large_string())


def _decimal_text(series: pd.Series, spec: ColumnSpec, where: _Where) -> pd.Series | None:
    """An object column of ``Decimal`` values for a numeric column, as their text.

    ``str(Decimal)`` is exact and is what PostgreSQL parses (on both paths), and one
    ``str`` per cell is several times cheaper than Arrow's ``Decimal`` conversion. The
    checks then run on the text column-wise: ``NaN`` becomes NULL, infinity is refused,
    and the magnitude is checked on a float image of the column (only values within
    rounding distance of the limit are checked exactly). ``None`` when the column holds
    anything but ``Decimal`` values and NULLs.
    """
    if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) != "decimal":
        return None
    # Every non-NULL cell is a Decimal: one map(str), the cheapest per-cell step there
    # is; NULLs (None, NaN, pd.NA, NaT) and Decimal NaN are then found in the text
    # column-wise, as no Decimal's text reads "None", "nan", "<NA>" or "NaT".
    texts = pa.array(list(map(str, series.to_numpy(dtype=object))), type=pa.large_string())
    infinite = pc.ends_with(texts, "Infinity")
    bad = _positions(infinite)
    if len(bad):
        where.fail("infinity cannot be stored", column=spec.name, positions=bad)
    nulls = pc.or_(pc.is_in(texts, value_set=_NULL_TEXTS), pc.ends_with(texts, "NaN"))
    if pc.any(nulls).as_py():
        texts = pc.if_else(nulls, pa.scalar(None, pa.large_string()), texts)
    limit = spec.numeric_limit
    if limit is not None:
        magnitude = pc.abs(pc.cast(texts, pa.float64()))
        near = _positions(pc.greater_equal(magnitude, float(limit) * (1 - 1e-9)))
        exact = [int(p) for p in near if abs(decimal.Decimal(texts[int(p)].as_py())) >= limit]
        if exact:
            where.fail(
                f"numeric value too large for the column (must be below {limit} in magnitude)",
                column=spec.name,
                positions=np.array(exact),
            )
    return pd.Series(
        pd.arrays.ArrowExtensionArray(texts), index=series.index, name=series.name, copy=False
    )


def _may_hold_nul(array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any string data buffer holds a zero byte (a scan at memory speed; a hit
    outside the values of a sliced array only costs the exact per-value check)."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    for chunk in chunks:
        data = chunk.buffers()[2] if len(chunk.buffers()) > 2 else None
        if data is not None and data.size and np.frombuffer(data, dtype=np.uint8).min() == 0:
            return True
    return False


def _check_common(series: pd.Series, name: str, where: _Where) -> None:
    """Checks that hold for every column kind: no infinity, no NUL byte."""
    if _is_float_dtype(series):
        bad = _positions(np.isinf(series.to_numpy(dtype=np.float64, na_value=np.nan)))
        if len(bad):
            where.fail("infinity cannot be stored", column=name, positions=bad)
    elif _is_text_dtype(series):
        array = pa.array(series, from_pandas=True)
        if _may_hold_nul(array):
            bad = _positions(pc.match_substring(array, "\x00"))
            if len(bad):
                where.fail("text contains a NUL byte (\\x00)", column=name, positions=bad)
    elif series.dtype == object:
        bad = _object_positions(series, _is_infinite)
        if len(bad):
            where.fail("infinity cannot be stored", column=name, positions=bad)
        bad = _object_positions(series, _has_nul)
        if len(bad):
            where.fail("text contains a NUL byte (\\x00)", column=name, positions=bad)


def _without_negative_zero(series: pd.Series) -> pd.Series:
    """``-0.0`` as ``0.0`` (equal numbers): the generic path's bound ``-0.0`` is read as
    numeric and loses its sign, so COPY must not keep it either."""
    if not _is_float_dtype(series):
        return series
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not (np.signbit(values) & (values == 0)).any():
        return series
    return series + 0.0  # -0.0 + 0.0 == +0.0; everything else unchanged


def _check_text(series: pd.Series, spec: ColumnSpec, where: _Where) -> None:
    limit = spec.max_length
    if limit is None:
        return
    if _is_text_dtype(series):
        array = pa.array(series, from_pandas=True)
        longest = pc.max(pc.binary_length(array)).as_py()
        if longest is None or longest <= limit:
            return  # no value has more bytes than the limit, so none has more characters
        bad = _positions(pc.greater(pc.utf8_length(array), limit))
    elif series.dtype == object:
        bad = _object_positions(series, lambda v: isinstance(v, str) and len(v) > limit)
    else:
        return
    if len(bad):
        where.fail(
            f"text longer than the column's {limit} characters", column=spec.name, positions=bad
        )


def _whole_objects(series: pd.Series, spec: ColumnSpec, where: _Where) -> pd.Series:
    """An object column of numbers for an integer column: ``Decimal`` and float values
    must be whole (``3.5`` is refused on both paths, never rounded) and become ``int``."""
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("integer", "empty", "boolean"):
        return series

    def not_whole(value: object) -> bool:
        if isinstance(value, float | np.floating | decimal.Decimal) and not is_null(value):
            number = decimal.Decimal(str(value))
            return number != number.to_integral_value()
        return False

    bad = _object_positions(series, not_whole)
    if len(bad):
        where.fail("not a whole number for an integer column", column=spec.name, positions=bad)
    return pd.Series(
        [
            int(v) if isinstance(v, float | np.floating | decimal.Decimal) and not is_null(v) else v
            for v in series.to_numpy(dtype=object)
        ],
        index=series.index,
        dtype=object,
        name=series.name,
    )


def _to_integer(series: pd.Series, spec: ColumnSpec, where: _Where) -> pd.Series:
    if _is_float_dtype(series):
        values = series.astype("Float64")
        bad = _positions(values.notna() & (values != values.round()))
        if len(bad):
            where.fail("not a whole number for an integer column", column=spec.name, positions=bad)
        series = values.astype("Int64")
    elif series.dtype == object:
        series = _whole_objects(series, spec, where)
    if spec.int_range is None:
        return series
    low, high = spec.int_range
    if pd.api.types.is_integer_dtype(series.dtype):
        bad = _positions((series < low) | (series > high))
    elif series.dtype == object:
        bad = _object_positions(
            series,
            lambda v: isinstance(v, int | np.integer) and not low <= int(v) <= high,
        )
    else:
        return series
    if len(bad):
        where.fail(
            f"integer out of range for the column ({low} to {high})",
            column=spec.name,
            positions=bad,
        )
    return series


def _check_numeric(series: pd.Series, spec: ColumnSpec, where: _Where) -> None:
    limit = spec.numeric_limit
    if limit is None:
        return
    arrow = _arrow_type(series)
    if _is_float_dtype(series) or pd.api.types.is_integer_dtype(series.dtype):
        bad = _positions(series.abs() >= limit)
    elif arrow is not None and pa.types.is_decimal(arrow):
        magnitude = pc.abs(pa.array(series, from_pandas=True))
        bad = _positions(pc.greater_equal(magnitude, pa.scalar(decimal.Decimal(limit))))
    elif series.dtype == object:

        def too_big(value: object) -> bool:
            if isinstance(value, decimal.Decimal | int | float | np.number) and not isinstance(
                value, bool
            ):
                number = decimal.Decimal(str(value))
                return number.is_finite() and abs(number) >= limit
            return False

        bad = _object_positions(series, too_big)
    else:
        return
    if len(bad):
        where.fail(
            f"numeric value too large for the column (must be below {limit} in magnitude)",
            column=spec.name,
            positions=bad,
        )


#: The last instant PostgreSQL's input and Python's ``datetime`` share.
_LAST_MOMENT = np.datetime64("9999-12-31T23:59:59.999999", "us")


def _check_year(series: pd.Series, spec: ColumnSpec, where: _Where) -> None:
    """``datetime64`` values after year 9999 (possible in ``s``/``ms``/``us`` units) have
    no Python ``datetime``: refused on both paths instead of failing in the driver."""
    if not isinstance(series.dtype, np.dtypes.DateTime64DType) or series.dt.unit == "ns":
        return
    values = series.to_numpy()
    bad = _positions(~np.isnat(values) & (values > _LAST_MOMENT))
    if len(bad):
        where.fail("timestamp after the year 9999", column=spec.name, positions=bad)


def _normalise_object_moment(value: object, kind: ColumnKind) -> object:
    """One Python ``datetime`` of an object column, made to mean one instant (see module)."""
    if not isinstance(value, dt.datetime):
        return value  # date, text, NULL...: left to the column type
    if kind is ColumnKind.DATE:
        return value.date()  # the date as written, on both paths
    aware = value.tzinfo is not None and value.utcoffset() is not None
    if kind is ColumnKind.TIMESTAMPTZ:
        return value.astimezone(dt.UTC) if aware else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(tzinfo=None) if aware else value


def _normalise_object_timestamps(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Python ``datetime`` objects in an object column (rows from pydantic models, say).

    Without this the generic path would bind naive values as they are (PostgreSQL then
    reads them in the session ``TimeZone``) while COPY reads them as UTC: naive values
    are UTC, aware ones are converted, exactly as for ``datetime64`` columns.
    """
    if pd.api.types.infer_dtype(series, skipna=True) in ("date", "string", "empty"):
        return series  # no datetime objects (checked in C, not cell by cell)
    values = series.to_numpy(dtype=object)
    if not any(isinstance(value, dt.datetime) for value in values):
        return series
    normalised = [_normalise_object_moment(value, spec.kind) for value in values]
    return pd.Series(normalised, index=series.index, dtype=object, name=series.name)


def _normalise_timestamps(series: pd.Series, spec: ColumnSpec, where: _Where) -> pd.Series:
    if series.dtype == object:
        return _normalise_object_timestamps(series, spec)
    if not isinstance(series.dtype, pd.DatetimeTZDtype | np.dtypes.DateTime64DType):
        return series
    _check_year(series, spec, where)
    aware = isinstance(series.dtype, pd.DatetimeTZDtype)
    if spec.kind is ColumnKind.TIMESTAMPTZ:
        series = series.dt.tz_convert("UTC") if aware else series.dt.tz_localize("UTC")
    elif spec.kind is ColumnKind.TIMESTAMP and aware:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if series.dt.unit == "ns":  # PostgreSQL stores microseconds; cut the same way on both paths
        series = series.dt.floor("us").dt.as_unit("us")
    return series


def _to_text_form(series: pd.Series, spec: ColumnSpec, where: _Where) -> pd.Series:
    try:
        return to_text_column(series, spec.kind.value)
    except TextFormError as exc:
        where.fail(
            f"value cannot be stored in a {spec.kind.value} column: {exc}",
            column=spec.name,
            positions=np.array([exc.position]),
        )
        raise  # unreachable: fail() raises


def _check_upsert_keys(
    frame: pd.DataFrame, keys: Sequence[str], where: _Where, *, name_labels: bool
) -> None:
    for key in keys:
        bad = _positions(frame[key].isna())
        if len(bad):
            where.fail("upsert key is empty (NULL)", column=key, positions=bad)
    duplicated = frame.duplicated(subset=list(keys), keep=False)
    positions = _positions(duplicated)
    if len(positions):
        labels = None
        if name_labels:
            labels = [
                label.item() if isinstance(label, np.generic) else label
                for label in frame.index[positions[:_MAX_ROWS_LISTED]]
            ]
        raise duplicate_keys_error(positions, keys, where.table, where.schema, labels=labels)


def duplicate_keys_error(
    positions: Sequence[int] | np.ndarray[Any, Any],
    keys: Sequence[str],
    table: str,
    schema: str | None,
    *,
    labels: Sequence[Hashable] | None = None,
) -> DataValidationError:
    """The error for rows (0-based positions, ascending) that share an upsert key.

    With *labels* (the rows' index labels, for a load fed in chunks) the message lists
    the labels and the error's ``index`` is the first one.
    """
    shown = positions[:_MAX_ROWS_LISTED]
    more = "" if len(positions) <= _MAX_ROWS_LISTED else ", …"
    if labels is None:
        rows = "rows " + ", ".join(str(int(p)) for p in shown)
    else:
        listed = ", ".join(str(label) for label in labels[:_MAX_ROWS_LISTED])
        rows = f"rows with index labels {listed}"
    error = DataValidationError(
        f"duplicate upsert keys within one load: {rows}{more} share a key "
        f"(columns {', '.join(keys)}); each key may appear once per load",
        table=table,
        schema=schema,
        column=keys[0] if len(keys) == 1 else None,
        row=int(positions[0]),
    )
    if labels:
        error.name_index_label(labels[0])
    return error


def prepare_frame(
    frame: pd.DataFrame,
    specs: Sequence[ColumnSpec],
    *,
    table: str,
    schema: str | None,
    upsert_keys: Sequence[str] = (),
    name_labels: bool = False,
) -> pd.DataFrame:
    """Validate ``frame`` (already projected onto ``specs``) and return it normalised.

    Raises :class:`~wdh_io.errors.DataValidationError` naming the column and first
    offending row (rows sharing a key by their index labels with ``name_labels``).
    Columns that need no change are shared with ``frame`` (no copy).
    """
    where = _Where(table, schema)
    changed: dict[str, pd.Series] = {}
    for spec in specs:
        original = frame[spec.name]
        series = original
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(series.cat.categories.dtype)
        if spec.kind in TEXT_FORM_KINDS:
            series = _to_text_form(series, spec, where)
        elif spec.kind is ColumnKind.NUMERIC:
            as_text = _decimal_text(series, spec, where)
            if as_text is not None:  # checked already
                changed[spec.name] = as_text
                continue
        elif spec.kind in (ColumnKind.TEXT, ColumnKind.DATE):
            series = _arrowize(series)
        _check_common(series, spec.name, where)
        series = _without_negative_zero(series)
        if spec.kind is ColumnKind.TEXT:
            _check_text(series, spec, where)
        elif spec.kind is ColumnKind.INTEGER:
            series = _to_integer(series, spec, where)
        elif spec.kind is ColumnKind.NUMERIC:
            _check_numeric(series, spec, where)
        elif spec.kind in (ColumnKind.TIMESTAMP, ColumnKind.TIMESTAMPTZ, ColumnKind.DATE):
            series = _normalise_timestamps(series, spec, where)
        if series is not original:
            changed[spec.name] = series
    prepared = frame.assign(**changed) if changed else frame
    if upsert_keys:
        _check_upsert_keys(prepared, upsert_keys, where, name_labels=name_labels)
    return prepared


# --------------------------------------------------------------------------- generic path


def _python_value(value: object, kind: ColumnKind) -> object:  # noqa: PLR0911
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, decimal.Decimal) and value.is_nan():
        return None  # as on the COPY path (and as pandas' isna sees it)
    if isinstance(value, pd.Timestamp):
        moment = value.to_pydatetime()
        return moment.date() if kind is ColumnKind.DATE else moment
    if isinstance(value, np.generic):
        if isinstance(value, np.floating) and math.isnan(value):
            return None
        if isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value):
            return None
        if isinstance(value, np.datetime64):
            return pd.Timestamp(value).to_pydatetime()
        if isinstance(value, np.timedelta64):
            return pd.Timedelta(value).to_pytimedelta()
        return value.item()
    if kind is ColumnKind.DATE and isinstance(value, dt.datetime):
        return value.date()
    return value


def python_rows(
    frame: pd.DataFrame, specs: Sequence[ColumnSpec], start: int, stop: int
) -> list[dict[str, Any]]:
    """Rows ``start:stop`` of a prepared frame as dicts of plain Python values (NULL = None)."""
    block = frame.iloc[start:stop]
    columns: list[Iterable[object]] = []
    for spec in specs:
        kind = spec.kind
        values = block[spec.name].astype(object).tolist()
        columns.append([_python_value(v, kind) for v in values])
    names = [spec.name for spec in specs]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


# --------------------------------------------------------------------------- COPY path


def _csv_writable(type_: pa.DataType) -> bool:
    """Types Arrow's CSV writer renders as PostgreSQL reads them (no nested, binary,
    duration or extension types: those go as their Python text form)."""
    return not (
        pa.types.is_nested(type_)
        or pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
        or pa.types.is_fixed_size_binary(type_)
        or pa.types.is_duration(type_)
        or isinstance(type_, pa.ExtensionType)
    )


def _text_fallback(series: pd.Series, spec: ColumnSpec) -> pa.Array:
    """Mixed Python objects: their text form; PostgreSQL parses it per column type."""
    texts = [
        None if (v := _python_value(raw, spec.kind)) is None else str(v)
        for raw in series.astype(object).tolist()
    ]
    return pa.array(texts, type=pa.large_string())


def _arrow_column(series: pd.Series, spec: ColumnSpec) -> pa.Array | pa.ChunkedArray:
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return _text_fallback(series, spec)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not _csv_writable(array.type):
        return _text_fallback(series, spec)
    if pa.types.is_timestamp(array.type):
        if spec.kind is ColumnKind.DATE:
            array = array.cast(pa.date32(), safe=False)
        elif array.type.tz is not None:
            # Prepared timestamptz values are UTC. Arrow's CSV writer is ~40x slower for
            # tz-aware timestamps, so they are written as UTC wall time; the COPY path
            # sets the transaction's TimeZone to UTC while it streams them.
            array = array.cast(pa.timestamp(array.type.unit))
    return array


def to_arrow(frame: pd.DataFrame, specs: Sequence[ColumnSpec]) -> pa.Table:
    """A prepared frame (or a slice of it) as an Arrow table in ``specs`` order.

    Timestamps come out without a zone, as UTC wall time: read them with the session
    ``TimeZone`` set to UTC.
    """
    return pa.table(
        {f"c{i}": _arrow_column(frame[spec.name], spec) for i, spec in enumerate(specs)}
    )
