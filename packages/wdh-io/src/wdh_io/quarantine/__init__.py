"""The quarantine: rejected rows kept in ``rejected_rows``, atomically with the load.

A run writes the rows it rejected (one per error, with the row's raw values) on the
connection of the load's transaction, so the valid rows and the rejected ones commit
together or neither does. A replay reads a run's unresolved rows, re-validates them,
marks those that now pass resolved by the replaying run and gives the others their new
reasons; a second replay with the same verdicts changes nothing. A
:class:`RejectionBudget` judges the rejected fraction of the whole input before COMMIT.

How raw values are kept exactly in ``jsonb`` (NaN, ``Decimal``, dates, bytes, NUL in
text) is described in :func:`encode_raw_values`'s module.

Example::

    with loader.transaction() as tx:
        tx.load_dataframe(valid, "sample_data", upsert_keys=["record_id"])
        write_rejected_rows(tx.connection, rejected, execution_id=run_id, domain="sample",
                            source_file=str(path))
"""

from wdh_io.quarantine._budget import ErrorBudgetExceededError, RejectionBudget
from wdh_io.quarantine._model import RejectedRow, RejectionReason, ReplayRow, StoredRejectedRow
from wdh_io.quarantine._store import (
    WriteMethod,
    count_rejected_rows,
    list_rejected_rows,
    mark_resolved,
    unresolved_rows,
    update_reasons,
    write_rejected_rows,
)
from wdh_io.quarantine._values import (
    UnstorableValueError,
    decode_raw_values,
    dumps_raw_values,
    encode_raw_values,
)

__all__ = [
    "ErrorBudgetExceededError",
    "RejectedRow",
    "RejectionBudget",
    "RejectionReason",
    "ReplayRow",
    "StoredRejectedRow",
    "UnstorableValueError",
    "WriteMethod",
    "count_rejected_rows",
    "decode_raw_values",
    "dumps_raw_values",
    "encode_raw_values",
    "list_rejected_rows",
    "mark_resolved",
    "unresolved_rows",
    "update_reasons",
    "write_rejected_rows",
]
