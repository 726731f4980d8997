"""create_engine: pooled, parameters hidden, password never shown, pool events logged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from wdh_io.database import create_engine, describe_url, describe_url_text, parse_url
from wdh_io.errors import DatabaseError
from wdh_io.loader import WarehouseLoader

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


BAD_URLS = [
    f"postgresql+psycopg2://app:{SECRET}@db.example:notaport/wh",  # bare ValueError in SA
    f"postgresql+psycopg2://app:{SECRET}@db.example:99999/wh",  # SA accepts it
    f"not a url {SECRET}",  # SA's ArgumentError
]


@pytest.mark.unit
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_url_is_one_database_error_that_echoes_nothing(url: str) -> None:
    for attempt in (
        lambda: parse_url(url),
        lambda: create_engine(url),
        lambda: WarehouseLoader(url),
    ):
        with pytest.raises(DatabaseError) as caught:
            attempt()
        error = caught.value
        assert str(error).startswith("the database URL is malformed")
        for fragment in (SECRET, "notaport", "99999", "db.example"):
            assert fragment not in str(error)
        assert error.__cause__ is None
        assert error.__suppress_context__


@pytest.mark.unit
def test_parse_url_keeps_good_urls_and_url_objects() -> None:
    url = parse_url("postgresql+psycopg2://app@db.example:65535/wh")
    assert (url.host, url.port, url.database) == ("db.example", 65535, "wh")
    assert parse_url(url) is url


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_url_without_a_driver_connects_with_the_installed_one(
    database_url: sa.URL, scheme: str
) -> None:
    # SQLAlchemy's default driver for a bare "postgresql" is psycopg 3, not installed
    bare = database_url.set(drivername=scheme).render_as_string(hide_password=False)
    assert parse_url(bare).drivername == "postgresql+psycopg2"
    engine = create_engine(bare)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "text"),
    [
        (
            f"postgresql+psycopg2://app:{SECRET}@db.example:5433/wh",
            "database 'wh' on db.example:5433",
        ),
        ("postgresql+psycopg2://app@db.example/wh", "database 'wh' on db.example"),
        (
            f"postgresql+psycopg2://app:{SECRET}@/wh?host=/run/postgresql",
            "database 'wh' via the socket in /run/postgresql",
        ),
        ("postgresql+psycopg2://app@/wh?host=db.example&port=5432", "database 'wh' on db.example"),
        ("postgresql+psycopg2://app@/wh", "database 'wh'"),
        ("sqlite:///data/w.db", "database 'data/w.db'"),
        ("postgresql+psycopg2://app@db.example", "database (default) on db.example"),
    ],
)
def test_describe_url_text_says_where_without_user_or_password(url: str, text: str) -> None:
    parsed = parse_url(url)
    assert describe_url_text(parsed) == text
    assert "app" not in describe_url_text(parsed)
    assert SECRET not in repr(describe_url(parsed))


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
