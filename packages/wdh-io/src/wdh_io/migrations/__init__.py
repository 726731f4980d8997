"""Alembic migrations of the warehouse schema (``env.py``, ``versions/``).

Run them with ``alembic -c packages/wdh-io/alembic.ini upgrade head`` or
:func:`wdh_io.database.upgrade_database`. Kept inside the package so they ship in the wheel.
"""
