"""Readers for input files.

* :func:`read_csv` / :func:`iter_csv_chunks` — the legacy CSV exports (UTF-8, UTF-8 with
  BOM, GBK/GB18030), with header normalisation and strict field counts.
* Excel: a placeholder. The Excel reader (``openpyxl``/``calamine`` through pandas, sheet
  selection, merged header cells of the legacy workbooks) arrives with the domain
  migrations in Epic 3; nothing here pretends to read Excel before then.
"""

from wdh_io.readers._csv import iter_csv_chunks, normalize_header, read_csv
from wdh_io.readers._encoding import detect_encoding

__all__ = ["detect_encoding", "iter_csv_chunks", "normalize_header", "read_csv"]
