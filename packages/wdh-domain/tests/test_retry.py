"""execute_with_retry / RetryConfig: the contract the warehouse loader relies on (AC-1.10.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from wdh_domain.errors import PipelineConfigError
from wdh_domain.pipelines import DEFAULT_RETRIABLE_ERRORS, RetryConfig, execute_with_retry

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


def test_default_config_uses_the_specification_names() -> None:
    config = RetryConfig()

    assert (config.max_attempts, config.backoff_ms, config.backoff_factor) == (4, 1000, 2.0)
    assert (config.max_backoff_ms, config.jitter) == (30_000, False)
    assert config.retriable_errors == frozenset({ConnectionError, TimeoutError})
    assert config.retriable_errors == DEFAULT_RETRIABLE_ERRORS
    assert [config.sleep_ms_for(n) for n in (1, 2, 3)] == [1000.0, 2000.0, 4000.0]
    assert RetryConfig(max_backoff_ms=5000).sleep_ms_for(10) == 5000.0
    assert RetryConfig().sleep_ms_for(10_000) == 30_000.0


def test_default_whitelist_retries_connection_and_timeout_errors() -> None:
    sleeps: list[float] = []

    assert execute_with_retry(failing(1, TimeoutError("slow")), RetryConfig(), sleep=sleeps.append)
    assert execute_with_retry(failing(1, TransientError("x")), RetryConfig(), sleep=sleeps.append)

    assert sleeps == [1.0, 1.0]


def test_retriable_errors_accepts_any_iterable_and_stores_a_frozenset() -> None:
    config = RetryConfig(retriable_errors={OSError})  # type: ignore[arg-type]

    assert config.retriable_errors == frozenset({OSError})
    assert config.is_retriable(TransientError("x"))
    assert not config.is_retriable(ValueError("x"))


def test_retry_logic_exponential_backoff_then_success() -> None:
    sleeps: list[float] = []
    func = failing(3, TransientError("connection reset"))
    config = RetryConfig(retriable_errors=frozenset({ConnectionError}))

    with capture_logs() as logs:
        result = execute_with_retry(func, config, operation="load", sleep=sleeps.append)

    assert result == "ok"
    assert sleeps == [1.0, 2.0, 4.0]
    assert [entry["event"] for entry in logs] == ["retry.attempt"] * 3
    assert logs[0] == {
        "event": "retry.attempt",
        "log_level": "warning",
        "attempt": 1,
        "max_attempts": 4,
        "sleep_ms": 1000.0,
        "operation": "load",
        "error_type": "TransientError",
        "error": "connection reset",
    }
    assert [entry["attempt"] for entry in logs] == [1, 2, 3]
    assert [entry["sleep_ms"] for entry in logs] == [1000.0, 2000.0, 4000.0]


def test_max_attempts_exhausted_reraises_the_last_error_unchanged() -> None:
    errors = [ConnectionError(f"attempt {n}") for n in range(1, 5)]
    calls: list[int] = []

    def func() -> None:
        calls.append(1)
        raise errors[len(calls) - 1]

    sleeps: list[float] = []
    with pytest.raises(ConnectionError) as caught:
        execute_with_retry(func, RetryConfig(), sleep=sleeps.append)

    assert caught.value is errors[3]
    assert len(calls) == 4  # max_attempts counts the first attempt
    assert sleeps == [1.0, 2.0, 4.0]


def test_non_retryable_error_raises_at_once() -> None:
    sleeps: list[float] = []
    func = failing(1, ValueError("bad data"))

    with capture_logs() as logs, pytest.raises(ValueError, match="bad data"):
        execute_with_retry(func, RetryConfig(), sleep=sleeps.append)

    assert sleeps == []
    assert logs == []
    assert func.calls["n"] == 1


def test_predicate_is_or_ed_with_the_whitelist() -> None:
    sleeps: list[float] = []
    func = failing(2, RuntimeError("deadlock detected"))

    result = execute_with_retry(
        func,
        RetryConfig(max_attempts=3, backoff_ms=500, retriable_errors=frozenset()),
        is_retryable=lambda exc: "deadlock" in str(exc),
        sleep=sleeps.append,
    )

    assert result == "ok"
    assert sleeps == [0.5, 1.0]


def test_the_whitelist_decision_is_config_is_retriable() -> None:
    """execute_with_retry asks the config, so a config with its own rule is honoured."""

    @dataclass(frozen=True, slots=True)
    class RetryOnMessage(RetryConfig):
        def is_retriable(self, exc: BaseException) -> bool:
            return "try again" in str(exc)

    sleeps: list[float] = []
    config = RetryOnMessage(max_attempts=3, retriable_errors=frozenset())

    assert execute_with_retry(failing(2, RuntimeError("try again")), config, sleep=sleeps.append)
    with pytest.raises(ConnectionError):
        execute_with_retry(failing(1, ConnectionError("down")), config, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0]


def test_jitter_draws_a_sleep_between_zero_and_the_backoff() -> None:
    sleeps: list[float] = []
    config = RetryConfig(max_attempts=7, jitter=True, retriable_errors=frozenset({OSError}))

    execute_with_retry(failing(6, OSError("x")), config, sleep=sleeps.append)

    assert len(sleeps) == 6
    assert all(0.0 <= s * 1000 <= config.sleep_ms_for(n) for n, s in enumerate(sleeps, 1))


def test_custom_logger_and_a_single_attempt() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def warning(self, event: str, **fields: Any) -> None:
            self.calls.append((event, fields))

    recorder = Recorder()
    execute_with_retry(
        failing(1, TimeoutError("t")),
        RetryConfig(max_attempts=2),
        sleep=lambda _: None,
        logger=recorder,
    )
    with pytest.raises(TimeoutError):
        execute_with_retry(
            failing(1, TimeoutError("t")), RetryConfig(max_attempts=1), sleep=lambda _: None
        )

    assert recorder.calls[0][0] == "retry.attempt"
    assert recorder.calls[0][1]["attempt"] == 1
    assert recorder.calls[0][1]["max_attempts"] == 2


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("no pg://wdh:s3cr3t-planted@db/x", "pg://wdh:***@db/x"),  # pragma: allowlist secret
        ("connect failed: host=db password=s3cr3t-planted", "password=***"),
        ("connect failed: DB_PASS=s3cr3t-planted", "DB_PASS=***"),
    ],
)
def test_logged_error_masks_secrets(message: str, shown: str) -> None:
    with capture_logs() as logs:
        execute_with_retry(
            failing(1, ConnectionError(message)), RetryConfig(), sleep=lambda _: None
        )

    assert "s3cr3t-planted" not in str(logs)
    assert shown in logs[0]["error"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an int >= 1 .it counts the first attempt"),
        ({"backoff_ms": -1}, "backoffs must be >= 0"),
        ({"max_backoff_ms": -1}, "backoffs must be >= 0"),
        ({"backoff_factor": 0.5}, "backoff_factor must be >= 1"),
        (
            {"retriable_errors": frozenset({ValueError, "oops"})},
            "retriable_errors must hold exception types, got 'oops'",
        ),
        ({"retriable_errors": ValueError}, "retriable_errors must be a set of exception types"),
    ],
)
def test_invalid_retry_config_is_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        RetryConfig(**options)
