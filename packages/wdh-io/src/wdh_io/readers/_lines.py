"""Where each CSV record starts: its file line, and where blocks may be cut.

A record's line differs from its position once a quoted field holds a newline or blank
lines sit between records, so it is counted on the file itself. Lines are counted as
Python counts them (universal newlines: ``\\n``, ``\\r\\n`` or a lone ``\\r``).

* **Fast path** (:class:`FastScanner`): the raw bytes, block by block, with numpy. A
  newline ends a record when an even number of quotes precedes it (an escaped ``""``
  counts twice). Valid for encodings in which ``"``, ``\\n``, ``\\r`` and an ASCII
  delimiter are single bytes never found inside another character (UTF-8, GBK/GB18030,
  Big5, Shift-JIS, Latin-1...). The rule is exact for files quoted the standard way; a
  block that is not (a quote inside an unquoted field, text after a closing quote, a
  lone ``\\r`` line ending) raises :class:`IrregularQuoting` before anything of that
  block is reported. Besides the start lines it reports the byte offsets where the
  file may be cut between records, so the stream can parse bounded blocks.
* **Exact path** (:class:`ExactLineStarts`): Python's :mod:`csv` reader on the decoded
  text, which reads such quotes as pyarrow does. Several times slower; used for other
  encodings (UTF-16/32) and for the rest of a file once the fast path gives up.

Both skip blank lines (empty, or a lone ``\\r``) as the parser does.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

__all__ = [
    "ExactLineStarts",
    "FastScanner",
    "IrregularQuoting",
    "Lines",
    "ScannedBlock",
    "UnterminatedQuote",
    "fast_path_applies",
]

_QUOTE: Final = ord('"')
_LF: Final = ord("\n")
_CR: Final = ord("\r")
_NONE: Final = -1  # "no byte": before the start of the file
_ASCII_SAFE: Final = frozenset(
    {
        "ascii", "utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "big5", "big5hkscs",
        "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949", "latin-1", "iso8859-1",
        "cp1252", "iso8859-15",
    }
)  # fmt: skip

Lines = npt.NDArray[np.int64]


class IrregularQuoting(Exception):  # noqa: N818 - a signal to switch paths, not an error
    """The fast path cannot count this file's records exactly."""


class UnterminatedQuote(Exception):  # noqa: N818 - translated into a ReaderError by the caller
    """The file ends inside a quoted field (pyarrow would read it as a value)."""


def fast_path_applies(encoding: str, sep: str) -> bool:
    """Whether :class:`FastScanner` can scan a file in *encoding* split by *sep*."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name in _ASCII_SAFE and len(sep) == 1 and sep.isascii() and sep not in '"\r\n'


@dataclass(frozen=True, slots=True)
class ScannedBlock:
    """What one block completed: the records whose line ended in it (blank lines left
    out), by 1-based start line and file offset just past their end, and ``cut``, the
    file offset just past the last line end of the block (``None``: no line ended)."""

    starts: Lines
    ends: Lines
    cut: int | None


_EMPTY: Final = np.empty(0, dtype=np.int64)


class FastScanner:
    """Scans consecutive blocks of a file's bytes (see the module docstring).

    ``bom`` is the length of a byte-order mark at the start of the file (a quote
    straight after it opens the first header name).
    """

    def __init__(self, sep: str, *, bom: int = 0) -> None:
        self._sep = ord(sep)
        self._bom_end = bom if bom else _NONE
        self._offset = 0  # file offset of the next block
        self._newlines = 0  # newlines before the next block
        self._quotes_odd = 0  # 1 while inside quotes at the block boundary
        self._last_end = -1  # file offset of the last line-ending newline
        self._last_end_line = 0  # the line that newline ended (0: none yet)
        self._last_byte = _NONE
        self._closer_at_end = False  # the previous block ended with a closing quote

    @property
    def line(self) -> int:
        """The last line ended so far (0 before the first)."""
        return self._last_end_line

    def scan(self, block: bytes) -> ScannedBlock:
        """The records whose line ends in *block*, the next block of the file."""
        data = np.frombuffer(block, dtype=np.uint8)
        self._check(data)
        newlines = np.flatnonzero(data == _LF)
        quotes = np.flatnonzero(data == _QUOTE)
        ends_line = ((np.searchsorted(quotes, newlines) + self._quotes_odd) & 1) == 0
        ends = newlines[ends_line].astype(np.int64) + self._offset
        end_lines = (self._newlines + np.flatnonzero(ends_line) + 1).astype(np.int64)
        result = ScannedBlock(_EMPTY, _EMPTY, None)
        if len(ends):
            previous_ends = np.concatenate(([self._last_end], ends[:-1]))
            previous_lines = np.concatenate(([self._last_end_line], end_lines[:-1]))
            local = ends - self._offset
            byte_before = np.where(
                local > 0, data[np.maximum(local - 1, 0)].astype(np.int64), self._last_byte
            )
            length = ends - previous_ends - 1
            blank = (length == 0) | ((length == 1) & (byte_before == _CR))
            result = ScannedBlock(
                (previous_lines + 1)[~blank], (ends + 1)[~blank], int(ends[-1]) + 1
            )
            self._last_end = int(ends[-1])
            self._last_end_line = int(end_lines[-1])
        self._quotes_odd = (self._quotes_odd + len(quotes)) & 1
        self._newlines += len(newlines)
        self._offset += len(data)
        self._last_byte = int(data[-1])
        return result

    def finish(self) -> ScannedBlock:
        """The last record, when the file does not end with a line break.

        Raises:
            UnterminatedQuote: the file ends inside a quoted field.
        """
        if self._quotes_odd:
            raise UnterminatedQuote
        length = self._offset - self._last_end - 1
        if length > 0 and not (length == 1 and self._last_byte == _CR):
            line = np.array([self._last_end_line + 1], dtype=np.int64)
            return ScannedBlock(line, np.array([self._offset], dtype=np.int64), self._offset)
        return ScannedBlock(_EMPTY, _EMPTY, None)

    def _check(self, data: npt.NDArray[np.uint8]) -> None:
        """Raise :class:`IrregularQuoting` unless every quote opens or closes a field
        and every ``\\r`` is followed by ``\\n``."""
        first = int(data[0])
        if self._closer_at_end and first not in (self._sep, _LF, _CR, _QUOTE):
            raise IrregularQuoting
        if self._last_byte == _CR and first != _LF:
            raise IrregularQuoting
        carriage = np.flatnonzero(data[:-1] == _CR)
        if len(carriage) and np.any(data[carriage + 1] != _LF):
            raise IrregularQuoting
        quotes = np.flatnonzero(data == _QUOTE)
        if not len(quotes):
            self._closer_at_end = False
            return
        opening = ((np.arange(len(quotes)) + self._quotes_odd) & 1) == 0
        before = np.where(
            quotes > 0, data[np.maximum(quotes - 1, 0)].astype(np.int64), self._last_byte
        )
        before[quotes + self._offset == self._bom_end] = _NONE
        at_end = quotes == len(data) - 1
        after = np.where(
            at_end, _QUOTE, data[np.minimum(quotes + 1, len(data) - 1)].astype(np.int64)
        )
        opens_well = np.isin(before, (self._sep, _LF, _QUOTE, _NONE))
        closes_well = np.isin(after, (self._sep, _LF, _CR, _QUOTE))
        if np.any(opening & ~opens_well) or np.any(~opening & ~closes_well):
            raise IrregularQuoting
        # A closing quote at the block's very end is checked against the next block.
        self._closer_at_end = bool(at_end[-1] and not opening[-1])


class ExactLineStarts:
    """Record start lines from Python's :mod:`csv` reader over *text*.

    *text* starts at line ``first_line``, at the header when *header* is true (it is
    then skipped) or else at a record.
    """

    def __init__(self, text: TextIO, sep: str, *, first_line: int = 1, header: bool = True) -> None:
        self._records = self._starts(csv.reader(text, delimiter=sep), first_line - 1, header)

    @staticmethod
    def _starts(reader: Iterator[list[str]], line_num: int, header: bool) -> Iterator[int]:
        base = line_num
        header_seen = not header
        for row in _unterminated_as_signal(reader):
            start = line_num + 1
            line_num = base + reader.line_num  # type: ignore[attr-defined]
            if not row:
                continue  # a blank line
            if not header_seen:
                header_seen = True
                continue
            yield start

    def take(self, count: int) -> Lines:
        """The start lines of the next *count* records (fewer only at the end)."""
        return np.fromiter(
            (line for _, line in zip(range(count), self._records, strict=False)),
            dtype=np.int64,
        )


def _unterminated_as_signal(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """The rows of *reader*; its "unexpected end of data" becomes :class:`UnterminatedQuote`."""
    try:
        yield from reader
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise UnterminatedQuote from exc
        raise
