"""execute_with_retry / RetryConfig: the contract the warehouse loader relies on."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from wdh_domain.errors import PipelineConfigError
from wdh_domain.pipelines import RetryConfig, execute_with_retry

pytestmark = pytest.mark.unit


class TransientError(ConnectionError):
    """A subclass of a whitelisted type."""


def failing(times: int, error: BaseException, result: Any = "ok") -> Any:
    calls = {"n": 0}

    def func() -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return result

    func.calls = calls  # type: ignore[attr-defined]
    return func


def test_default_config_matches_the_contract() -> None:
    config = RetryConfig()

    assert (config.max_retries, config.base_delay_s, config.backoff_factor) == (3, 1.0, 2.0)
    assert (config.max_delay_s, config.jitter, config.retry_on) == (30.0, False, ())
    assert [config.delay_for(n) for n in range(3)] == [1.0, 2.0, 4.0]
    assert RetryConfig(max_delay_s=5.0).delay_for(10) == 5.0
    assert RetryConfig().delay_for(10_000) == 30.0


def test_retry_logic_exponential_backoff_then_success() -> None:
    sleeps: list[float] = []
    func = failing(3, TransientError("connection reset"))
    config = RetryConfig(retry_on=(ConnectionError,))

    with capture_logs() as logs:
        result = execute_with_retry(func, config, operation="load", sleep=sleeps.append)

    assert result == "ok"
    assert sleeps == [1.0, 2.0, 4.0]
    assert [entry["event"] for entry in logs] == ["retry.attempt"] * 3
    assert logs[0] == {
        "event": "retry.attempt",
        "log_level": "warning",
        "attempt": 1,
        "max_retries": 3,
        "delay_s": 1.0,
        "operation": "load",
        "error_type": "TransientError",
        "error": "connection reset",
    }


def test_max_retries_exhausted_reraises_the_last_error_unchanged() -> None:
    errors = [ConnectionError(f"attempt {n}") for n in range(1, 5)]
    calls: list[int] = []

    def func() -> None:
        calls.append(1)
        raise errors[len(calls) - 1]

    sleeps: list[float] = []
    with pytest.raises(ConnectionError) as caught:
        execute_with_retry(func, RetryConfig(retry_on=(ConnectionError,)), sleep=sleeps.append)

    assert caught.value is errors[3]
    assert len(calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_non_retryable_error_raises_at_once() -> None:
    sleeps: list[float] = []
    func = failing(1, ValueError("bad data"))

    with capture_logs() as logs, pytest.raises(ValueError, match="bad data"):
        execute_with_retry(func, RetryConfig(retry_on=(ConnectionError,)), sleep=sleeps.append)

    assert sleeps == []
    assert logs == []
    assert func.calls["n"] == 1


def test_predicate_is_or_ed_with_the_whitelist() -> None:
    sleeps: list[float] = []
    func = failing(2, RuntimeError("deadlock detected"))

    result = execute_with_retry(
        func,
        RetryConfig(max_retries=2, base_delay_s=0.5, retry_on=(ConnectionError,)),
        is_retryable=lambda exc: "deadlock" in str(exc),
        sleep=sleeps.append,
    )

    assert result == "ok"
    assert sleeps == [0.5, 1.0]


def test_jitter_draws_a_delay_between_zero_and_the_backoff() -> None:
    sleeps: list[float] = []
    config = RetryConfig(max_retries=6, base_delay_s=1.0, jitter=True, retry_on=(OSError,))

    execute_with_retry(failing(6, OSError("x")), config, sleep=sleeps.append)

    assert len(sleeps) == 6
    assert all(0.0 <= s <= config.delay_for(n) for n, s in enumerate(sleeps))


def test_custom_logger_and_zero_retries() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def warning(self, event: str, **fields: Any) -> None:
            self.calls.append((event, fields))

    recorder = Recorder()
    execute_with_retry(
        failing(1, TimeoutError("t")),
        RetryConfig(max_retries=1, retry_on=(TimeoutError,)),
        sleep=lambda _: None,
        logger=recorder,
    )
    with pytest.raises(TimeoutError):
        execute_with_retry(
            failing(1, TimeoutError("t")),
            RetryConfig(max_retries=0, retry_on=(TimeoutError,)),
            sleep=lambda _: None,
        )

    assert recorder.calls[0][0] == "retry.attempt"
    assert recorder.calls[0][1]["attempt"] == 1


def test_logged_error_masks_url_passwords() -> None:
    error = ConnectionError("could not connect to postgresql://wdh:s3cr3t-planted@db:5432/x")

    with capture_logs() as logs:
        execute_with_retry(
            failing(1, error), RetryConfig(retry_on=(ConnectionError,)), sleep=lambda _: None
        )

    assert "s3cr3t-planted" not in str(logs)
    assert "postgresql://wdh:***@db:5432/x" in logs[0]["error"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"base_delay_s": -1.0}, "delays must be >= 0"),
        ({"max_delay_s": -1.0}, "delays must be >= 0"),
        ({"backoff_factor": 0.5}, "backoff_factor must be >= 1"),
        ({"retry_on": (ValueError, "oops")}, "retry_on must hold exception types, got 'oops'"),
    ],
)
def test_invalid_retry_config_is_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        RetryConfig(**options)
