"""The quarantine on a migrated PostgreSQL database: atomic with the caller's transaction,
exact raw values, listing, replay reads and idempotent resolution."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import URL, create_engine, text

from wdh_io.errors import ConstraintViolationError, DatabaseError, DataValidationError
from wdh_io.loader import WarehouseLoader
from wdh_io.quarantine import (
    RejectedRow,
    RejectionReason,
    WriteMethod,
    count_rejected_rows,
    list_rejected_rows,
    mark_resolved,
    unresolved_rows,
    update_reasons,
    write_rejected_rows,
)

pytestmark = pytest.mark.integration

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret
RUN = "exec_20261202_140000_ab12"
REPLAY = "exec_20261202_150000_cd34"
METHODS: list[WriteMethod] = ["copy", "insert"]


@pytest.fixture
def engine(migrated_database_url: URL) -> Iterator[sa.Engine]:
    engine = create_engine(migrated_database_url)
    with engine.begin() as conn:
        for run in (RUN, REPLAY):
            conn.execute(
                text(
                    "INSERT INTO pipeline_executions (execution_id, pipeline_name, status) "
                    "VALUES (:run, 'sample', 'running')"
                ),
                {"run": run},
            )
    try:
        yield engine
    finally:
        engine.dispose()


def _reason(
    field: str | None, code: str = "VALIDATION_ERROR", message: str = "bad"
) -> RejectionReason:
    return RejectionReason(field=field, error_code=code, message=message)


def _row(
    input_row: int, *reasons: RejectionReason, line: int | None = None, **raw: Any
) -> list[RejectedRow]:
    values = raw or {"record_id": str(input_row), "amount": "x"}
    return [
        RejectedRow(input_row=input_row, file_line=line, reason=reason, raw_values=values)
        for reason in (reasons or (_reason("amount"),))
    ]


def _write(engine: sa.Engine, rows: list[RejectedRow], method: WriteMethod = "auto") -> int:
    with engine.begin() as conn:
        return write_rejected_rows(
            conn, rows, execution_id=RUN, domain="sample", source_file="in.csv", method=method
        )


RAW: dict[str, Any] = {
    "name": "张三 😀",
    "escapes": 'a\\b\tc\nd\r"e"',
    "nul": "x\x00y",
    "nan": math.nan,
    "big": 1e16,
    "float": 0.1,
    "int": 10**20,
    "amount": Decimal("1.10"),
    "date": dt.date(2026, 12, 2),
    "at": dt.datetime(2026, 12, 2, 8, 30, tzinfo=dt.UTC),
    "missing": None,
    "flag": True,
}


@pytest.mark.parametrize("method", METHODS)
def test_raw_values_and_fields_are_stored_exactly_by_both_paths(
    engine: sa.Engine, method: WriteMethod
) -> None:
    reason = _reason("name\tx", "STRING_TOO_LONG", "line1\nline2 \\ back")
    assert _write(engine, _row(3, reason, line=7, **RAW), method) == 1
    with engine.connect() as conn:
        (stored,) = list_rejected_rows(conn, RUN)
        as_text = conn.execute(
            text("SELECT raw_values->>'name', raw_values->'amount' FROM rejected_rows")
        ).one()
    assert (stored.execution_id, stored.domain, stored.source_file) == (RUN, "sample", "in.csv")
    assert (stored.input_row, stored.file_line) == (3, 7)
    assert stored.reason == reason
    assert stored.resolved_by_execution_id is None
    assert stored.resolved_at is None
    assert math.isnan(stored.raw_values.pop("nan"))
    expected = {k: v for k, v in RAW.items() if k != "nan"}
    assert stored.raw_values == expected
    assert {k: type(v) for k, v in stored.raw_values.items()} == {
        k: type(v) for k, v in expected.items()
    }
    assert as_text == ("张三 😀", {"$decimal": "1.10"})  # queryable as plain jsonb


def test_both_paths_store_the_same_rows(engine: sa.Engine) -> None:
    rows = [r for i in range(50) for r in _row(i, _reason("a"), _reason(None, "ROW"), line=i + 2)]
    for method in METHODS:
        _write(engine, rows, method)
    with engine.connect() as conn:
        stored = list_rejected_rows(conn, RUN)
    copied = [s for s in stored if s.rejected_row_id <= len(rows)]
    inserted = [s for s in stored if s.rejected_row_id > len(rows)]

    def key(s: Any) -> tuple[Any, ...]:
        return (s.input_row, s.file_line, s.reason, s.raw_values)

    assert len(copied) == len(inserted) == 100
    assert sorted(map(key, copied), key=repr) == sorted(map(key, inserted), key=repr)


def test_rows_roll_back_with_the_callers_transaction(engine: sa.Engine) -> None:
    def load_then_fail() -> None:
        with engine.begin() as conn:
            write_rejected_rows(conn, _row(0), execution_id=RUN, domain="sample")
            assert count_rejected_rows(conn, RUN) == 1  # visible inside the transaction
            conn.execute(text("INSERT INTO sample_data VALUES (1, 'n', NULL, 1, '2026-01-01')"))
            raise LookupError("the load failed after the rejected rows were written")

    with pytest.raises(LookupError):
        load_then_fail()
    with engine.connect() as conn:
        assert count_rejected_rows(conn, RUN) == 0
        assert conn.execute(text("SELECT count(*) FROM sample_data")).scalar_one() == 0
    with engine.begin() as conn:  # the same write, committed, stays
        write_rejected_rows(conn, _row(0), execution_id=RUN, domain="sample")
    with engine.connect() as conn:
        assert count_rejected_rows(conn, RUN) == 1


def test_rows_commit_with_a_load_or_not_at_all(engine: sa.Engine) -> None:
    """Rejected rows written in a loader transaction share its fate."""
    good = pd.DataFrame(
        {
            "record_id": [1],
            "customer_name": ["张三"],
            "amount": [Decimal("1.50")],
            "transaction_date": [dt.date(2026, 1, 1)],
        }
    )
    bad = good.copy()
    bad["amount"] = pd.Series([Decimal("1e20")], dtype=object)  # overflows numeric(18, 2)
    with WarehouseLoader(engine) as loader:

        def quarantine_then_fail_to_load() -> None:
            with loader.transaction() as tx:
                write_rejected_rows(tx.connection, _row(0), execution_id=RUN, domain="sample")
                tx.load_dataframe(bad, "sample_data")

        with pytest.raises(DatabaseError, match="sample_data"):
            quarantine_then_fail_to_load()
        with engine.connect() as conn:
            assert count_rejected_rows(conn, RUN) == 0
        with loader.transaction() as tx:
            tx.load_dataframe(good, "sample_data")
            write_rejected_rows(tx.connection, _row(1), execution_id=RUN, domain="sample")
    with engine.connect() as conn:
        assert [s.input_row for s in list_rejected_rows(conn, RUN)] == [1]
        assert conn.execute(text("SELECT record_id FROM sample_data")).scalars().all() == [1]


def test_a_generator_of_many_rows_is_written_in_blocks(engine: sa.Engine) -> None:
    total = 20_000  # more than two COPY blocks
    rows = (
        RejectedRow(input_row=i, file_line=i + 2, reason=_reason("amount"), raw_values={"v": i})
        for i in range(total)
    )
    assert _write(engine, list(rows)) == total
    with engine.connect() as conn:
        assert count_rejected_rows(conn, RUN) == total
        assert conn.execute(
            text("SELECT sum((raw_values->>'v')::bigint) FROM rejected_rows")
        ).scalar_one() == sum(range(total))


def test_secrets_in_messages_are_masked_and_nul_is_made_visible(engine: sa.Engine) -> None:
    message = f"cannot parse password={PLANTED} here\x00"
    _write(engine, _row(0, _reason("a\x00b", "E", message)))
    with engine.connect() as conn:
        (stored,) = list_rejected_rows(conn, RUN)
    assert PLANTED not in stored.reason.message
    assert stored.reason.message.startswith("cannot parse password=")
    assert stored.reason.message.endswith("\\x00")
    assert stored.reason.field == "a\\x00b"


def test_reprs_hide_sensitive_raw_values() -> None:
    (row,) = _row(0, password=PLANTED, name="x")
    assert PLANTED not in repr(row)
    assert "'name': 'x'" in repr(row)


@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_run_is_a_constraint_violation_without_the_password(
    migrated_database_url: URL, method: WriteMethod
) -> None:
    # trust authentication ignores the password, so the planted one travels unused
    engine = create_engine(migrated_database_url.set(password=PLANTED))
    try:
        with pytest.raises(ConstraintViolationError) as caught, engine.begin() as conn:
            write_rejected_rows(
                conn, _row(0), execution_id="exec_unknown", domain="sample", method=method
            )
    finally:
        engine.dispose()
    message = str(caught.value)
    assert message.startswith("could not write the rejected rows of run 'exec_unknown'")
    assert "table: rejected_rows" in message
    assert PLANTED not in message
    assert PLANTED not in repr(caught.value)


@pytest.mark.parametrize(
    ("rows", "kwargs", "match"),
    [
        (_row(0, a=[1]), {}, r"raw value of column a not stored: .*type list.*row: 0"),
        (
            [RejectedRow(input_row=-1, reason=_reason("a"), raw_values={})],
            {},
            "input_row must be a non-negative integer, got -1",
        ),
        (_row(4, line=0), {}, r"file_line must be a positive integer or None, got 0.*row: 4"),
        (_row(0, _reason("a", code="")), {}, "error_code must be a non-empty string"),
        (_row(0), {"domain": ""}, "domain must be a non-empty string"),
        (_row(0), {"execution_id": "x" * 101}, "execution_id is 101 characters long"),
    ],
)
def test_bad_rows_are_refused_with_what_and_where(
    engine: sa.Engine, rows: list[RejectedRow], kwargs: dict[str, str], match: str
) -> None:
    arguments = {"execution_id": RUN, "domain": "sample", **kwargs}
    with pytest.raises(DataValidationError, match=match) as caught, engine.begin() as conn:
        write_rejected_rows(
            conn, rows, execution_id=arguments["execution_id"], domain=arguments["domain"]
        )
    assert caught.value.table == "rejected_rows"
    with engine.connect() as conn:
        assert count_rejected_rows(conn, RUN) == 0


def test_copy_is_refused_on_a_driver_without_it(engine: sa.Engine) -> None:
    sqlite = create_engine("sqlite://")
    try:
        with pytest.raises(DatabaseError, match="COPY needs a psycopg2"), sqlite.connect() as conn:
            write_rejected_rows(conn, _row(0), execution_id=RUN, domain="d", method="copy")
    finally:
        sqlite.dispose()


def test_listing_orders_by_input_row_and_limits(engine: sa.Engine) -> None:
    _write(engine, _row(5) + _row(1, _reason("a"), _reason("b")) + _row(3))
    with engine.connect() as conn:
        listed = list_rejected_rows(conn, RUN)
        assert [(s.input_row, s.reason.field) for s in listed] == [
            (1, "a"), (1, "b"), (3, "amount"), (5, "amount"),
        ]  # fmt: skip
        assert [s.input_row for s in list_rejected_rows(conn, RUN, limit=2)] == [1, 1]
        assert list_rejected_rows(conn, REPLAY) == []
        with pytest.raises(ValueError, match="limit must not be negative"):
            list_rejected_rows(conn, RUN, limit=-1)


def test_replay_reads_groups_resolves_once(engine: sa.Engine) -> None:
    _write(
        engine,
        _row(0, line=2, record_id="1", amount="-5")
        + _row(1, _reason("amount"), _reason("date", "DATE"), line=3, record_id="2", amount="x")
        + _row(2, line=5, record_id="3", amount="y"),
    )
    with engine.begin() as conn:
        replay = unresolved_rows(conn, RUN)
        assert [(r.input_row, r.file_line, len(r.reasons)) for r in replay] == [
            (0, 2, 1), (1, 3, 2), (2, 5, 1),
        ]  # fmt: skip
        assert replay[1].raw_values == {"record_id": "2", "amount": "x"}
        assert replay[1].reasons == (_reason("amount"), _reason("date", "DATE"))
        assert (replay[1].source_file, replay[1].domain) == ("in.csv", "sample")
        # rows 0 and 1 now pass: all their errors are resolved
        assert mark_resolved(conn, execution_id=RUN, input_rows=[0, 1], resolved_by=REPLAY) == 3
    with engine.connect() as conn:
        first = {s.rejected_row_id: s.resolved_at for s in list_rejected_rows(conn, RUN)}
        assert [r.input_row for r in unresolved_rows(conn, RUN)] == [2]
        assert count_rejected_rows(conn, RUN, unresolved_only=True) == 1
    with engine.begin() as conn:  # the second replay changes nothing
        assert mark_resolved(conn, execution_id=RUN, input_rows=[0, 1], resolved_by=REPLAY) == 0
        assert mark_resolved(conn, execution_id=RUN, input_rows=[], resolved_by=REPLAY) == 0
    with engine.connect() as conn:
        again = list_rejected_rows(conn, RUN)
        assert {s.rejected_row_id: s.resolved_at for s in again} == first
        assert [s.resolved_by_execution_id for s in again] == [REPLAY, REPLAY, REPLAY, None]


def test_resolving_needs_a_recorded_run(engine: sa.Engine) -> None:
    _write(engine, _row(0))
    with (
        pytest.raises(ConstraintViolationError, match="could not mark rejected rows"),
        engine.begin() as conn,
    ):
        mark_resolved(conn, execution_id=RUN, input_rows=[0], resolved_by="exec_nobody")
    with (
        pytest.raises(DataValidationError, match="input rows must be non-negative"),
        engine.begin() as conn,
    ):
        mark_resolved(conn, execution_id=RUN, input_rows=[-1], resolved_by=REPLAY)
    with engine.connect() as conn:
        assert count_rejected_rows(conn, RUN, unresolved_only=True) == 1


def test_new_reasons_replace_old_ones_and_the_same_ones_change_nothing(engine: sa.Engine) -> None:
    _write(engine, _row(0, _reason("a"), _reason("b"), line=2, v="1") + _row(1, line=3))
    with engine.connect() as conn:
        before = {s.rejected_row_id: s for s in list_rejected_rows(conn, RUN)}
    new = {0: [_reason("b"), _reason("c", "NEW", "new rule")]}
    with engine.begin() as conn:
        assert update_reasons(conn, execution_id=RUN, reasons=new) == 2  # a out, c in
    with engine.connect() as conn:
        after = list_rejected_rows(conn, RUN)
    row0 = [s for s in after if s.input_row == 0]
    assert [s.reason for s in row0] == [_reason("b"), _reason("c", "NEW", "new rule")]
    assert all(s.raw_values == {"v": "1"} and s.file_line == 2 for s in row0)
    kept = next(s for s in row0 if s.reason.field == "b")
    assert before[kept.rejected_row_id].reason == kept.reason  # untouched, same id
    with engine.begin() as conn:  # the same verdict again: nothing changes
        assert update_reasons(conn, execution_id=RUN, reasons=new) == 0
    with engine.connect() as conn:
        assert list_rejected_rows(conn, RUN) == after


def test_reasons_need_a_row_that_is_still_rejected(engine: sa.Engine) -> None:
    _write(engine, _row(0) + _row(1))
    with engine.begin() as conn:
        mark_resolved(conn, execution_id=RUN, input_rows=[1], resolved_by=REPLAY)
    cases: list[tuple[dict[int, list[RejectionReason]], str]] = [
        ({0: []}, "no reason given"),
        ({1: [_reason("a")]}, "no unresolved rejected row at this input row"),
        ({7: [_reason("a")]}, "no unresolved rejected row"),
    ]
    for reasons, match in cases:
        with pytest.raises(DataValidationError, match=match), engine.begin() as conn:
            update_reasons(conn, execution_id=RUN, reasons=reasons)
    with engine.begin() as conn:
        assert update_reasons(conn, execution_id=RUN, reasons={}) == 0


def test_raw_values_written_by_hand_in_another_shape_fail_clearly(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rejected_rows (execution_id, domain, input_row, error_code, "
                """message, raw_values) VALUES (:run, 'd', 4, 'E', 'm', '{"a": {"b": 1}}')"""
            ),
            {"run": RUN},
        )
    with engine.connect() as conn:
        with pytest.raises(DataValidationError, match=r"not in the quarantine's encoding.*row: 4"):
            list_rejected_rows(conn, RUN)
        with pytest.raises(DataValidationError, match="not in the quarantine's encoding"):
            unresolved_rows(conn, RUN)
