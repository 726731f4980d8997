"""Replay of a run's rejected rows with the current domain model, on a real PostgreSQL.

Each test records a run the way a load does: a stricter model than the sample's rejects
rows of a small text frame, the valid ones are loaded and the rejected ones quarantined
(``write_rejected_rows``) in the run's transaction. The replay then validates them with
the sample's own model, under which some pass.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RetryPolicy,
)
from pydantic import Field, StringConstraints
from sqlalchemy.engine import URL

from wdh_io.errors import WdhIoError
from wdh_io.quarantine import ReplayRow, write_rejected_rows
from wdh_orchestration import (
    REPLAY_JOB_NAME,
    Domain,
    ReplayError,
    ReplayResult,
    WarehouseResource,
    build_platform,
    replay_frame,
    replay_pipeline,
    replay_run,
    resolve_execution_id,
)
from wdh_orchestration._rejections import rejected_rows
from wdh_orchestration.domains.sample import SAMPLE, SampleRecord

pytestmark = pytest.mark.integration

RUN = "exec_20260101_000000_run"
REPLAY = "exec_20260102_000000_replay1"
REPLAY_2 = "exec_20260102_000000_replay2"

_Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class StrictRecord(SampleRecord):
    """The sample's model, stricter: amounts up to 1000 and a region in every row."""

    amount: Decimal = Field(max_digits=18, decimal_places=2, le=1000)
    region: _Region


STRICT = dataclasses.replace(SAMPLE, model=StrictRecord)

# Input row: what the strict model says -> what the sample's model says.
# 0 valid -> (loaded by the run)
# 1 amount over 1000 -> valid (updates record 2, loaded earlier with amount 50)
# 2 no region -> valid (inserted)
# 3 amount not a number and no region -> amount not a number (the region reason goes)
# 4 no customer name -> no customer name (the same reason, untouched)
# 5 amount over 1000 and no region -> valid (inserted; both its errors resolved)
RAW: dict[str, list[Any]] = {
    "record_id": ["1", "2", "3", "4", "5", "6"],
    "customer_name": ["Ann", "Bob", "Cy", "Di", None, "Eve"],
    "email": ["ann@example.com", None, None, None, None, None],
    "amount": ["10.00", "5000.00", "20", "not-a-number", "1", "2000.00"],
    "transaction_date": [f"2024-01-0{day}" for day in range(1, 7)],
    "region": ["North", "South", None, None, "East", None],
    "api_token": ["t0", "t1", "t2", "t3", "t4", "t5"],  # a secret-like column the table lacks
}


def record_run(
    warehouse: WarehouseResource, *, domain: Domain = STRICT, raw: dict[str, list[Any]] = RAW
) -> None:
    """Run *RUN*: validate *raw* with *domain*'s model (no error budget), load the valid
    rows, quarantine the rejected ones and complete the audit row, as a load does."""
    frame = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in raw.items()})
    audit, loader = warehouse.audit(), warehouse.loader()
    audit.start_run(
        execution_id=RUN, pipeline_name="sample_pipeline_job", input_file_path="sample_x.csv"
    )
    result = replay_pipeline(domain).run(frame, execution_id=RUN)
    with loader.transaction() as tx:
        tx.connection.execute(
            sa.text(
                "INSERT INTO sample_data (record_id, customer_name, amount, transaction_date)"
                " VALUES (2, 'Bob', 50, '2023-12-31')"
            )
        )
        tx.load_dataframe(
            result.output_data.assign(loaded_at=pd.Timestamp.now(tz="UTC")),
            "sample_data",
            upsert_keys=["record_id"],
        )
        write_rejected_rows(
            tx.connection,
            rejected_rows(result, file_lines=list(range(2, len(frame) + 2))),
            execution_id=RUN,
            domain=domain.name,
            source_file="sample_x.csv",
        )
        audit.complete_run(
            execution_id=RUN,
            status="success",
            rows_input=len(frame),
            rows_failed=result.rows_failed,
            connection=tx.connection,
        )


Db = Any  # the conftest's ``db`` fixture: read-only helpers on this test's database


def execute(url: URL, sql: str) -> None:
    """Run *sql* (DDL, several statements allowed) and commit."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def snapshot(db: Db) -> tuple[list[Any], list[Any]]:
    """Everything a replay may change in the data: the table and the quarantine."""
    data = db.query("SELECT * FROM sample_data ORDER BY record_id")
    quarantine = db.query("SELECT * FROM rejected_rows ORDER BY rejected_row_id")
    return [tuple(r) for r in data], [tuple(r) for r in quarantine]


def reasons(db: Db, *, unresolved: bool = True) -> dict[int, set[tuple[str | None, str]]]:
    """The run's (unresolved) reasons by input row: (field, code)."""
    where = " AND resolved_at IS NULL" if unresolved else ""
    out: dict[int, set[tuple[str | None, str]]] = {}
    for row in db.query(
        f"SELECT input_row, field, error_code FROM rejected_rows WHERE execution_id = :e{where}",
        e=RUN,
    ):
        out.setdefault(row.input_row, set()).add((row.field, row.error_code))
    return out


def replay(warehouse: WarehouseResource, replay_id: str = REPLAY, **kwargs: Any) -> ReplayResult:
    return replay_run(
        warehouse.loader(),
        warehouse.audit(),
        kwargs.pop("domains", (SAMPLE,)),
        execution_id=kwargs.pop("execution_id", RUN),
        replay_execution_id=replay_id,
        **kwargs,
    )


def test_the_strict_run_quarantined_five_rows(warehouse: WarehouseResource, db: Db) -> None:
    record_run(warehouse)
    assert reasons(db) == {
        1: {("amount", "less_than_equal")},
        2: {("region", "string_type")},
        3: {("amount", "decimal_parsing"), ("region", "string_type")},
        4: {("customer_name", "string_type")},
        5: {("amount", "less_than_equal"), ("region", "string_type")},
    }


def test_replay_upserts_the_rows_that_now_pass_and_re_reasons_the_others(
    warehouse: WarehouseResource, db: Db
) -> None:
    record_run(warehouse)
    untouched = db.scalar(
        "SELECT rejected_row_id FROM rejected_rows WHERE execution_id = :e AND input_row = 4",
        e=RUN,
    )
    before = db.scalar("SELECT loaded_at FROM sample_data WHERE record_id = 1")

    result = replay(warehouse)

    assert (result.rows_replayed, result.rows_resolved, result.rows_rejected) == (5, 3, 2)
    assert (result.rows_inserted, result.rows_updated, result.reasons_changed) == (2, 1, 1)
    assert result.summary() == (
        f"replayed 5 rejected rows of run {RUN} (sample) as {REPLAY}: 3 resolved "
        "(2 inserted, 1 updated), 2 still rejected (1 reasons changed)"
    )
    rows = {
        r.record_id: r
        for r in db.query("SELECT record_id, amount, region, loaded_at FROM sample_data")
    }
    assert sorted(rows) == [1, 2, 3, 6]
    assert rows[2].amount == Decimal("5000.00")  # updated from 50
    assert rows[3].region is None
    assert rows[1].loaded_at == before  # not replayed, not touched
    assert rows[2].loaded_at > before
    assert rows[3].loaded_at == rows[2].loaded_at  # stamped by the replay's load
    resolved = db.query(
        "SELECT input_row, resolved_by_execution_id, resolved_at FROM rejected_rows "
        "WHERE execution_id = :e AND resolved_at IS NOT NULL ORDER BY input_row",
        e=RUN,
    )
    assert [(r.input_row, r.resolved_by_execution_id) for r in resolved] == [
        (1, REPLAY),
        (2, REPLAY),
        (5, REPLAY),
        (5, REPLAY),  # both errors of the row
    ]
    assert reasons(db) == {
        3: {("amount", "decimal_parsing")},
        4: {("customer_name", "string_type")},
    }
    assert (
        db.scalar(
            "SELECT rejected_row_id FROM rejected_rows WHERE execution_id = :e AND input_row = 4",
            e=RUN,
        )
        == untouched
    )
    [audit] = db.query("SELECT * FROM pipeline_executions WHERE execution_id = :e", e=REPLAY)
    assert (audit.pipeline_name, audit.status, audit.input_file_path) == (
        "sample_replay",
        "success",
        "sample_x.csv",
    )
    assert (audit.rows_input, audit.rows_output, audit.rows_failed) == (5, 3, 2)
    metrics = db.metrics(REPLAY)
    assert (metrics["rows_resolved"], metrics["errors_resolved"]) == (3, 4)
    assert (metrics["rows_read"], metrics["rows_failed"]) == (5, 2)


def test_a_second_replay_changes_nothing(warehouse: WarehouseResource, db: Db) -> None:
    record_run(warehouse)
    replay(warehouse)
    first = snapshot(db)

    again = replay(warehouse, REPLAY_2)

    assert (again.rows_replayed, again.rows_resolved, again.reasons_changed) == (2, 0, 0)
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert snapshot(db) == first


def test_a_replay_with_the_same_model_changes_nothing(warehouse: WarehouseResource, db: Db) -> None:
    record_run(warehouse)
    before = snapshot(db)

    result = replay(warehouse, domains=(STRICT,))

    assert (result.rows_replayed, result.rows_resolved, result.reasons_changed) == (5, 0, 0)
    assert snapshot(db) == before


def test_a_run_without_rejected_rows_has_nothing_to_replay(
    warehouse: WarehouseResource, db: Db
) -> None:
    record_run(warehouse, domain=SAMPLE, raw={k: v[:3] for k, v in RAW.items()})
    runs = db.scalar("SELECT count(*) FROM pipeline_executions")

    result = replay(warehouse)

    assert result.nothing_to_replay
    assert result.replay_execution_id is None
    assert result.summary() == f"nothing to replay: run {RUN} has no unresolved rejected rows"
    assert db.scalar("SELECT count(*) FROM pipeline_executions") == runs  # no audit row


def test_a_run_whose_rows_are_all_resolved_has_nothing_to_replay(
    warehouse: WarehouseResource,
) -> None:
    record_run(warehouse, raw={k: v[:3] for k, v in RAW.items()})
    replay(warehouse)

    result = replay(warehouse, REPLAY_2)

    assert result.summary() == (
        f"nothing to replay: run {RUN} has no unresolved rejected rows "
        "(2 resolved by earlier replays)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"execution_id": "exec_nope"},
            "no run 'exec_nope' in pipeline_executions: check the execution id",
        ),
        ({"domain": "orders"}, "unknown domain 'orders'; the declared domains are: sample"),
        (
            {"domains": (dataclasses.replace(SAMPLE, name="other"),)},
            (
                "the rejected rows of run 'exec_20260101_000000_run' belong to domain 'sample', "
                "which is not declared (declared: other)"
            ),
        ),
        (
            {"domains": (SAMPLE, dataclasses.replace(SAMPLE, name="other")), "domain": "other"},
            (
                "run 'exec_20260101_000000_run' rejected no rows of domain 'other' "
                "(it rejected rows of: sample)"
            ),
        ),
        ({"execution_id": REPLAY}, f"run {REPLAY!r} cannot replay itself"),
    ],
    ids=["unknown-run", "unknown-domain", "undeclared-domain", "domain-without-rows", "itself"],
)
def test_a_replay_that_cannot_be_done_says_why_and_writes_nothing(
    warehouse: WarehouseResource, db: Db, kwargs: dict[str, Any], message: str
) -> None:
    record_run(warehouse)
    before = snapshot(db)

    with pytest.raises(ReplayError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        replay(warehouse, **kwargs)

    assert snapshot(db) == before


def test_a_model_the_rows_cannot_satisfy_fails_without_changes(
    warehouse: WarehouseResource, db: Db
) -> None:
    class NeedsCountry(SampleRecord):
        country: str

    record_run(warehouse)
    before = snapshot(db)

    with pytest.raises(ReplayError, match=r"cannot validate the rejected rows.*country"):
        replay(warehouse, domains=(dataclasses.replace(SAMPLE, model=NeedsCountry),))

    assert snapshot(db) == before
    [audit] = db.query("SELECT * FROM pipeline_executions WHERE execution_id = :e", e=REPLAY)
    assert audit.status == "failed"
    assert audit.error_message.startswith("replay failed: ReplayError: the current model")


@pytest.mark.parametrize(
    ("ddl", "error"),
    [
        # The upsert fails: record 2's new amount breaks a constraint of the table.
        (
            "ALTER TABLE sample_data ADD CONSTRAINT amount_small CHECK (amount < 1000)",
            "amount_small",
        ),
        # The last write fails, after the upsert and the resolved marks: deleting the
        # reason that no longer applies.
        (
            (
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'planted failure'; END $$; "
                "CREATE TRIGGER refuse_delete BEFORE DELETE ON rejected_rows "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            ),
            "planted failure",
        ),
    ],
    ids=["in-the-upsert", "in-the-last-write"],
)
def test_a_failure_mid_replay_leaves_everything_as_it_was(
    warehouse: WarehouseResource, db: Db, migrated_url: URL, ddl: str, error: str
) -> None:
    record_run(warehouse)
    execute(migrated_url, ddl)
    before = snapshot(db)

    with pytest.raises(WdhIoError, match=error):
        replay(warehouse)

    assert snapshot(db) == before
    [audit] = db.query("SELECT * FROM pipeline_executions WHERE execution_id = :e", e=REPLAY)
    assert (audit.pipeline_name, audit.status) == ("sample_replay", "failed")
    assert error in audit.error_message


def test_two_domains_sharing_input_rows_are_not_replayed_apart(
    warehouse: WarehouseResource, db: Db
) -> None:
    record_run(warehouse)
    with warehouse.engine.begin() as conn:
        write_rejected_rows(
            conn,
            rejected_rows(replay_pipeline(STRICT).run(pd.DataFrame({"record_id": ["1", "2"]}))),
            execution_id=RUN,
            domain="other",
        )
    other = dataclasses.replace(SAMPLE, name="other", table="other_data")
    before = snapshot(db)

    with pytest.raises(ReplayError, match=r"several domains \(other, sample\): name the one"):
        replay(warehouse, domains=(SAMPLE, other))
    with pytest.raises(ReplayError, match="another domain at the same input rows"):
        replay(warehouse, domains=(SAMPLE, other), domain="sample")

    assert snapshot(db) == before


def test_the_replay_frame_is_the_text_the_rows_were_read_as() -> None:
    rows = [
        ReplayRow(
            input_row=7,
            file_line=9,
            source_file=None,
            domain="sample",
            raw_values={"zeta": "z", "region": None, "record_id": "7"},
        ),
        ReplayRow(
            input_row=3,
            file_line=5,
            source_file=None,
            domain="sample",
            raw_values={"record_id": "3", "region": "North", "zeta": 1},
        ),
    ]

    frame = replay_frame(rows, SampleRecord)

    assert list(frame.columns) == ["record_id", "region", "zeta"]  # model order first
    assert list(frame.index) == [7, 3]
    assert frame["record_id"].dtype == pd.StringDtype(na_value=float("nan"))
    assert frame["region"].isna().tolist() == [True, False]
    assert frame["zeta"].tolist() == ["z", 1]  # not all text: kept as stored


# ---------------------------------------------------------------- the Dagster job


def run_replay_job(
    warehouse: WarehouseResource,
    instance: DagsterInstance,
    landing_dir: Path,
    config: dict[str, Any],
) -> ExecuteInProcessResult:
    platform = build_platform(
        (SAMPLE,), landing_dir=landing_dir, retry_policy=RetryPolicy(max_retries=2, delay=0)
    )
    defs = Definitions(**platform.definitions_kwargs(), resources={"warehouse": warehouse})
    job = defs.resolve_job_def(REPLAY_JOB_NAME)
    return job.execute_in_process(
        run_config={"ops": {"replay": {"config": config}}},
        instance=instance,
        raise_on_error=False,
    )


def test_the_replay_job_replays_a_run(
    warehouse: WarehouseResource, instance: DagsterInstance, landing_dir: Path, db: Db
) -> None:
    record_run(warehouse)

    result = run_replay_job(warehouse, instance, landing_dir, {"execution_id": RUN})

    assert result.success
    assert result.output_for_node("replay") == 3
    [audit] = db.query("SELECT * FROM pipeline_executions WHERE pipeline_name = 'sample_replay'")
    assert audit.execution_id.endswith(result.run_id)  # the Dagster run's audit id
    assert audit.status == "success"
    assert reasons(db).keys() == {3, 4}
    [output] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_OUTPUT]
    metadata = output.event_specific_data.metadata  # type: ignore[union-attr]
    assert metadata["rows_resolved"].value == 3
    assert metadata["replayed_execution_id"].value == RUN


def test_the_replay_job_fails_in_one_line_for_an_unknown_run(
    warehouse: WarehouseResource, instance: DagsterInstance, landing_dir: Path, db: Db
) -> None:
    result = run_replay_job(warehouse, instance, landing_dir, {"execution_id": "exec_nope"})

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    user = failure.step_failure_data.user_failure_data
    assert user is not None
    description = str(user.description)
    assert description.startswith("cannot replay: no run 'exec_nope' in pipeline_executions")
    assert "\n" not in description
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []  # a permanent error
    [audit] = db.query("SELECT * FROM pipeline_executions")
    assert (audit.pipeline_name, audit.status) == (REPLAY_JOB_NAME, "failed")
    assert "no run 'exec_nope'" in str(audit.error_message)


def test_a_dagster_run_id_names_its_runs_execution_id(warehouse: WarehouseResource) -> None:
    audit = warehouse.audit()
    for execution_id in ("exec_20260101_000000_ab_cd", "exec_20260101_000001_x%y", "ab_cd"):
        audit.start_run(execution_id=execution_id, pipeline_name="p")
    with warehouse.engine.connect() as conn:
        # an execution id names itself, even when it is another run's suffix
        assert resolve_execution_id(conn, "ab_cd") == "ab_cd"
        assert resolve_execution_id(conn, RUN) == RUN
        # a Dagster run id: the one audit row that ends in _<run id>
        assert resolve_execution_id(conn, "x%y") == "exec_20260101_000001_x%y"
        # two audit rows end in _cd: ambiguous, left as typed
        assert resolve_execution_id(conn, "cd") == "cd"
        # LIKE's wildcards in the input are text, and no match leaves the input as it is
        assert resolve_execution_id(conn, "x_y") == "x_y"
        assert resolve_execution_id(conn, "%") == "%"
