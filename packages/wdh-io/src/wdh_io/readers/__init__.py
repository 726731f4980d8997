"""Readers for input files.

* :func:`read_csv` / :func:`iter_csv_chunks` — the legacy CSV exports (UTF-8, UTF-8 with
  BOM, GBK/GB18030), with header normalisation and strict field counts.
* :func:`stream_csv` — the same files as a stream of :class:`CsvChunk` (raw text, each
  row's input position and file line) in constant memory, for loads of any size.
* :func:`prefetched` — any iterator read ahead by a background thread (what
  ``stream_csv`` does with its chunks), for work that overlaps its consumer's.
* Excel: a placeholder. The Excel reader (``openpyxl``/``calamine`` through pandas, sheet
  selection, merged header cells of the legacy workbooks) arrives with the domain
  migrations in Epic 3; nothing here pretends to read Excel before then.
"""

from wdh_io.readers._csv import iter_csv_chunks, normalize_header, read_csv
from wdh_io.readers._encoding import detect_encoding
from wdh_io.readers._prefetch import prefetched
from wdh_io.readers._stream import DEFAULT_BLOCK_SIZE, CsvChunk, stream_csv

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "CsvChunk",
    "detect_encoding",
    "iter_csv_chunks",
    "normalize_header",
    "prefetched",
    "read_csv",
    "stream_csv",
]
