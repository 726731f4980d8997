"""The one error translation shared by the loader, the audit recorder and database code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wdh_io._translate import primary_message, scrub, secrets_of, translate
from wdh_io.errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseAccessError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
    TransientDatabaseError,
)

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


class _DriverError(Exception):
    """Stands in for a psycopg2 error: a message and a SQLSTATE."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def _wrapped(
    pgcode: str | None, message: str = "boom", kind: type[sa.exc.DBAPIError] = sa.exc.DBAPIError
) -> sa.exc.DBAPIError:
    return kind("SELECT 1", None, _DriverError(message, pgcode))


def test_sqlite_statement_errors_are_not_lost_connections() -> None:
    """SQLite has no SQLSTATEs: its OperationalError must not read as a lost (retried) server."""
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            for sql, expected in [
                ("SELECT * FROM missing", TableNotFoundError),
                ("SELECT nope FROM sqlite_master", DatabaseError),
            ]:
                with pytest.raises(sa.exc.OperationalError) as caught:
                    conn.execute(sa.text(sql))
                assert type(translate(caught.value, dialect=conn.dialect)) is expected
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("pgcode", "expected"),
    [
        ("08006", ConnectionLostError),
        ("57P01", ConnectionLostError),
        ("57P02", ConnectionLostError),
        ("57P03", ConnectionLostError),
        ("40001", TransientDatabaseError),
        ("40P01", TransientDatabaseError),
        ("55P03", TransientDatabaseError),
        ("57014", DatabaseError),
        ("3D000", DatabaseAccessError),
        ("28P01", DatabaseAccessError),
        ("28000", DatabaseAccessError),
        ("42P01", TableNotFoundError),
        ("3F000", TableNotFoundError),
        ("23505", ConstraintViolationError),
        ("22003", DataValidationError),
        ("42P10", DataValidationError),
        ("42703", DataValidationError),
        ("21000", DataValidationError),
        ("42601", DatabaseError),
    ],
)
def test_one_sqlstate_table(pgcode: str, expected: type[DatabaseError]) -> None:
    error = translate(_wrapped(pgcode), action="load failed", table="t", schema="s")
    assert type(error) is expected
    assert error.sqlstate == pgcode
    assert str(error).startswith("load failed: boom")
    assert "| table: s.t" in str(error)


def test_a_wrong_password_says_what_to_check() -> None:
    message = 'connection to server at "db" failed: FATAL:  password authentication failed'
    error = translate(_wrapped(None, message, sa.exc.OperationalError), action="load failed")
    assert type(error) is DatabaseAccessError
    assert "check the user and password in DATABASE_URL" in str(error)


def test_no_sqlstate_operational_errors_are_lost_connections_or_sqlite_locks() -> None:
    lost = translate(_wrapped(None, "could not connect", sa.exc.OperationalError))
    assert type(lost) is ConnectionLostError
    locked = translate(_wrapped(None, "database is locked", sa.exc.OperationalError))
    assert type(locked) is TransientDatabaseError


@pytest.mark.parametrize("pgcode", ["08006", "57P01", None])
def test_a_lost_connection_during_commit_has_an_unknown_outcome(pgcode: str | None) -> None:
    error = translate(
        _wrapped(pgcode, "gone", sa.exc.OperationalError),
        action="commit failed",
        during_commit=True,
    )
    assert type(error) is CommitOutcomeUnknownError
    assert not isinstance(error, TransientDatabaseError)
    assert "connection lost during COMMIT" in str(error)


def test_other_commit_failures_keep_their_class() -> None:
    error = translate(_wrapped("23505", "deferred check"), during_commit=True)
    assert type(error) is ConstraintViolationError


def test_secrets_are_masked_by_redaction_and_by_exact_password() -> None:
    url = sa.make_url(f"postgresql+psycopg2://bob:{PLANTED}@db/x")
    assert secrets_of(url) == (PLANTED,)
    assert secrets_of(sa.make_url("postgresql+psycopg2://bob@db/x")) == ()
    in_query = sa.make_url(f"postgresql+psycopg2://bob@db/x?password={PLANTED}")
    assert secrets_of(in_query) == (PLANTED,)
    # in a password position (masked by structure, not by searching the text)
    bare = f"FATAL: password authentication failed, password: {PLANTED}"
    assert PLANTED not in scrub(bare, secrets_of(url))
    assert PLANTED not in scrub(f"postgresql://bob:{PLANTED}@db/x")  # redact_text alone
    assert PLANTED not in scrub(f"password={PLANTED}")
    error = translate(_wrapped("28P01", bare), secrets=secrets_of(url))
    assert PLANTED not in str(error)
    assert PLANTED not in primary_message(_wrapped(None, bare), secrets_of(url))


def test_exact_secrets_are_masked_before_the_pattern_redaction() -> None:
    """``password=a b c`` is redacted up to the space only: masking the exact secret
    first is what keeps the rest of it out."""
    secret = f"open sesame {PLANTED}"
    text = f"connect failed: password={secret} host=db"
    scrubbed = scrub(text, (secret,))
    assert PLANTED not in scrubbed
    assert "sesame" not in scrubbed
    assert "host=db" in scrubbed


def test_copy_context_locates_row_column_and_batch() -> None:
    class _Diag:
        message_primary = "invalid input syntax for type integer"
        column_name = None
        context = 'COPY t, line 7, column qty: "other-row-value"'

    orig = _DriverError("invalid input", "22P02")
    orig.diag = _Diag()  # type: ignore[attr-defined]
    error = translate(sa.exc.DBAPIError("COPY", None, orig), batch_size=3)
    assert (error.row, error.column, error.batch) == (6, "qty", 3)
    assert "other-row-value" not in str(error)
