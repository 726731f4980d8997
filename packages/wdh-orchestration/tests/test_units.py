"""Unit tests of the orchestration helpers: retries, failure text, metadata, resources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import Backoff, Failure, Jitter, RetryPolicy
from sqlalchemy.exc import OperationalError

from wdh_config import Settings
from wdh_domain.pipelines import (
    ROW_COLUMN,
    Pipeline,
    PipelineConfig,
    PipelineContext,
    PipelineResult,
    RetryConfig,
    RowIssue,
    StepResult,
)
from wdh_io.errors import ConnectionLostError, ConstraintViolationError, ReaderError
from wdh_orchestration import (
    Domain,
    WarehouseResource,
    build_platform,
    describe_failure,
    is_transient,
    retry_only_transient,
    retry_policy_for,
)
from wdh_orchestration._metadata import failures_preview
from wdh_orchestration._validation import step_metric_name, validate_rows
from wdh_orchestration.domains.sample import SAMPLE, SampleRecord

pytestmark = pytest.mark.unit


@pytest.fixture
def log_level_debug() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    yield
    root.setLevel(before)


PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


def test_retry_policy_of_the_default_retry_config() -> None:
    policy = retry_policy_for(RetryConfig())
    assert (policy.max_retries, policy.delay, policy.backoff, policy.jitter) == (
        3,
        1.0,
        Backoff.LINEAR,
        None,
    )
    # Dagster's own schedule for it: 1 s, 2 s, 3 s (RetryConfig's would be 1 s, 2 s, 4 s).
    assert [policy.calculate_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    assert retry_policy_for(RetryConfig(max_attempts=1, jitter=True)) == RetryPolicy(
        max_retries=0, delay=1.0, backoff=Backoff.LINEAR, jitter=Jitter.FULL
    )


def test_the_sample_job_uses_the_default_retry_policy(tmp_path: Path) -> None:
    job = build_platform([SAMPLE], landing_dir=tmp_path).domains["sample"].job
    assert job.name == "sample_pipeline_job"
    assert job.op_retry_policy == retry_policy_for(RetryConfig())
    assert job.tags == {"domain": "sample"}


def test_long_step_names_make_metric_names_that_fit_and_stay_apart() -> None:
    assert step_metric_name("ValidateDataTypesStep") == "step_duration_ms.ValidateDataTypesStep"
    exactly = "x" * (100 - len("step_duration_ms."))
    assert step_metric_name(exactly) == f"step_duration_ms.{exactly}"
    # Two long names that differ only after the cut, and one just past the limit.
    first, second = "Step" + "a" * 120 + "1", "Step" + "a" * 120 + "2"
    names = [step_metric_name(name) for name in (first, second, exactly + "y")]
    assert len(set(names)) == 3
    assert [len(name) for name in names] == [100, 100, 100]
    assert names[0].startswith("step_duration_ms.Stepaaa")
    assert names[0][-9] == "~"
    assert step_metric_name(first) == step_metric_name(first)  # stable across runs


def test_transient_errors_reach_the_retry_policy_unchanged() -> None:
    error = ConnectionLostError("server closed the connection")
    with pytest.raises(ConnectionLostError) as caught, retry_only_transient("cannot load"):
        raise error
    assert caught.value is error


def test_other_errors_become_failures_that_are_never_retried() -> None:
    with pytest.raises(Failure) as caught, retry_only_transient("cannot load the rows"):
        raise ConstraintViolationError("duplicate key", table="sample_data", column="record_id")
    failure = caught.value
    assert failure.allow_retries is False
    assert failure.description == (
        "cannot load the rows: duplicate key | table: sample_data | column: record_id"
    )
    assert failure.metadata["error_type"].value == "ConstraintViolationError"
    assert failure.__cause__ is None  # no traceback of the cause under the one line...
    assert isinstance(failure.__context__, ConstraintViolationError)  # ...kept for debugging


def test_at_debug_level_the_cause_is_attached(log_level_debug: None) -> None:
    with pytest.raises(Failure) as caught, retry_only_transient("cannot load the rows"):
        raise ConstraintViolationError("duplicate key", table="sample_data")
    assert isinstance(caught.value.__cause__, ConstraintViolationError)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("server closed the connection unexpectedly", True),
        ('connection to server at "db" failed: Connection refused', True),
        ('FATAL:  password authentication failed for user "wdh"', False),
        ('FATAL:  database "wdh" does not exist', False),
        ('FATAL:  role "wdh" does not exist', False),
        ('could not translate host name "dbb" to address', False),
    ],
)
def test_access_errors_are_permanent_even_as_lost_connections(
    message: str, transient: bool
) -> None:
    assert is_transient(ConnectionLostError(message)) is transient
    assert is_transient(ConstraintViolationError(message)) is False


def test_a_transient_error_on_the_last_attempt_becomes_a_one_line_failure() -> None:
    with (
        pytest.raises(Failure) as caught,
        retry_only_transient("cannot load the rows", last_attempt=True),
    ):
        raise ConnectionLostError("server closed the connection unexpectedly")
    assert caught.value.description == (
        "cannot load the rows: server closed the connection unexpectedly (retried, no attempt left)"
    )


def test_a_failure_raised_inside_is_kept_as_it_is() -> None:
    original = Failure("already explained")
    with pytest.raises(Failure) as caught, retry_only_transient("x"):
        raise original
    assert caught.value is original


def test_failure_descriptions_hide_secrets() -> None:
    leaked = RuntimeError(f"could not connect to postgresql://wdh:{PLANTED}@db:5432/wdh")
    text = describe_failure(leaked)
    assert PLANTED not in text
    assert text.startswith("RuntimeError: could not connect to postgresql://wdh:")
    reader = ReaderError("expected 6 fields, saw 8", path="in.csv", line=3)
    assert describe_failure(reader) == "expected 6 fields, saw 8 | file: in.csv | line: 3"
    assert describe_failure(RuntimeError("two\nlines")) == "RuntimeError: two; lines"
    assert describe_failure(Failure("told")) == "told"
    assert describe_failure(KeyError()) == "KeyError"


def test_an_untranslated_driver_error_is_described_by_the_driver_message() -> None:
    """Not SQLAlchemy's text: it quotes the statement, its parameters and a link."""
    driver = OperationalError(
        "SELECT secret_value", {"p": "a-row-value"}, Exception('FATAL:  no database "x"\n')
    )
    assert describe_failure(driver) == 'Exception: FATAL:  no database "x"'


class _RejectNoted:
    """Fails the rows that carry a ``note``, with the note as the message."""

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row.get("note"):
            return StepResult(row=row, errors=[RowIssue(str(row["note"]), field="amount")])
        return StepResult(row=row)


class _Rebuild:
    """Builds new rows without the provenance column (their row numbers are lost)."""

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        return df.drop(columns=ROW_COLUMN).reset_index(drop=True).iloc[::-1]


def _result(frame: pd.DataFrame, *, untraceable: bool = False) -> PipelineResult:
    pipeline = Pipeline("p", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    if untraceable:
        pipeline.add_step(_Rebuild())
    return pipeline.add_step(_RejectNoted(), name="ValidateDataTypesStep").run(frame)


def test_failures_preview_is_a_markdown_table_with_rows_and_lines() -> None:
    notes = [""] * 6 + ["not a number | really"]
    frame = pd.DataFrame({"amount": ["1"] * 6 + ["x|y"], "password": PLANTED, "note": notes})
    lost = pd.DataFrame({"amount": [float("nan"), 1.0], "note": ["untraceable", ""]})

    lines = failures_preview(_result(frame)).splitlines()
    untraced = failures_preview(_result(lost, untraceable=True)).splitlines()

    assert lines[0] == "| row | csv line | step | errors | values |"
    assert lines[2].startswith(
        "| 6 | 8 | ValidateDataTypesStep | [VALIDATION_ERROR] not a number \\| really"
    )
    assert "amount='x\\|y'" in lines[2]  # pipes inside cells are escaped
    assert PLANTED not in "\n".join(lines)  # sensitive keys are masked
    assert untraced[2].startswith("| ? | ? |")
    assert "amount=None" in untraced[2]


def test_failures_preview_limits_and_empty() -> None:
    assert failures_preview(_result(pd.DataFrame({"amount": [1], "note": [""]}))) == (
        "No failed rows."
    )
    many = _result(pd.DataFrame({"amount": range(12), "note": ["bad"] * 12}))
    preview = failures_preview(many, limit=10)
    assert preview.count("| ValidateDataTypesStep |") == 10
    assert preview.endswith("… and 2 more failed rows.")


def test_warehouse_from_settings_keeps_the_url_out_of_its_config() -> None:
    settings = Settings(
        environment="staging",
        database_url=f"postgresql+psycopg2://wdh:{PLANTED}@db:5432/wdh",
        db_pool_size=3,
        db_batch_size=250,
    )
    warehouse = WarehouseResource.from_settings(settings)
    assert (warehouse.database_url, warehouse.pool_size, warehouse.batch_size) == (None, 3, 250)
    assert PLANTED not in repr(warehouse)


def test_the_loader_gets_the_timeout_settings() -> None:
    settings = Settings(db_lock_timeout_ms=1_500, db_statement_timeout_ms=90_000)
    configured = WarehouseResource.from_settings(settings)
    warehouse = WarehouseResource(
        database_url="sqlite://",
        lock_timeout_ms=configured.lock_timeout_ms,
        statement_timeout_ms=configured.statement_timeout_ms,
    )
    loader = warehouse.loader()
    assert (loader.lock_timeout_ms, loader.statement_timeout_ms) == (1_500, 90_000)


def test_a_domain_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="not fields of SampleRecord"):
        Domain(name="x", model=SampleRecord, table="t", keys=("nope",), file_pattern="*.csv")
    with pytest.raises(ValueError, match="at least one column"):
        Domain(name="x", model=SampleRecord, table="t", keys=(), file_pattern="*.csv")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Domain(
            name="x",
            model=SampleRecord,
            table="t",
            keys=("record_id",),
            file_pattern="*.csv",
            max_failure_rate=1.5,
        )
    assert SAMPLE.required_columns == (
        "record_id",
        "customer_name",
        "amount",
        "transaction_date",
    )


def test_two_domains_cannot_share_a_table(tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="share a table"):
        build_platform([SAMPLE, replace(SAMPLE, name="other")], landing_dir=tmp_path)


def test_validate_rows_runs_the_pipeline_under_the_given_execution_id() -> None:
    # The op passes its audit id, so the pipeline's events and the audit row share it.
    result = validate_rows(pd.DataFrame({"a": [1]}), Pipeline("p"), execution_id="op-run-7")

    assert result.execution_id == "op-run-7"
    assert validate_rows(pd.DataFrame({"a": [1]}), Pipeline("p")).execution_id.startswith("exec_")
