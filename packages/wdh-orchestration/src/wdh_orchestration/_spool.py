"""A run's rejected rows kept aside on disk, for when the load fails.

The load writes rejected rows in its own transaction as it goes; when that transaction
rolls back, the rows are written again in one of their own, for diagnosis. Keeping them
in memory would make memory grow with the file, so they are spooled to an anonymous
temporary file (deleted when closed, or when the process dies) and read back once.
Only the first few stay in memory, for the preview.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

from wdh_io.quarantine import RejectedRow

__all__ = ["RejectedSpool"]


class RejectedSpool:
    """Rejected rows appended chunk by chunk; ``preview`` holds the first *preview_rows*
    input rows' records, ``records`` and ``rows`` count them all."""

    def __init__(self, preview_rows: int = 10) -> None:
        self._file = tempfile.TemporaryFile(prefix="wdh-rejected-")  # noqa: SIM115 - closed in close()
        self._preview_rows = preview_rows
        self.preview: list[RejectedRow] = []
        self.records = 0
        self.rows = 0

    def add(self, records: Sequence[RejectedRow]) -> None:
        """Keep *records* (one chunk's, in input order)."""
        if not records:
            return
        # This process wrote the file and reads it back: pickle is safe here.
        pickle.dump(list(records), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.records += len(records)
        self.rows += len({r.input_row for r in records})
        for record in records:
            shown = {r.input_row for r in self.preview}
            if record.input_row in shown or len(shown) < self._preview_rows:
                self.preview.append(record)
            else:
                break

    def __iter__(self) -> Iterator[RejectedRow]:
        """Every record kept, in the order added (the file is read, not held)."""
        self._file.flush()
        self._file.seek(0)
        while True:
            try:
                batch: list[RejectedRow] = pickle.load(self._file)  # noqa: S301 - our own file
            except EOFError:
                return
            yield from batch

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
