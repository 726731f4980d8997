"""Encoding detection and locating undecodable bytes in CSV files.

The legacy exports come as UTF-8, UTF-8 with a BOM, or GBK (read as GB18030, its
superset). Detection looks at the first :data:`SAMPLE_BYTES` bytes: a BOM decides;
a sample that is not UTF-8 means GB18030; a UTF-8 sample is confirmed on the whole file
(streamed), falling back to GB18030 when a later byte is not UTF-8. Undecodable bytes
are located by byte offset and line (:func:`find_decode_error`).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Final

from wdh_io.errors import ReaderError

__all__ = ["SAMPLE_BYTES", "detect_encoding", "find_decode_error"]

SAMPLE_BYTES: Final = 1 << 20
_BLOCK: Final = 1 << 20
_MAX_CHAR_BYTES: Final = 4

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decodes(sample: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        decoder.decode(sample, final=False)  # a sequence cut by the sample's end is fine
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """The encoding to read *path* with: ``utf-8-sig``/``utf-16``/``utf-32`` (BOM),
    ``utf-8`` or ``gb18030``.

    A BOM decides. Otherwise the first :data:`SAMPLE_BYTES` bytes are tried as strict
    UTF-8; if they decode and the file is longer, the whole file is checked as well
    (block by block), so a GBK file whose first MiB is plain ASCII is still found to be
    GB18030. When neither UTF-8 nor GB18030 decodes the whole file,
    :class:`~wdh_io.errors.ReaderError` says where each one failed.
    """
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        longer = bool(handle.read(1))
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if not _decodes(sample, "utf-8"):
        return "gb18030"  # an undecodable GB18030 byte is reported, with its line, later
    if not longer:
        return "utf-8"
    utf8_error = find_decode_error(path, "utf-8")
    if utf8_error is None:
        return "utf-8"
    gb_error = find_decode_error(path, "gb18030")
    if gb_error is None:
        return "gb18030"
    raise ReaderError(
        "cannot detect the encoding: not UTF-8 (byte offset "
        f"{utf8_error.offset}, line {utf8_error.line}: {utf8_error.reason}) and not "
        f"GB18030 (byte offset {gb_error.offset}, line {gb_error.line}: {gb_error.reason}); "
        "pass encoding=",
        path=str(path),
        line=utf8_error.line,
    )


class DecodeErrorLocation:
    """Where the first undecodable byte is: 0-based byte *offset*, 1-based *line*."""

    __slots__ = ("line", "offset", "reason")

    def __init__(self, offset: int, line: int, reason: str) -> None:
        self.offset = offset
        self.line = line
        self.reason = reason


def find_decode_error(path: Path, encoding: str) -> DecodeErrorLocation | None:
    """Scan *path* block by block; the location of the first byte *encoding* rejects.

    Lines are counted on the raw bytes: ``\\n`` is never part of a multi-byte character
    in UTF-8 or GBK/GB18030.
    """
    start = 0  # file offset of data[0]
    lines_before = 0
    pending = b""  # the tail of the previous block: a character cut by the block boundary
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            final = not block
            data = pending + block
            pending = b""
            try:
                data.decode(encoding)
            except UnicodeDecodeError as exc:
                if not final and exc.start >= len(data) - _MAX_CHAR_BYTES:
                    pending = data[exc.start :]  # possibly complete with the next block
                else:
                    line = lines_before + data[: exc.start].count(b"\n") + 1
                    return DecodeErrorLocation(start + exc.start, line, exc.reason)
            if final:
                return None
            done = len(data) - len(pending)
            lines_before += data[:done].count(b"\n")
            start += done
