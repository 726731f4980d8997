"""``configure_logging()`` for entry points, ``get_logger()`` for everyone.

structlog is configured to go *through* stdlib ``logging``: a structlog event is
processed (context merged, level/logger/timestamp added, traceback rendered,
secrets redacted) and then handed to the stdlib logger of the same name. From there
it propagates like any record, so handlers attached by others -- Dagster's captured
python logs on ``wdh_*`` loggers, pytest's caplog -- receive it, already redacted.
The handlers installed here render records with `structlog.stdlib.ProcessorFormatter`,
which also gives plain stdlib records (SQLAlchemy, Alembic, Dagster) the same fields
and the same redaction.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import IO, Any, Final, Literal

import structlog
from structlog.typing import Processor

from wdh_logging._processors import (
    EVENT_ATTRIBUTE,
    hand_to_stdlib,
    level_number,
    order_fields,
    redact_event,
    render_exception,
)

__all__ = ["LOG_FILE_NAME", "LogFormat", "configure_logging", "get_logger", "reset_logging"]

LogFormat = Literal["json", "pretty"]
"""``json``: one JSON object per line (machines); ``pretty``: aligned console lines (humans)."""

LOG_FILE_NAME: Final = "workdatahub.log"
"""Name of the log file inside ``file_dir``; rotated copies get a ``.YYYY-MM-DD`` suffix."""

_FILE_BACKUPS: Final = 30  # daily files kept (story 1.3: 30-day retention)

# Handlers this module installed on the root logger, so that reconfiguring replaces
# exactly them and leaves everybody else's handlers alone.
_installed: list[logging.Handler] = []


class _BoundLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib BoundLogger, except that ``exception()`` keeps the traceback.

    The stock ``exception()`` ends in stdlib ``Logger.exception``, which attaches the
    live ``exc_info`` to the LogRecord -- and any handler without our formatter would
    print that raw, unredacted traceback. Here the traceback is rendered and redacted
    by the structlog chain, and stdlib gets a plain ``error`` record.
    """

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        kw.setdefault("exc_info", True)
        return self._proxy_to_logger("error", event, *args, **kw)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter that survives handlers which rewrite ``record.msg`` first.

    Dagster's captured-python-logs handler turns ``record.msg`` into a string in place;
    the event dict kept on the record (see `hand_to_stdlib`) is put back on a copy.
    """

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, EVENT_ATTRIBUTE, None)
        if isinstance(event, dict) and not isinstance(record.msg, dict):
            record = logging.makeLogRecord(record.__dict__)
            record.msg, record.args = event, ()
        return super().format(record)


def _timestamper() -> Processor:
    return structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")


def _structlog_chain() -> list[Processor]:
    """Processors run inside a structlog call, before stdlib logging sees the event."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        _timestamper(),
        structlog.processors.StackInfoRenderer(),
        render_exception,
        redact_event,  # last before stdlib: every handler gets redacted events
        hand_to_stdlib,
    ]


def _foreign_chain() -> list[Processor]:
    """Processors that prepare a plain stdlib record like a structlog event."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _timestamper(),
        render_exception,
        redact_event,
    ]


def _formatter(fmt: LogFormat, *, colors: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    return _Formatter(
        foreign_pre_chain=_foreign_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            order_fields,
            renderer,
        ],
    )


def configure_logging(
    *,
    level: str | int = "INFO",
    fmt: LogFormat = "json",
    to_file: bool = False,
    file_dir: Path = Path("logs"),
    stream: IO[str] | None = None,
) -> None:
    """Configure structlog and stdlib logging for this process; call it from entry points.

    Args:
        level: minimum level (``"DEBUG"``, ``"info"``, ``logging.WARNING``, ...), set on
            the root logger, where events below it cost one level check, and on the
            handlers installed here, so that a logger another library set lower (Dagster
            sets its managed loggers' levels) still prints nothing below it.
        fmt: ``"json"`` (one JSON object per line) or ``"pretty"`` (console lines,
            coloured when *stream* is a terminal) for *stream*.
        to_file: also write JSON lines to ``file_dir / "workdatahub.log"``, rotated at
            midnight UTC, 30 old files kept.
        file_dir: directory of the log file, created when missing.
        stream: where console lines go; ``sys.stdout`` (looked up at call time) when None.

    Calling it again replaces the handlers installed by the previous call (and only
    those), so it is idempotent and tests may reconfigure freely.

    Raises:
        ValueError: *level* or *fmt* is not one of the accepted values.
    """
    if fmt not in ("json", "pretty"):
        msg = f"unknown log format {fmt!r}; expected 'json' or 'pretty'"
        raise ValueError(msg)
    root_level = level_number(level)
    target = sys.stdout if stream is None else stream

    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(target)
    isatty = getattr(target, "isatty", None)
    console.setFormatter(_formatter(fmt, colors=bool(isatty and isatty())))
    handlers.append(console)
    if to_file:
        file_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.TimedRotatingFileHandler(
            file_dir / LOG_FILE_NAME,
            when="midnight",
            backupCount=_FILE_BACKUPS,
            encoding="utf-8",
            utc=True,
        )
        file_handler.setFormatter(_formatter("json", colors=False))
        handlers.append(file_handler)

    _remove_installed_handlers()
    root = logging.getLogger()
    for handler in handlers:
        handler.setLevel(root_level)
        root.addHandler(handler)
    _installed.extend(handlers)
    root.setLevel(root_level)

    structlog.configure(
        processors=_structlog_chain(),
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=_BoundLogger,
        context_class=dict,
        # Loggers are created at import time by libraries, often before an entry point
        # configures logging; not caching lets every logger follow the latest config.
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Undo `configure_logging`: remove (and close) its handlers, restore structlog defaults."""
    _remove_installed_handlers()
    structlog.reset_defaults()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """Return the structlog logger for *name* (use ``__name__``).

    Cheap to call at import time: the logger follows whatever configuration is active
    when it logs. ``logger.bind(domain="annuity", execution_id="exec_123")`` returns a
    logger whose events all carry those fields.
    """
    return structlog.stdlib.get_logger(name)


def _remove_installed_handlers() -> None:
    root = logging.getLogger()
    while _installed:
        handler = _installed.pop()
        root.removeHandler(handler)
        handler.close()
