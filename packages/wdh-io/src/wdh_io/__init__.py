"""wdh_io: the warehouse layer of WorkDataHub.

* :mod:`wdh_io.database` — engines, the database URL (settings or the embedded dev
  PostgreSQL), Alembic migrations, the least-privilege application role;
* :mod:`wdh_io.loader` — :class:`WarehouseLoader`, transactional DataFrame loads;
* :mod:`wdh_io.audit` — :class:`AuditRecorder`, the ``pipeline_executions`` trail;
* :mod:`wdh_io.readers` — :func:`read_csv` for the legacy exports;
* :mod:`wdh_io.schema` — the tables as SQLAlchemy ``MetaData``;
* :mod:`wdh_io.errors` — every error raised here (root: :class:`WdhIoError`).

The most used names are importable from here; they are loaded on first use, so
``import wdh_io`` stays cheap and does not import the loader, pandas or Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wdh_io.errors import DatabaseError, ReaderError, WdhIoError

if TYPE_CHECKING:
    from wdh_io.audit import AuditRecorder
    from wdh_io.database import (
        create_engine,
        downgrade_database,
        resolve_database_url,
        upgrade_database,
    )
    from wdh_io.loader import LoadResult, WarehouseLoader
    from wdh_io.readers import iter_csv_chunks, read_csv

__all__ = [
    "AuditRecorder",
    "DatabaseError",
    "LoadResult",
    "ReaderError",
    "WarehouseLoader",
    "WdhIoError",
    "create_engine",
    "downgrade_database",
    "iter_csv_chunks",
    "read_csv",
    "resolve_database_url",
    "upgrade_database",
]

_LAZY: dict[str, str] = {
    "AuditRecorder": "wdh_io.audit",
    "LoadResult": "wdh_io.loader",
    "WarehouseLoader": "wdh_io.loader",
    "create_engine": "wdh_io.database",
    "downgrade_database": "wdh_io.database",
    "iter_csv_chunks": "wdh_io.readers",
    "read_csv": "wdh_io.readers",
    "resolve_database_url": "wdh_io.database",
    "upgrade_database": "wdh_io.database",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wdh_io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
