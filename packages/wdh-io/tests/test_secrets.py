"""Secrets by structure on a real PostgreSQL: the URL's password field is masked, the
same text elsewhere in a message is not; ``?password=`` never shows in a repr, log or
error."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from wdh_domain.pipelines import RetryConfig
from wdh_io._translate import scrub
from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine, mask_url, parse_url
from wdh_io.errors import DatabaseAccessError, DatabaseError, WdhIoError
from wdh_io.loader import WarehouseLoader

pytestmark = pytest.mark.integration

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret
NO_RETRY = RetryConfig(max_attempts=1)


def _chain(error: BaseException) -> str:
    texts = []
    seen: BaseException | None = error
    while seen is not None:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def test_a_password_equal_to_the_port_does_not_garble_the_message(database_url: sa.URL) -> None:
    url = database_url.set(password=str(database_url.port), database="wdh_no_such_db")
    loader = WarehouseLoader(url, retry=NO_RETRY)
    try:
        with pytest.raises(DatabaseAccessError) as caught:
            loader.load_dataframe(pd.DataFrame({"id": [1]}), "t")
    finally:
        loader.dispose()
    assert f"port {database_url.port} failed" in str(caught.value)
    assert "***" not in str(caught.value)


def test_scrub_masks_password_positions_only() -> None:
    host_message = 'could not translate host name "postgres" to address: Name or service not known'
    assert scrub(host_message, ("postgres",)) == host_message
    assert scrub("port 5432 failed", ("5432",)) == "port 5432 failed"
    masked = scrub(f"postgresql://u:{PLANTED}@db/x password={PLANTED} more", (PLANTED,))
    assert PLANTED not in masked
    assert "postgresql://u:***@db/x" in masked
    spaced = "open sesame " + PLANTED
    assert scrub(f"password={spaced} host=db", (spaced,)) == "password=*** host=db"


def test_query_string_passwords_never_show(database_url: sa.URL) -> None:
    url = database_url.update_query_dict({"password": PLANTED})
    engine = create_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        loader = WarehouseLoader(engine, retry=NO_RETRY)
        for shown in (repr(engine), str(engine.url), repr(loader), repr(AuditRecorder(engine))):
            assert PLANTED not in shown
        with engine.connect() as conn:  # the password still reaches the server
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
    foreign = sa.create_engine(url)  # not made by wdh_io: the reprs mask it anyway
    assert PLANTED not in repr(WarehouseLoader(foreign)) + repr(AuditRecorder(foreign))
    assert PLANTED not in repr(mask_url(url))
    broken = url.set(database="wdh_no_such_db")
    with capture_logs() as logs:
        loader = WarehouseLoader(broken.render_as_string(hide_password=False), retry=NO_RETRY)
        with pytest.raises(DatabaseError) as caught:
            loader.load_dataframe(pd.DataFrame({"id": [1]}), "t")
        loader.dispose()
    assert PLANTED not in _chain(caught.value)
    assert PLANTED not in repr(logs)


def test_parse_url_never_echoes_the_url() -> None:
    for bad in (f"postgresql://user:{PLANTED}/db", f"not a url {PLANTED}"):
        with pytest.raises(WdhIoError) as caught:
            parse_url(bad)
        assert PLANTED not in _chain(caught.value)
