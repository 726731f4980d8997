"""configure_logging / get_logger: structure, context, levels, formats, files, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from wdh_logging import (
    LOG_FILE_NAME,
    LogFormat,
    configure_logging,
    get_logger,
    reset_logging,
)

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret
PLANTED_URL = f"postgresql+psycopg2://wdh:{PLANTED}@db.internal:5432/wdh"

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """Configure logging into a fresh buffer; undo everything after the test."""

    def _configure(**kwargs: Any) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(stream=buffer, **kwargs)
        return buffer

    root = logging.getLogger()
    level = root.level
    yield _configure
    reset_logging()
    root.setLevel(level)


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


def emit_everything_secret(logger_name: str) -> None:
    """Log the planted secret in every way a caller might: it must never come out."""
    logger = get_logger(logger_name).bind(domain="annuity", database_url=PLANTED_URL)
    logger.info(
        "config.loaded",
        settings={"db": {"DB_PASSWORD": PLANTED, "hosts": [("h", {"x-api-key": PLANTED})]}},
        password=SecretStr(PLANTED),
        secret_value=SecretStr(PLANTED),
        note=f"connecting to {PLANTED_URL}",
    )
    logger.warning("retrying %s", PLANTED_URL)
    try:
        try:
            raise ConnectionError(f"could not connect to {PLANTED_URL}")
        except ConnectionError as exc:
            raise RuntimeError(f"load failed for {PLANTED_URL}") from exc
    except RuntimeError:
        logger.exception("database.load.failed", cause=f"server at {PLANTED_URL}")
    foreign = logging.getLogger("sqlalchemy.pool.test")
    foreign.warning("stdlib says %s", PLANTED_URL)
    try:
        raise ValueError(f"alembic: bad url {PLANTED_URL}")
    except ValueError:
        foreign.exception("stdlib failure with %s", {"password": PLANTED})


def test_json_lines_carry_required_fields_and_bound_context(configure: Configure) -> None:
    buffer = configure(fmt="json")
    logger = get_logger("wdh_domain.pipelines.core").bind(domain="annuity", execution_id="exec_123")
    logger.info("pipeline.started", rows=1000)
    logger.warning("pipeline.step.completed", step_name="Validate")

    first, second = json_lines(buffer)
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert ISO_UTC.match(first["timestamp"])
    assert first == {
        "timestamp": first["timestamp"],
        "level": "info",
        "logger": "wdh_domain.pipelines.core",
        "event": "pipeline.started",
        "domain": "annuity",
        "execution_id": "exec_123",
        "rows": 1000,
    }
    assert second["level"] == "warning"
    assert second["domain"] == "annuity"
    assert second["execution_id"] == "exec_123"
    assert second["step_name"] == "Validate"


def test_contextvars_and_positional_arguments(configure: Configure) -> None:
    buffer = configure()
    structlog.contextvars.bind_contextvars(run_id="r1")
    try:
        get_logger("wdh_x").info("loaded %d rows into %s", 5, "t")
        logging.getLogger("alembic.runtime").info("foreign too")
    finally:
        structlog.contextvars.clear_contextvars()
    structured, foreign = json_lines(buffer)
    assert structured["event"] == "loaded 5 rows into t"
    assert structured["run_id"] == "r1"
    assert foreign == {
        "timestamp": foreign["timestamp"],
        "level": "info",
        "logger": "alembic.runtime",
        "event": "foreign too",
        "run_id": "r1",
    }


def test_level_filters_structlog_and_stdlib_events(configure: Configure) -> None:
    buffer = configure(level="warning")
    get_logger("wdh_x").info("hidden")
    logging.getLogger("sqlalchemy.engine.x").info("hidden too")
    get_logger("wdh_x").warning("shown")
    get_logger("wdh_x").debug("hidden as well")
    assert [line["event"] for line in json_lines(buffer)] == ["shown"]
    assert logging.getLogger().level == logging.WARNING

    buffer = configure(level=logging.DEBUG)
    get_logger("wdh_x").debug("now shown")
    assert [line["event"] for line in json_lines(buffer)] == ["now shown"]


def test_level_holds_for_a_logger_set_lower_elsewhere(configure: Configure) -> None:
    """Dagster sets its managed loggers' own levels; the handlers still filter."""
    buffer = configure(level="error")
    chatty = logging.getLogger("wdh_x.set_lower")
    chatty.setLevel(logging.DEBUG)
    try:
        get_logger("wdh_x.set_lower").warning("hidden")
        get_logger("wdh_x.set_lower").error("shown")
    finally:
        chatty.setLevel(logging.NOTSET)
    assert [line["event"] for line in json_lines(buffer)] == ["shown"]


def test_unknown_level_or_format_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown log level 'LOUD'; expected one of CRITICAL"):
        configure_logging(level="LOUD")
    with pytest.raises(ValueError, match=r"unknown log format 'xml'; expected 'json' or 'pretty'"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]


def test_reconfiguring_replaces_only_our_handlers(configure: Configure) -> None:
    root = logging.getLogger()
    foreign_handler = logging.NullHandler()
    root.addHandler(foreign_handler)
    try:
        before = len(root.handlers)
        first = configure()
        second = configure()
        assert len(root.handlers) == before + 1
        assert foreign_handler in root.handlers
        get_logger("wdh_x").info("once")
        assert first.getvalue() == ""
        assert len(json_lines(second)) == 1
        reset_logging()
        assert len(root.handlers) == before
    finally:
        root.removeHandler(foreign_handler)


def test_defaults_write_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging()
        get_logger("wdh_x").info("to.stdout")
        out = capsys.readouterr().out
    finally:
        reset_logging()
    assert json.loads(out.splitlines()[-1])["event"] == "to.stdout"


def test_pretty_format_is_human_readable(configure: Configure) -> None:
    buffer = configure(fmt="pretty")
    get_logger("wdh_x").bind(domain="annuity").info("pipeline.started", rows=10)
    line = buffer.getvalue()
    assert "pipeline.started" in line
    assert "[info" in line
    assert "domain=annuity" in line
    assert "rows=10" in line
    assert "\x1b[" not in line  # a StringIO is no terminal: no colour codes
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_file_output_is_json_and_rotates_daily(configure: Configure, tmp_path: Path) -> None:
    log_dir = tmp_path / "nested" / "logs"
    buffer = configure(fmt="pretty", to_file=True, file_dir=log_dir)
    get_logger("wdh_x").info("to.both", n=1)
    handler = next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    )
    handler.flush()
    (entry,) = [json.loads(x) for x in (log_dir / LOG_FILE_NAME).read_text().splitlines()]
    assert entry["event"] == "to.both"
    assert entry["n"] == 1
    assert "to.both" in buffer.getvalue()
    assert handler.when == "MIDNIGHT"
    assert handler.backupCount == 30
    assert handler.utc


def test_other_stdlib_handlers_receive_redacted_readable_events(configure: Configure) -> None:
    """Dagster attaches its own handler to wdh_* loggers; it must see redacted events."""
    configure()
    captured = io.StringIO()
    other = logging.StreamHandler(captured)
    other.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    wdh = logging.getLogger("wdh_orchestration")
    wdh.addHandler(other)
    try:
        get_logger("wdh_orchestration.ops").bind(domain="annuity").info(
            "op.started", url=PLANTED_URL, rows=3
        )
        try:
            raise OSError(f"lost {PLANTED_URL}")
        except OSError:
            get_logger("wdh_orchestration.ops").exception("op.failed")
    finally:
        wdh.removeHandler(other)
    text = captured.getvalue()
    assert PLANTED not in text
    assert text.startswith(
        "INFO wdh_orchestration.ops op.started domain='annuity' "
        "url='postgresql+psycopg2://wdh:***@db.internal:5432/wdh' rows=3\n"
    )
    assert "ERROR wdh_orchestration.ops op.failed\nTraceback (most recent call last):" in text
    assert "OSError: lost postgresql+psycopg2://wdh:***@db.internal:5432/wdh" in text


def test_caplog_sees_redacted_events(
    configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    configure()
    with caplog.at_level(logging.INFO):
        get_logger("wdh_x").info("connect", dsn=PLANTED_URL, target=PLANTED_URL)
    assert PLANTED not in caplog.text
    assert "connect" in caplog.text


@pytest.mark.parametrize("fmt", ["json", "pretty"])
def test_planted_secret_never_appears(configure: Configure, fmt: LogFormat, tmp_path: Path) -> None:
    buffer = configure(fmt=fmt, level="DEBUG", to_file=True, file_dir=tmp_path)
    emit_everything_secret("wdh_io.loader")
    for handler in logging.getLogger().handlers:
        handler.flush()
    output = buffer.getvalue()
    file_output = (tmp_path / LOG_FILE_NAME).read_text()

    assert PLANTED not in output
    assert PLANTED not in file_output
    # ... while everything else that was logged is still there
    for expected in (
        "config.loaded",
        "retrying postgresql+psycopg2://wdh:***@db.internal:5432/wdh",
        "database.load.failed",
        "RuntimeError: load failed for postgresql+psycopg2://wdh:***@db.internal",
        "ConnectionError: could not connect to postgresql+psycopg2://wdh:***@db.internal",
        "stdlib says postgresql+psycopg2://wdh:***@db.internal:5432/wdh",
        "ValueError: alembic: bad url postgresql+psycopg2://wdh:***@db.internal",
        "***REDACTED***",
    ):
        assert expected in output, expected
    entries = [json.loads(line) for line in file_output.splitlines()]
    assert len(entries) == 5
    loaded = entries[0]
    assert loaded["database_url"] == "***REDACTED***"
    assert loaded["password"] == "***REDACTED***"
    assert loaded["secret_value"] == "***REDACTED***"
    assert loaded["settings"] == {
        "db": {"DB_PASSWORD": "***REDACTED***", "hosts": [["h", {"x-api-key": "***REDACTED***"}]]}
    }
    assert loaded["note"] == "connecting to postgresql+psycopg2://wdh:***@db.internal:5432/wdh"
    failed = entries[2]
    assert failed["cause"] == "server at postgresql+psycopg2://wdh:***@db.internal:5432/wdh"
    assert "The above exception was the direct cause" in failed["exception"]
    assert entries[4]["event"] == "stdlib failure with {'password': '***'}"


@pytest.mark.parametrize("fmt", ["json", "pretty"])
def test_secrets_in_keys_and_bytes_never_appear(configure: Configure, fmt: LogFormat) -> None:
    buffer = configure(fmt=fmt)
    get_logger("wdh_x").info(
        "dk",
        m={PLANTED_URL: 1},
        raw=PLANTED_URL.encode(),
        buffer=bytearray(b"\xff" + PLANTED_URL.encode()),
        **{PLANTED_URL: "top-level key"},
    )
    output = buffer.getvalue()
    assert PLANTED not in output
    assert output.count("postgresql+psycopg2://wdh:***@db.internal:5432/wdh") == 4
    if fmt == "json":
        (entry,) = json_lines(buffer)
        masked = "postgresql+psycopg2://wdh:***@db.internal:5432/wdh"
        assert entry[masked] == "top-level key"
        assert entry["raw"] == masked
        assert entry["m"][masked] == 1


def test_tracebacks_show_no_local_variables(configure: Configure) -> None:
    buffer = configure(fmt="pretty")

    def fail() -> None:
        local_secret = PLANTED
        raise KeyError(len(local_secret))

    try:
        fail()
    except KeyError:
        get_logger("wdh_x").exception("with.locals")
    output = buffer.getvalue()
    assert "local_secret" not in output.split("Traceback")[1].split("raise KeyError")[0]
    assert PLANTED not in output
    assert "KeyError: 14" in output


def test_handlers_that_rewrite_the_message_do_not_break_our_output(configure: Configure) -> None:
    """Dagster's log capture replaces record.msg with a string before the root handler."""

    class Rewriter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.msg = f"rewritten: {record.getMessage()}"
            record.args = ()

    buffer = configure()
    rewriter = Rewriter()
    wdh = logging.getLogger("wdh_orchestration")
    wdh.addHandler(rewriter)
    try:
        get_logger("wdh_orchestration.ops").info("op.done", url=PLANTED_URL, rows=2)
        logging.getLogger("wdh_orchestration.plain").warning("plain %s", "record")
    finally:
        wdh.removeHandler(rewriter)
    structured, plain = json_lines(buffer)
    assert structured["event"] == "op.done"
    assert structured["rows"] == 2
    assert structured["url"] == "postgresql+psycopg2://wdh:***@db.internal:5432/wdh"
    assert "wdh_event" not in structured
    assert plain["event"] == "rewritten: plain record"


def test_a_url_password_with_a_space_never_reaches_the_log(configure: Configure) -> None:
    buffer = configure(fmt="json")
    url = f"postgresql://wdh:two {PLANTED} words@db:5432/x"

    get_logger("wdh.test").error("db.unreachable", error=f"cannot connect to {url}", url=url)

    text = buffer.getvalue()
    assert PLANTED not in text
    line = json_lines(buffer)[-1]
    assert line["error"] == "cannot connect to postgresql://wdh:***@db:5432/x"
