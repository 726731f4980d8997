"""The file line where each CSV record starts, streamed in step with the parser.

A record's line differs from its position once a quoted field holds a newline or blank
lines sit between records, so it is counted on the file itself:

* **Fast path** (:class:`FastLineStarts`): the raw bytes, block by block, with numpy. A
  newline ends a record when an even number of quotes precedes it (an escaped ``""``
  counts twice). Valid for encodings in which ``"``, ``\\n``, ``\\r`` and an ASCII
  delimiter are single bytes never found inside another character (UTF-8, GBK/GB18030,
  Big5, Shift-JIS, Latin-1...). The rule is exact for files quoted the standard way; a
  block that is not (a quote inside an unquoted field, text after a closing quote, a
  bare ``\\r`` line ending) raises :class:`IrregularQuoting`.
* **Exact path** (:class:`ExactLineStarts`): Python's :mod:`csv` reader on the decoded
  text, which treats such quotes as pyarrow does. About ten times slower; used for
  other encodings (UTF-16/32) and, from the start of the file, once the fast path
  gives up.

Both skip blank lines (empty, or a lone ``\\r``) and the header record, as the parser
does, and hand out the start lines of the next *n* records with :meth:`take`.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "ExactLineStarts",
    "FastLineStarts",
    "IrregularQuoting",
    "LineStarts",
    "fast_path_applies",
]

_BLOCK: Final = 1 << 22
_QUOTE: Final = ord('"')
_LF: Final = ord("\n")
_CR: Final = ord("\r")
_NONE: Final = -1  # "no byte": before the start of the file, after its end
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


class LineStarts(Protocol):
    """A source of record start lines (1-based), header excluded."""

    def take(self, count: int) -> Lines:
        """The start lines of the next *count* records (fewer only at the end)."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


def fast_path_applies(encoding: str, sep: str) -> bool:
    """Whether :class:`FastLineStarts` can scan a file in *encoding* split by *sep*."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name in _ASCII_SAFE and len(sep) == 1 and sep.isascii() and sep not in '"\r\n'


class FastLineStarts:
    """Record start lines from the raw bytes (see the module docstring)."""

    def __init__(self, path: Path, sep: str, *, block_size: int = _BLOCK) -> None:
        self._handle: BinaryIO = path.open("rb")
        self._sep = ord(sep)
        self._block_size = block_size
        self._pending: list[Lines] = []
        self._pending_rows = 0
        self._offset = 0  # file offset of the next block
        self._newlines = 0  # newlines before the next block
        self._quotes_odd = 0  # 1 while inside quotes at the block boundary
        self._last_end = -1  # file offset of the last record-ending newline
        self._last_end_line = 0  # the line that newline ended (0: none yet)
        self._last_byte = _NONE
        self._closer_at_end = False  # the previous block ended with a closing quote
        self._header_seen = False
        self._done = False
        # A UTF-8 BOM: a quote straight after it opens the first header name.
        self._bom_end = len(codecs.BOM_UTF8) if self._handle.read(3) == codecs.BOM_UTF8 else -1
        self._handle.seek(0)

    def close(self) -> None:
        self._handle.close()

    def take(self, count: int) -> Lines:
        while self._pending_rows < count and not self._done:
            self._scan_block()
        lines = np.concatenate(self._pending) if self._pending else np.empty(0, np.int64)
        taken, rest = lines[:count], lines[count:]
        self._pending = [rest] if len(rest) else []
        self._pending_rows = len(rest)
        return taken

    def _push(self, starts: Lines) -> None:
        if not self._header_seen and len(starts):
            self._header_seen = True
            starts = starts[1:]
        if len(starts):
            self._pending.append(starts)
            self._pending_rows += len(starts)

    def _scan_block(self) -> None:
        block = self._handle.read(self._block_size)
        if not block:
            self._finish()
            return
        data = np.frombuffer(block, dtype=np.uint8)
        first = int(data[0])
        if self._closer_at_end and first not in (self._sep, _LF, _CR, _QUOTE):
            raise IrregularQuoting
        if self._last_byte == _CR and first != _LF:
            raise IrregularQuoting  # a bare \r line ending across the block boundary
        self._check_quotes(data)
        newlines = np.flatnonzero(data == _LF)
        quotes_before = np.searchsorted(np.flatnonzero(data == _QUOTE), newlines)
        ends_record = ((quotes_before + self._quotes_odd) & 1) == 0
        ends = newlines[ends_record].astype(np.int64)
        end_lines = (self._newlines + np.flatnonzero(ends_record) + 1).astype(np.int64)
        if len(ends):
            global_ends = ends + self._offset
            previous_ends = np.concatenate(([self._last_end], global_ends[:-1]))
            previous_lines = np.concatenate(([self._last_end_line], end_lines[:-1]))
            lengths = global_ends - previous_ends - 1
            byte_before = np.where(
                ends > 0, data[np.maximum(ends - 1, 0)].astype(np.int64), self._last_byte
            )
            blank = (lengths == 0) | ((lengths == 1) & (byte_before == _CR))
            self._push((previous_lines + 1)[~blank])
            self._last_end = int(global_ends[-1])
            self._last_end_line = int(end_lines[-1])
        self._quotes_odd = (self._quotes_odd + int(np.count_nonzero(data == _QUOTE))) & 1
        self._newlines += len(newlines)
        self._offset += len(data)
        self._last_byte = int(data[-1])

    def _check_quotes(self, data: npt.NDArray[np.uint8]) -> None:
        """Raise :class:`IrregularQuoting` unless every quote opens or closes a field."""
        bare_cr = np.flatnonzero(data[:-1] == _CR)
        if len(bare_cr) and np.any(data[bare_cr + 1] != _LF):
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

    def _finish(self) -> None:
        self._done = True
        length = self._offset - self._last_end - 1
        if length > 0 and not (length == 1 and self._last_byte == _CR):
            self._push(np.array([self._last_end_line + 1], dtype=np.int64))


class ExactLineStarts:
    """Record start lines from Python's :mod:`csv` reader (see the module docstring).

    *skip* records after the header are passed over first: how the fast path hands
    over after :class:`IrregularQuoting`.
    """

    def __init__(self, path: Path, encoding: str, sep: str, *, skip: int = 0) -> None:
        self._handle = path.open("r", encoding=encoding, newline="")
        self._records = self._starts(csv.reader(self._handle, delimiter=sep))
        for _ in range(skip):
            next(self._records, None)

    def close(self) -> None:
        self._handle.close()

    @staticmethod
    def _starts(reader: Iterator[list[str]]) -> Iterator[int]:
        line_num = 0
        header_seen = False
        for row in reader:
            start = line_num + 1
            line_num = reader.line_num  # type: ignore[attr-defined]
            if not row:
                continue  # a blank line
            if not header_seen:
                header_seen = True
                continue
            yield start

    def take(self, count: int) -> Lines:
        return np.fromiter(
            (line for _, line in zip(range(count), self._records, strict=False)),
            dtype=np.int64,
        )
