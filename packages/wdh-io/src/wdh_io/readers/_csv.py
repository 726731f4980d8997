"""CSV reading for the legacy exports: encodings, clean headers, strict field counts.

Parsing is pandas' C engine (pandas' type inference; measured faster than pandas'
``engine="pyarrow"`` on a 1,000,000-row file on this kind of machine, and it reads in
chunks). Before pandas parses, pyarrow's multi-threaded CSV parser checks every record
for the header's field count — pandas alone silently pads short rows with NaN — while
converting almost nothing (``include_columns`` keeps one column). The check streams,
so chunked reading stays within constant memory.

Failures are :class:`~wdh_io.errors.ReaderError` naming the file and the line: a
missing file, an empty file, an undecodable byte (with the encoding tried and the byte
offset), a record with the wrong number of fields, a blank or duplicate header name.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, overload

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from wdh_io.errors import ReaderError
from wdh_io.readers._encoding import detect_encoding, find_decode_error
from wdh_logging import get_logger

__all__ = [
    "arrow_error",
    "decode_error",
    "find_unterminated_quote",
    "inspect_csv",
    "iter_csv_chunks",
    "normalize_header",
    "read_csv",
    "unterminated_quote_error",
]

_log = get_logger(__name__)

_VALIDATION_BLOCK: Final = 1 << 22
_WHITESPACE: Final = re.compile(r"[\s\u3000\ufeff]+")

DtypeArg = str | type | Mapping[str, Any] | None


def normalize_header(name: str) -> str:
    """Trim a header name: BOM, full-width spaces (U+3000) and runs of whitespace.

    Inner runs of whitespace (full-width included) become one ASCII space:
    ``"\\ufeff 客户　名称 "`` → ``"客户 名称"``.
    """
    return _WHITESPACE.sub(" ", name).strip()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ReaderError("file not found", path=str(path))
    if not path.is_file():
        raise ReaderError("not a regular file", path=str(path))


def _read_header(path: Path, encoding: str, sep: str) -> list[str]:
    with path.open("r", encoding=encoding, newline="") as handle:
        try:
            for row in csv.reader(handle, delimiter=sep):
                if row and any(field.strip() for field in row):
                    return row
        except UnicodeDecodeError as exc:
            raise decode_error(path, encoding) from exc
        except csv.Error as exc:
            raise ReaderError(f"malformed header: {exc}", path=str(path), line=1) from exc
    raise ReaderError("the file is empty (no header line)", path=str(path))


def _normalized_names(path: Path, raw: list[str]) -> list[str]:
    names = [normalize_header(name) for name in raw]
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name:
            raise ReaderError(
                f"header field {position} of {len(names)} is blank", path=str(path), line=1
            )
        if name in seen:
            raise ReaderError(
                f"duplicate header name {name!r} (fields {seen[name]} and {position})",
                path=str(path),
                line=1,
                column=name,
            )
        seen[name] = position
    return names


def decode_error(path: Path, encoding: str) -> ReaderError:
    """The error for a file *encoding* cannot decode, naming the byte offset and line."""
    location = find_decode_error(path, encoding)
    if location is None:  # pragma: no cover - the decoder failed, so the scan finds it
        return ReaderError(f"cannot decode the file as {encoding}", path=str(path))
    return ReaderError(
        f"cannot decode byte offset {location.offset} as {encoding} ({location.reason}); "
        "pass encoding= if the file uses another one",
        path=str(path),
        line=location.line,
    )


def _ragged_record_error(path: Path, encoding: str, sep: str, expected: int) -> ReaderError | None:
    """The error for the first record whose field count differs, or ``None``.

    The slow path, only run after pyarrow's check failed.
    """
    with path.open("r", encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        header_seen = False
        for row in reader:
            if not row or (not any(row) and len(row) == 1):
                continue  # blank line: pandas and pyarrow skip it as well
            if not header_seen:
                header_seen = True
                continue
            if len(row) != expected:
                return ReaderError(
                    f"expected {expected} fields like the header, found {len(row)}",
                    path=str(path),
                    line=reader.line_num,
                )
    return None


def _unterminated_quote_line(path: Path, encoding: str) -> int | None:
    """The line where a quoted field that is never closed starts, or ``None``.

    Every ``"`` toggles "inside quotes" (an escaped ``""`` toggles twice); an opening
    quote is one that enters quotes not straight after another ``"``.
    """
    inside = False
    opened_at: int | None = None
    line = 1
    previous = ""
    with path.open("r", encoding=encoding, newline="") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), ""):
            for char in chunk:
                if char == '"':
                    inside = not inside
                    if inside and previous != '"':
                        opened_at = line
                elif char == "\n":
                    line += 1
                previous = char
    return opened_at if inside else None


def _unterminated_quote_error(path: Path, encoding: str) -> ReaderError | None:
    """The error for a quoted field never closed (naming where it opens), or ``None``."""
    line = _unterminated_quote_line(path, encoding)
    if line is None:
        return None
    return ReaderError(
        "unterminated quoted field: no closing quote before the end of the file",
        path=str(path),
        line=line,
    )


def _validate_field_counts(path: Path, encoding: str, sep: str, expected: int) -> None:
    """Stream the file through pyarrow's parser; raise on the first ragged record."""
    read_options = pa_csv.ReadOptions(
        encoding=encoding, autogenerate_column_names=True, block_size=_VALIDATION_BLOCK
    )
    parse_options = pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        include_columns=["f0"], column_types={"f0": pa.string()}
    )
    try:
        with pa_csv.open_csv(
            str(path),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        ) as reader:
            for _batch in reader:
                pass
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding) from exc
    except pa.ArrowInvalid as exc:
        raise arrow_error(path, encoding, sep, expected, exc) from exc


def arrow_error(
    path: Path, encoding: str, sep: str, expected: int, exc: pa.ArrowInvalid
) -> ReaderError:
    """The :class:`ReaderError` for pyarrow's parse failure *exc*, located by line.

    Tried in order: invalid UTF-8 (pyarrow's own decoder), an unterminated quote, a
    record with the wrong field count; else pyarrow's verdict without the row's text.
    """
    if "UTF8" in str(exc) or "UTF-8" in str(exc):
        return decode_error(path, encoding)
    located = _unterminated_quote_error(path, encoding) or _ragged_record_error(
        path, encoding, sep, expected
    )
    if located is not None:
        return located
    verdict = str(exc).split(":", 2)
    return ReaderError(f"malformed CSV: {':'.join(verdict[:2]).strip()}", path=str(path))


def _pandas_reader(
    path: Path, *, encoding: str, sep: str, names: list[str], dtype: DtypeArg, chunksize: int | None
) -> Any:
    return pd.read_csv(
        path,
        sep=sep,
        encoding=encoding,
        header=0,
        names=names,
        dtype=dtype,
        chunksize=chunksize,
        engine="c",
        on_bad_lines="error",
    )


def _prepare(path: str | Path, encoding: str | None, sep: str) -> tuple[Path, str, list[str]]:
    file, chosen, _raw, names = inspect_csv(path, encoding, sep)
    _validate_field_counts(file, chosen, sep, len(names))
    return file, chosen, names


def inspect_csv(
    path: str | Path, encoding: str | None, sep: str
) -> tuple[Path, str, list[str], list[str]]:
    """Check the file and its header: (file, encoding, raw header, normalised header).

    Detects and logs the encoding when *encoding* is ``None``. Reads only the header
    (and, for detection, streams the bytes); the records are not checked here.
    """
    file = Path(path)
    _check_file(file)
    if file.stat().st_size == 0:
        raise ReaderError("the file is empty", path=str(file))
    chosen = encoding or detect_encoding(file)
    if encoding is None:
        # Say what was guessed. GB18030 decodes almost any byte sequence, so a file in
        # another legacy encoding (Latin-1, Big5...) would be "read" as GB18030 silently.
        note = (
            "not UTF-8: read as GB18030 (GBK); pass encoding= if the file uses another one"
            if chosen == "gb18030"
            else None
        )
        _log.info("reader.encoding.detected", path=str(file), encoding=chosen, note=note)
    try:
        "".encode(chosen)
    except LookupError:
        raise ReaderError(f"unknown encoding {chosen!r}", path=str(file)) from None
    raw = _read_header(file, chosen, sep)
    return file, chosen, raw, _normalized_names(file, raw)


def _translate_pandas_error(file: Path, encoding: str, exc: Exception) -> ReaderError:
    if isinstance(exc, UnicodeDecodeError):
        return decode_error(file, encoding)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "EOF inside string" in first:  # pandas counts records, not lines: find the line
        unterminated = _unterminated_quote_error(file, encoding)
        if unterminated is not None:
            return unterminated
    match = re.search(r"line (\d+)", first)
    return ReaderError(
        f"cannot parse the CSV: {first}", path=str(file), line=int(match[1]) if match else None
    )


@overload
def read_csv(
    path: str | Path,
    *,
    encoding: str | None = ...,
    sep: str = ...,
    dtype: DtypeArg = ...,
    chunksize: None = ...,
) -> pd.DataFrame: ...


@overload
def read_csv(
    path: str | Path,
    *,
    encoding: str | None = ...,
    sep: str = ...,
    dtype: DtypeArg = ...,
    chunksize: int,
) -> Iterator[pd.DataFrame]: ...


def read_csv(
    path: str | Path,
    *,
    encoding: str | None = None,
    sep: str = ",",
    dtype: DtypeArg = None,
    chunksize: int | None = None,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read a CSV file into a DataFrame (or, with *chunksize*, an iterator of them).

    Args:
        path: the file.
        encoding: ``None`` detects it (UTF-8, UTF-8 with BOM, UTF-16/32 with BOM,
            else GB18030, which reads GBK); or any Python codec name.
        sep: the field delimiter.
        dtype: as for :func:`pandas.read_csv`, keyed by the *normalised* header names.
        chunksize: rows per DataFrame; see :func:`iter_csv_chunks`.

    Header names are normalised with :func:`normalize_header`. Every record is
    checked to have exactly the header's number of fields before any row is returned.

    Raises:
        ReaderError: the file is missing or empty, a byte cannot be decoded (message:
            the encoding and byte offset; ``line``), a record has too few or too many
            fields (``line``), a header name is blank or duplicated, or pandas cannot
            parse it (unterminated quote, a value not matching *dtype*).
    """
    if chunksize is not None:
        return iter_csv_chunks(path, chunksize=chunksize, encoding=encoding, sep=sep, dtype=dtype)
    file, chosen, names = _prepare(path, encoding, sep)
    try:
        frame: pd.DataFrame = _pandas_reader(
            file, encoding=chosen, sep=sep, names=names, dtype=dtype, chunksize=None
        )
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise _translate_pandas_error(file, chosen, exc) from exc
    return frame


def iter_csv_chunks(
    path: str | Path,
    *,
    chunksize: int,
    encoding: str | None = None,
    sep: str = ",",
    dtype: DtypeArg = None,
) -> Iterator[pd.DataFrame]:
    """Read a CSV file in DataFrames of at most *chunksize* rows, in constant memory.

    Same rules and errors as :func:`read_csv`. The whole file is validated (field
    counts, decoding) when the iterator is created, before the first chunk, so a bad
    record at the end of the file fails before any chunk was processed. Types are
    inferred per chunk unless *dtype* fixes them.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}")
    file, chosen, names = _prepare(path, encoding, sep)
    return _chunks(file, encoding=chosen, sep=sep, names=names, dtype=dtype, chunksize=chunksize)


def _chunks(
    file: Path, *, encoding: str, sep: str, names: list[str], dtype: DtypeArg, chunksize: int
) -> Iterator[pd.DataFrame]:
    try:
        with _pandas_reader(
            file, encoding=encoding, sep=sep, names=names, dtype=dtype, chunksize=chunksize
        ) as reader:
            yield from reader
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise _translate_pandas_error(file, encoding, exc) from exc


def find_unterminated_quote(path: Path, encoding: str) -> ReaderError | None:
    """The error for a quoted field never closed, or ``None`` (counting every quote)."""
    return _unterminated_quote_error(path, encoding)


def unterminated_quote_error(path: Path, encoding: str) -> ReaderError:
    """The error for a file that ends inside a quoted field, naming where it opens."""
    return _unterminated_quote_error(path, encoding) or ReaderError(
        "unterminated quoted field: no closing quote before the end of the file",
        path=str(path),
    )
