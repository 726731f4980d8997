"""Execution ids: readable and unique even for runs started in the same second."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

__all__ = ["new_execution_id"]

_SUFFIX_BYTES = 4


def new_execution_id(now: datetime | None = None, *, suffix: str | None = None) -> str:
    """Return ``exec_%Y%m%d_%H%M%S_<suffix>``: the one place this format is spelled out.

    ``now`` is the run's start (the current UTC time when ``None``; an aware datetime is
    converted to UTC first, a naive one is used as it is). ``suffix`` tells runs started
    in the same second apart: by default 8 random hex digits (32 bits from
    :mod:`secrets`, DESIGN decision 5); a caller with an id of its own -- the
    orchestration layer passes the Dagster run id -- passes it instead. The timestamp
    prefix keeps ids readable and sortable by start time.
    """
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    if suffix is None:
        suffix = secrets.token_hex(_SUFFIX_BYTES)
    return f"exec_{moment:%Y%m%d_%H%M%S}_{suffix}"
