"""Execution ids: readable and unique even for runs started in the same second."""

from __future__ import annotations

import secrets
from datetime import datetime

__all__ = ["new_execution_id"]

_SUFFIX_BYTES = 4


def new_execution_id(now: datetime) -> str:
    """Return ``exec_%Y%m%d_%H%M%S_<8 hex>`` for ``now``.

    The timestamp prefix keeps ids readable and sortable by start time; the random
    suffix (32 bits from :mod:`secrets`) keeps two runs started in the same second
    apart (DESIGN decision 5).
    """
    return f"exec_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(_SUFFIX_BYTES)}"
