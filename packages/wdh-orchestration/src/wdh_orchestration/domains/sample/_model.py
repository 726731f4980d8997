"""``SampleRecord``: what one valid row of the sample CSV is."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["SampleRecord"]

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
_Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class SampleRecord(BaseModel):
    """One row of ``public.sample_data``; the limits mirror the table's column types.

    Blank cells are missing (the validation steps hand them over as ``None``): allowed in
    the optional columns (``email``, ``region``); a blank
    ``customer_name``, an ``amount`` that is not a number with at most 2 decimals and
    16 integer digits, or an impossible ``transaction_date`` make the row invalid.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    record_id: int = Field(gt=0)
    customer_name: _Name
    email: _Email | None = None
    amount: Decimal = Field(max_digits=18, decimal_places=2)
    transaction_date: date
    region: _Region | None = None
