"""The sample domain: a row model, its target table and a CSV shipped with the code.

It exists to prove the platform end to end (Story 1.9) and to show the pattern a new
domain copies: a pydantic model of one valid row, the table it lands in, the key the
loader upserts on, and the columns a file must have.
"""

from wdh_orchestration.domains.sample._dataset import (
    SAMPLE_DOMAIN,
    SAMPLE_KEYS,
    SAMPLE_REQUIRED_COLUMNS,
    SAMPLE_SCHEMA,
    SAMPLE_TABLE,
    sample_csv_path,
)
from wdh_orchestration.domains.sample._model import SampleRecord

__all__ = [
    "SAMPLE_DOMAIN",
    "SAMPLE_KEYS",
    "SAMPLE_REQUIRED_COLUMNS",
    "SAMPLE_SCHEMA",
    "SAMPLE_TABLE",
    "SampleRecord",
    "sample_csv_path",
]
