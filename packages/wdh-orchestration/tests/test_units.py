"""Unit tests of the orchestration helpers: retries, failure text, metadata, resources."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import Backoff, Failure, Jitter, RetryPolicy

from wdh_config import Settings
from wdh_domain.errors import ErrorContext
from wdh_domain.pipelines import FailedRow, Pipeline, RetryConfig
from wdh_io.errors import ConnectionLostError, ConstraintViolationError, ReaderError
from wdh_orchestration import (
    SAMPLE_RETRY,
    SCHEDULES,
    SENSORS,
    WarehouseResource,
    describe_failure,
    retry_only_transient,
    retry_policy_for,
)
from wdh_orchestration._metadata import failures_preview
from wdh_orchestration._validation import validate_rows

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


def _waits_s(policy: RetryPolicy) -> list[float]:
    """The seconds Dagster waits before each retry under *policy* (its own formula)."""
    return [float(policy.calculate_delay(n)) for n in range(1, policy.max_retries + 1)]


def _config_waits_s(config: RetryConfig) -> list[float]:
    return [config.sleep_ms_for(n) / 1000 for n in range(1, config.max_attempts)]


@pytest.mark.parametrize("config", [RetryConfig(), SAMPLE_RETRY], ids=["default", "sample"])
def test_retry_policy_is_the_closest_dagster_schedule_to_the_retry_config(
    config: RetryConfig,
) -> None:
    policy = retry_policy_for(config)
    assert _config_waits_s(config) == [1.0, 2.0, 4.0]
    assert policy.max_retries == config.max_attempts - 1 == 3
    assert (policy.delay, policy.backoff, policy.jitter) == (1.0, Backoff.LINEAR, None)
    assert _waits_s(policy) == [1.0, 2.0, 3.0]  # the first two waits exact, the third 1 s short

    def error(backoff: Backoff | None) -> float:
        other = RetryPolicy(max_retries=3, delay=1.0, backoff=backoff)
        return sum(
            abs(a - b) for a, b in zip(_waits_s(other), _config_waits_s(config), strict=True)
        )

    # Dagster's exponential backoff waits 1, 3, 7 s; a constant one 1, 1, 1 s.
    assert error(Backoff.LINEAR) < min(error(Backoff.EXPONENTIAL), error(None))


def test_retry_policy_follows_the_cap_and_the_growth_factor() -> None:
    capped = RetryConfig(max_attempts=6, backoff_ms=1000, max_backoff_ms=2000)  # 1,2,2,2,2 s
    assert retry_policy_for(capped).backoff is None
    assert _waits_s(retry_policy_for(capped)) == [1.0] * 5
    steep = RetryConfig(max_attempts=4, backoff_ms=100, backoff_factor=4.0)  # 0.1, 0.4, 1.6 s
    policy = retry_policy_for(steep)
    assert policy.backoff is Backoff.EXPONENTIAL
    assert _waits_s(policy) == pytest.approx([0.1, 0.3, 0.7])
    assert retry_policy_for(RetryConfig(max_attempts=1)).max_retries == 0


def test_retry_policy_without_growth_or_with_jitter() -> None:
    flat = retry_policy_for(RetryConfig(max_attempts=2, backoff_ms=500, backoff_factor=1.0))
    assert (flat.max_retries, flat.delay, flat.backoff) == (1, 0.5, None)
    assert retry_policy_for(RetryConfig(jitter=True)).jitter is Jitter.FULL


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
        "cannot load the rows: ConstraintViolationError: duplicate key | table: sample_data "
        "| column: record_id"
    )
    assert failure.metadata["error_type"].value == "ConstraintViolationError"
    assert isinstance(failure.__cause__, ConstraintViolationError)


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
    assert (
        describe_failure(reader) == "ReaderError: expected 6 fields, saw 8 | file: in.csv | line: 3"
    )
    assert describe_failure(Failure("told")) == "told"
    assert describe_failure(KeyError()) == "KeyError"


def _failed(row_number: int | None, message: str, data: dict[str, object]) -> FailedRow:
    error = ErrorContext(
        error_type="VALIDATION_ERROR", message=message, row_number=row_number, field="amount"
    )
    return FailedRow(
        row_number=row_number, step="ValidateDataTypesStep", data=data, errors=(error,)
    )


def test_failures_preview_is_a_markdown_table_with_rows_and_lines() -> None:
    rows = [
        _failed(6, "not a number | really", {"amount": "x|y", "password": PLANTED}),
        _failed(None, "untraceable", {"amount": float("nan")}),
    ]
    preview = failures_preview(rows)
    lines = preview.splitlines()
    assert lines[0] == "| row | csv line | step | errors | values |"
    assert lines[2].startswith(
        "| 6 | 8 | ValidateDataTypesStep | [VALIDATION_ERROR] not a number \\| really"
    )
    assert "amount='x\\|y'" in lines[2]  # pipes inside cells are escaped
    assert PLANTED not in preview  # sensitive keys are masked
    assert lines[3].startswith("| ? | ? |")
    assert "amount=None" in lines[3]


def test_failures_preview_limits_and_empty() -> None:
    assert failures_preview([]) == "No failed rows."
    many = [_failed(i, "bad", {"amount": i}) for i in range(12)]
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


def test_warehouse_outside_a_run_says_so() -> None:
    with pytest.raises(RuntimeError, match="outside a run"):
        _ = WarehouseResource().engine


def test_schedules_and_sensors_are_empty_until_epic_7() -> None:
    assert SCHEDULES == []
    assert SENSORS == []


def test_validate_rows_runs_the_pipeline_under_the_given_execution_id() -> None:
    # The op passes its audit id, so the pipeline's events and the audit row share it.
    result = validate_rows(pd.DataFrame({"a": [1]}), Pipeline("p"), execution_id="op-run-7")

    assert result.execution_id == "op-run-7"
    assert validate_rows(pd.DataFrame({"a": [1]}), Pipeline("p")).execution_id.startswith("exec_")
