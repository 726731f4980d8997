"""Streaming CSV reads: chunks of raw text with each row's input position and file line.

:func:`stream_csv` parses with pyarrow's streaming reader (multi-threaded, one block of
``block_size`` bytes at a time), so memory stays flat however large the file is. Every
column is read as text, exactly as the file spells it: the only conversion is that an
empty field (quoted or not) is missing (``NaN``). ``"NA"``, ``"NULL"`` or ``"nan"`` stay
text — they are data until a validation step says otherwise, and a rejected row keeps
what the file said.

Each :class:`CsvChunk` carries the rows' 0-based input positions (the frame's index,
continuing across chunks) and the 1-based file line where each record starts, counted
on the file itself (:mod:`wdh_io.readers._lines`): a quoted field spanning lines or a
blank line makes ``line`` differ from ``position + 2``.

Encoding detection, header normalisation and errors are those of
:func:`~wdh_io.readers.read_csv`, with one difference: nothing is read ahead, so a bad
record (wrong field count, undecodable byte, unterminated quote) raises
:class:`~wdh_io.errors.ReaderError` when the chunk holding it is reached, after the
chunks before it were yielded. Consume the stream inside one transaction (as the
platform's loads do) and such a failure leaves nothing behind.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from wdh_io.errors import ReaderError
from wdh_io.readers._csv import arrow_error, decode_error, inspect_csv
from wdh_io.readers._lines import (
    ExactLineStarts,
    FastLineStarts,
    IrregularQuoting,
    Lines,
    LineStarts,
    fast_path_applies,
)

__all__ = ["DEFAULT_BLOCK_SIZE", "CsvChunk", "stream_csv"]

#: Bytes of the file parsed per chunk: about 60,000 rows of the sample shape.
DEFAULT_BLOCK_SIZE: Final = 4 << 20


@dataclass(frozen=True, slots=True)
class CsvChunk:
    """Consecutive rows of a CSV file.

    ``frame``: the rows, every column text (``str`` dtype; missing = empty field), its
    index the rows' 0-based input positions. ``lines``: for each row, the 1-based line
    of the file where its record starts. ``start``: the position of the first row.
    """

    frame: pd.DataFrame
    lines: Lines
    start: int

    def __len__(self) -> int:
        return len(self.frame)

    def line_of(self, position: int) -> int:
        """The file line of the row at input *position* (a row of this chunk)."""
        offset = position - self.start
        if not 0 <= offset < len(self.lines):
            raise IndexError(
                f"input row {position} is not in this chunk "
                f"(rows {self.start} to {self.start + len(self.lines) - 1})"
            )
        return int(self.lines[offset])


def stream_csv(
    path: str | Path,
    *,
    encoding: str | None = None,
    sep: str = ",",
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[CsvChunk]:
    """Read a CSV file as a stream of :class:`CsvChunk`, in constant memory.

    The file and its header are checked when this is called (missing or empty file,
    encoding, blank or duplicate header names); the records as the chunks are read.

    Args:
        path: the file.
        encoding: ``None`` detects it as :func:`~wdh_io.readers.read_csv` does.
        sep: the field delimiter.
        block_size: bytes parsed per chunk (at least 64 KiB; a record longer than a
            block is an error, as in pyarrow).

    Raises:
        ReaderError: as :func:`~wdh_io.readers.read_csv`; from the iterator, for the
            first bad record reached (naming its line).
    """
    if block_size < 1 << 16:
        raise ValueError(f"block_size must be at least 65536 bytes, got {block_size}")
    file, chosen, raw, names = inspect_csv(path, encoding, sep)
    return _stream(file, chosen, sep, raw, names, block_size)


def _arrow_encoding(encoding: str) -> str:
    """pyarrow decodes UTF-8 natively (and skips a BOM itself); others through Python."""
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


class _Lines:
    """The fast line source, replaced by the exact one from where it gave up."""

    def __init__(self, file: Path, encoding: str, sep: str) -> None:
        self._file, self._encoding, self._sep = file, encoding, sep
        self._source: LineStarts = (
            FastLineStarts(file, sep)
            if fast_path_applies(encoding, sep)
            else ExactLineStarts(file, encoding, sep)
        )

    def take(self, count: int, *, after: int) -> Lines:
        """Start lines of the next *count* records; *after* records were taken before."""
        try:
            return self._source.take(count)
        except IrregularQuoting:
            self._source.close()
            self._source = ExactLineStarts(self._file, self._encoding, self._sep, skip=after)
            return self._source.take(count)

    def close(self) -> None:
        self._source.close()


def _mismatch(file: Path) -> ReaderError:
    return ReaderError(
        "cannot match the file's lines to its records (irregular quoting the line "
        "counter and the parser read differently)",
        path=str(file),
    )


def _stream(  # noqa: PLR0917 - private, called once
    file: Path, encoding: str, sep: str, raw: list[str], names: list[str], block_size: int
) -> Iterator[CsvChunk]:
    read_options = pa_csv.ReadOptions(
        encoding=_arrow_encoding(encoding), block_size=block_size, use_threads=True
    )
    parse_options = pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(raw, pa.string()),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    lines = _Lines(file, encoding, sep)
    position = 0
    try:
        with pa_csv.open_csv(
            str(file),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        ) as reader:
            if reader.schema.names != raw:
                raise ReaderError(
                    "the header parses differently than expected; check its quoting",
                    path=str(file),
                    line=1,
                )
            for batch in reader:
                count = batch.num_rows
                if count == 0:
                    continue
                starts = lines.take(count, after=position)
                if len(starts) != count:
                    raise _mismatch(file)
                frame = batch.rename_columns(names).to_pandas()
                frame.index = pd.RangeIndex(position, position + count)
                yield CsvChunk(frame=frame, lines=starts, start=position)
                position += count
            if len(lines.take(1, after=position)):
                raise _mismatch(file)
    except UnicodeDecodeError as exc:
        raise decode_error(file, encoding) from exc
    except pa.ArrowInvalid as exc:
        raise arrow_error(file, encoding, sep, len(names), exc) from exc
    except csv.Error as exc:
        raise ReaderError(f"malformed CSV: {exc}", path=str(file)) from exc
    finally:
        lines.close()
