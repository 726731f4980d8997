"""create_engine: pooled, parameters hidden, password never shown, pool events logged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from wdh_io.database._engine import create_engine, describe_url

SECRET = "s3cr3t-planted"  # pragma: allowlist secret


@pytest.mark.unit
def test_repr_and_str_mask_the_password() -> None:
    engine = create_engine(f"postgresql+psycopg2://app:{SECRET}@db.example:5432/wh", pool_size=3)
    try:
        assert SECRET not in repr(engine)
        assert SECRET not in str(engine.url)
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert engine.hide_parameters
        assert SECRET not in repr(describe_url(engine.url))
    finally:
        engine.dispose()


@pytest.mark.unit
def test_bad_pool_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        create_engine("sqlite://", pool_size=0)
    with pytest.raises(ValueError, match="max_overflow"):
        create_engine("sqlite://", max_overflow=-1)


@pytest.mark.integration
def test_connect_failure_is_logged_without_the_password() -> None:
    # Port 1 refuses at once: a real connect error, no waiting.
    engine = create_engine(
        f"postgresql+psycopg2://app:{SECRET}@127.0.0.1:1/wh", pool_pre_ping=False
    )
    try:
        with capture_logs() as logs, pytest.raises(sa.exc.OperationalError) as caught:
            engine.connect()
    finally:
        engine.dispose()
    assert SECRET not in str(caught.value)
    failed = [e for e in logs if e["event"] == "database.connection.failed"]
    assert failed
    assert failed[0]["host"] == "127.0.0.1"
    assert SECRET not in repr(logs)


@pytest.mark.integration
def test_bound_values_never_appear_in_errors(database_url: sa.URL) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n integer)")
        insert = sa.text("INSERT INTO t VALUES (:n)")
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
            conn.execute(insert, {"n": "not-a-number-5521"})
        assert "not-a-number-5521" not in str(caught.value).split("[SQL")[1]
        assert "parameters hidden" in str(caught.value)
        with capture_logs() as logs, engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    assert all(SECRET not in repr(e) for e in logs)
