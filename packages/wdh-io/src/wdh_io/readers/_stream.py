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
import io
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from wdh_io.errors import ReaderError
from wdh_io.readers._csv import (
    arrow_error,
    decode_error,
    find_unterminated_quote,
    inspect_csv,
    unterminated_quote_error,
)
from wdh_io.readers._lines import (
    ExactLineStarts,
    FastScanner,
    IrregularQuoting,
    Lines,
    UnterminatedQuote,
    fast_path_applies,
)
from wdh_io.readers._prefetch import prefetched

__all__ = ["DEFAULT_BLOCK_SIZE", "CsvChunk", "stream_csv"]

#: Bytes of the file parsed per chunk: about 60,000 rows of the sample shape.
DEFAULT_BLOCK_SIZE: Final = 4 << 20
_MIN_BLOCK_SIZE: Final = 1 << 10


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
    read_ahead: int = 1,
) -> Generator[CsvChunk]:
    """Read a CSV file as a stream of :class:`CsvChunk`, in constant memory.

    Close the generator (or leave a ``for`` loop over it) to stop reading early.

    The file and its header are checked when this is called (missing or empty file,
    encoding, blank or duplicate header names); the records as the chunks are read.

    Args:
        path: the file.
        encoding: ``None`` detects it as :func:`~wdh_io.readers.read_csv` does.
        sep: the field delimiter.
        block_size: bytes parsed per chunk (at least 1 KiB; a record longer than a
            block is an error, as in pyarrow). Where the file is scanned by this
            module (UTF-8 and other ASCII-compatible encodings, regular quoting), the
            first chunk is a quarter of that, so that the work on the chunks starts
            sooner.
        read_ahead: chunks read ahead by a background thread while the caller works on
            the current one (``0``: none, everything in the caller's thread). Memory
            grows by that many chunks.

    Raises:
        ReaderError: as :func:`~wdh_io.readers.read_csv`; from the iterator, for the
            first bad record reached (naming its line).
    """
    if block_size < _MIN_BLOCK_SIZE:
        raise ValueError(f"block_size must be at least {_MIN_BLOCK_SIZE} bytes, got {block_size}")
    if read_ahead < 0:
        raise ValueError(f"read_ahead must not be negative, got {read_ahead}")
    file, chosen, raw, names = inspect_csv(path, encoding, sep)
    chunks = _stream(_Plan(file, chosen, sep, raw, names, block_size))
    return prefetched(chunks, read_ahead) if read_ahead else chunks


def _arrow_encoding(encoding: str) -> str:
    """pyarrow decodes UTF-8 natively (and skips a BOM itself); others through Python."""
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


@dataclass(frozen=True, slots=True)
class _Plan:
    """One file's reading settings."""

    file: Path
    encoding: str
    sep: str
    raw: list[str]
    names: list[str]
    block_size: int

    def parse_options(self) -> pa_csv.ParseOptions:
        return pa_csv.ParseOptions(delimiter=self.sep, newlines_in_values=True)

    def convert_options(self) -> pa_csv.ConvertOptions:
        return pa_csv.ConvertOptions(
            column_types=dict.fromkeys(self.raw, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        )

    def mismatch(self, position: int) -> ReaderError:
        return ReaderError(
            "cannot match the file's lines to its records (quoting that the line counter "
            f"and the parser read differently, near input row {position})",
            path=str(self.file),
        )

    def chunk(self, table: pa.Table | pa.RecordBatch, starts: Lines, position: int) -> CsvChunk:
        """The chunk of *table*'s rows, which start on *starts*, from input *position*."""
        if table.num_rows != len(starts):
            raise self.mismatch(position)
        frame = table.rename_columns(self.names).to_pandas()
        frame.index = pd.RangeIndex(position, position + len(starts))
        return CsvChunk(frame=frame, lines=starts, start=position)


def _stream(plan: _Plan) -> Generator[CsvChunk]:
    """Chunks of *plan*'s file; reader errors translated as :func:`read_csv` does."""
    try:
        if fast_path_applies(plan.encoding, plan.sep):
            yield from _stream_blocks(plan)
        else:
            yield from _stream_arrow(plan, offset=0, first_line=1, header=True, position=0)
            # pyarrow and the csv module read a quote left open at the end of the file
            # as a value running to the end; a regularly quoted file (as in these
            # encodings, unlike the irregular fallback) is checked once more for that.
            unterminated = find_unterminated_quote(plan.file, plan.encoding)
            if unterminated is not None:
                raise unterminated
    except UnicodeDecodeError as exc:
        raise decode_error(plan.file, plan.encoding) from exc
    except pa.ArrowInvalid as exc:
        raise arrow_error(plan.file, plan.encoding, plan.sep, len(plan.names), exc) from exc
    except UnterminatedQuote as exc:
        raise unterminated_quote_error(plan.file, plan.encoding) from exc
    except csv.Error as exc:
        raise ReaderError(f"malformed CSV: {exc}", path=str(plan.file)) from exc


def _parse_piece(plan: _Plan, piece: bytes) -> pa.Table:
    """Parse a run of whole records (no header), multi-threaded within the piece."""
    # Threads split the piece into sub-blocks; a record longer than one makes pyarrow
    # give up ("straddling"), so such a piece is parsed again as one block.
    for sub_block in (max(1 << 20, len(piece) // 4 + 1), len(piece) + 1):
        read_options = pa_csv.ReadOptions(
            column_names=plan.raw,
            encoding=_arrow_encoding(plan.encoding),
            block_size=sub_block,
            use_threads=True,
        )
        try:
            return pa_csv.read_csv(
                pa.BufferReader(piece),
                read_options=read_options,
                parse_options=plan.parse_options(),
                convert_options=plan.convert_options(),
            )
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc) or sub_block > len(piece):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _stream_blocks(plan: _Plan) -> Iterator[CsvChunk]:
    """The fast path: read a block, cut it after its last record, parse that piece.

    Memory holds one block, the unfinished record carried to the next, and the piece's
    table and frame -- nothing grows with the file.
    """
    with plan.file.open("rb") as handle:
        bom = len(codecs.BOM_UTF8) if handle.read(3) == codecs.BOM_UTF8 else 0
        handle.seek(0)
        scanner = FastScanner(plan.sep, bom=bom)
        buffer = b""
        piece_start = 0  # file offset of buffer[0]: a record (or the header) starts there
        piece_line = 0  # the last line before piece_start
        header_done = False
        position = 0
        # The first chunk is a quarter block: whoever consumes the chunks (validation,
        # then the database) starts that much sooner, at no cost to the rest.
        size = max(_MIN_BLOCK_SIZE, plan.block_size // 4)
        while True:
            block = handle.read(size)
            size = plan.block_size
            try:
                scanned = scanner.scan(block) if block else scanner.finish()
            except IrregularQuoting:
                yield from _stream_arrow(
                    plan,
                    offset=piece_start,
                    first_line=piece_line + 1,
                    header=not header_done,
                    position=position,
                )
                return
            buffer += block
            if scanned.cut is not None:
                piece = buffer[: scanned.cut - piece_start]
                buffer = buffer[scanned.cut - piece_start :]
                starts = scanned.starts
                if not header_done and len(starts):
                    header_done = True
                    piece = piece[int(scanned.ends[0]) - piece_start :]
                    starts = starts[1:]
                if len(starts):
                    yield plan.chunk(_parse_piece(plan, piece), starts, position)
                    position += len(starts)
                piece_start = scanned.cut
                piece_line = scanner.line
            if not block:
                return


def _stream_arrow(
    plan: _Plan, *, offset: int, first_line: int, header: bool, position: int
) -> Iterator[CsvChunk]:
    """The general path, from byte *offset* on: pyarrow's streaming reader, lines from
    Python's csv module. For encodings the fast path cannot scan and files quoted
    irregularly. pyarrow reads up to a few dozen blocks ahead here, so memory is bounded
    by the block size, not by the file.
    """
    binary = plan.file.open("rb")
    text_source = plan.file.open("rb")
    try:
        binary.seek(offset)
        text_source.seek(offset)
        text = io.TextIOWrapper(text_source, encoding=plan.encoding, newline="")
        lines = ExactLineStarts(text, plan.sep, first_line=first_line, header=header)
        read_options = pa_csv.ReadOptions(
            encoding=_arrow_encoding(plan.encoding),
            block_size=plan.block_size,
            use_threads=True,
            column_names=None if header else plan.raw,
        )
        with pa_csv.open_csv(
            binary,
            read_options=read_options,
            parse_options=plan.parse_options(),
            convert_options=plan.convert_options(),
        ) as reader:
            if reader.schema.names != plan.raw:
                raise ReaderError(
                    "the header parses differently than expected; check its quoting",
                    path=str(plan.file),
                    line=1,
                )
            for batch in reader:
                if batch.num_rows:
                    yield plan.chunk(batch, lines.take(batch.num_rows), position)
                    position += batch.num_rows
        if len(lines.take(1)):
            raise plan.mismatch(position)
    finally:
        binary.close()
        text_source.close()
