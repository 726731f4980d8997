"""Transactional DataFrame loading into the warehouse (story 1.8, DESIGN decisions 1 to 4).

``WarehouseLoader(engine_or_url).load_dataframe(df, table, schema, upsert_keys)`` writes a
frame in one transaction — by PostgreSQL ``COPY`` where available, by batched SQLAlchemy
Core ``INSERT`` elsewhere, with the same rows and the same :class:`LoadResult` either way —
and raises one :class:`~wdh_io.errors.DatabaseError` subclass with nothing committed when
anything is wrong. See ``packages/wdh-io/docs/loader.md``.
"""

from wdh_io.loader._loader import LoadTransaction, WarehouseLoader
from wdh_io.loader._result import LoadMethod, LoadPlan, LoadResult
from wdh_io.loader._staged import StagedLoad

__all__ = [
    "LoadMethod",
    "LoadPlan",
    "LoadResult",
    "LoadTransaction",
    "StagedLoad",
    "WarehouseLoader",
]
