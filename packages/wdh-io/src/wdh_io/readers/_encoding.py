"""Encoding detection and locating undecodable bytes in CSV files.

The legacy exports come as UTF-8, UTF-8 with a BOM, or GBK (read as GB18030, its
superset). Detection looks at the first :data:`SAMPLE_BYTES` bytes: a BOM decides;
otherwise strict UTF-8 if the sample decodes, else GB18030. A file whose sample is
UTF-8 but whose tail is not fails later with the exact byte offset and line
(:func:`find_decode_error`).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Final

__all__ = ["SAMPLE_BYTES", "DecodeErrorLocation", "detect_encoding", "find_decode_error"]

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
    ``utf-8`` or ``gb18030``."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if _decodes(sample, "utf-8"):
        return "utf-8"
    return "gb18030"


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
