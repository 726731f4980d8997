"""A Dagster console logger that prints each Dagster event on one line.

It replaces Dagster's default ``console`` logger for every job of the code location.
It prints only Dagster's own events (step started, asset materialized, step failed, run
succeeded...): the platform's structlog events are already printed once by the
process's logging configuration, so printing their captured copies again would show
every event twice. A failure prints its one-line reason, not the error's traceback; the
traceback is printed too when the logger's level is DEBUG (``LOG_LEVEL=DEBUG``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final

from dagster import Field, InitLoggerContext, LoggerDefinition, logger

__all__ = ["ConsoleEventFormatter", "one_line_console_logger"]

_NAME: Final = "wdh_dagster_console"
_FAILURE_PREFIX: Final = "dagster._core.definitions.events.Failure: "


class ConsoleEventFormatter(logging.Formatter):
    """``<time> <LEVEL> <job>[<step>] <EVENT>: <message>[ -- <reason>]`` per Dagster event."""

    def __init__(self, *, debug: bool) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self._debug = debug

    def format(self, record: logging.LogRecord) -> str:
        meta: dict[str, Any] = getattr(record, "dagster_meta", {}) or {}
        event = meta.get("dagster_event")
        where = meta.get("job_name") or "dagster"
        if meta.get("step_key"):
            where = f"{where}[{meta['step_key']}]"
        kind = event.event_type_value if event is not None else "LOG"
        message = str(meta.get("orig_message", record.getMessage())).replace("\n", " ")
        line = f"{self.formatTime(record, self.datefmt)} {record.levelname} {where} {kind}: "
        line += message
        reason, detail = _failure_of(event)
        if reason:
            line += f" -- {reason}"
        if detail and self._debug:
            line += "\n" + detail
        return line


def _failure_of(event: Any) -> tuple[str | None, str | None]:
    data = getattr(event, "event_specific_data", None)
    user = getattr(data, "user_failure_data", None)
    error = getattr(data, "error", None)
    detail = error.to_string() if error is not None else None
    if user is not None and user.description:
        return " ".join(str(user.description).split()), detail
    if error is not None:
        first = next((ln for ln in str(error.message).splitlines() if ln.strip()), "")
        return first.strip().removeprefix(_FAILURE_PREFIX), detail
    return None, detail


class _EventsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        return meta.get("dagster_event") is not None


def one_line_console_logger(level: str = "INFO") -> LoggerDefinition:
    """The ``console`` logger definition, at *level* by default (configurable per run)."""

    @logger(
        {"log_level": Field(str, is_required=False, default_value=level)},
        description="One line per Dagster event; failures by their reason, not a traceback.",
    )
    def _console(init_context: InitLoggerContext) -> logging.Logger:
        chosen = str(init_context.logger_config["log_level"]).upper()
        # A fresh logger per run, not registered: its handler must not pile up in the
        # registry across runs of one process (Dagster's own console logger does the same).
        log = logging.Logger(_NAME, level=chosen)  # noqa: LOG001
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ConsoleEventFormatter(debug=chosen == "DEBUG"))
        handler.addFilter(_EventsOnly())
        log.addHandler(handler)
        return log

    return _console
