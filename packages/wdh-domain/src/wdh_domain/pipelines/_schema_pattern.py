"""A string field's ``pattern`` checked over a whole text column.

Pydantic checks ``pattern`` with the Rust ``regex`` crate (search semantics). pandas
would check it with Python's ``re`` one cell at a time whenever the pattern holds
``\\s``, ``\\d``, ``\\w``, ``\\b`` or ``$`` -- which most real patterns do -- because
RE2 (pyarrow's engine) words those differently from ``re`` on some characters.

Those differences only touch non-ASCII characters, line ends and a few control
characters. So on *plain* cells -- ASCII, with no ``\\n``, ``\\x0b`` or ``\\x1c``-``\\x1f``
-- the Rust crate, RE2 and ``re`` give the same verdict, and RE2 checks the whole
column in one call that releases the GIL. Every other cell is left unaccepted: it goes
to pydantic, which decides it (a fast path may only pass cells pydantic would pass).

Without pyarrow, or with a pattern RE2 does not compile (lookaround, backreferences),
the column is matched with pandas as before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = ["arrow_modules", "pattern_matches"]

# Characters on which the Rust regex crate, RE2 and Python's re may disagree, besides
# every non-ASCII character: line ends ($, \s), vertical tab (\s) and the information
# separators \x1c-\x1f (whitespace to re, not to Rust or RE2).
_NOT_PLAIN: Final = "[\n\x0b\x1c-\x1f]"


_UNPLAIN_BYTES: Final = np.zeros(256, dtype=bool)
_UNPLAIN_BYTES[[0x0A, 0x0B, 0x1C, 0x1D, 0x1E, 0x1F]] = True


def _may_hold_unplain_bytes(cells: Any) -> bool:
    """Whether any text buffer of *cells* holds a byte of ``_NOT_PLAIN`` -- a scan at
    memory speed instead of a regex per cell; a byte outside the values of a sliced
    array only costs the exact check."""
    chunks = getattr(cells, "chunks", [cells])
    for chunk in chunks:
        buffers = chunk.buffers()
        data = buffers[2] if len(buffers) > 2 else None
        if data is not None and data.size and _UNPLAIN_BYTES[np.frombuffer(data, np.uint8)].any():
            return True
    return False


@lru_cache(maxsize=1)
def arrow_modules() -> tuple[Any, Any] | None:
    """``(pyarrow, pyarrow.compute)``, or ``None`` when pyarrow is not installed."""
    try:
        import pyarrow as pa  # noqa: PLC0415  (optional: pandas runs without it)
        import pyarrow.compute as pc  # noqa: PLC0415
    except ImportError:
        return None
    return pa, pc


@lru_cache(maxsize=64)
def _compiles_in_re2(pattern: str) -> bool:
    modules = arrow_modules()
    if modules is None:
        return False
    pa, pc = modules
    try:
        pc.match_substring_regex(pa.array(["x"]), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def pattern_matches(text: pd.Series, pattern: str) -> np.ndarray:
    """Where *text* (a pandas text column) holds a cell that ``pattern`` finds a match
    in; missing cells are ``False``. Cells RE2 cannot judge like pydantic are ``False``."""
    modules = arrow_modules()
    if modules is None or not _compiles_in_re2(pattern):
        return np.asarray(text.str.contains(pattern, regex=True).fillna(value=False), dtype=bool)
    pa, pc = modules
    cells = pa.array(text)  # Arrow-backed text: no copy
    plain = pc.string_is_ascii(cells)
    if _may_hold_unplain_bytes(cells):
        plain = pc.and_kleene(plain, pc.invert(pc.match_substring_regex(cells, _NOT_PLAIN)))
    found = pc.and_kleene(plain, pc.match_substring_regex(cells, pattern))
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
