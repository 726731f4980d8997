"""The structlog processors WorkDataHub adds around structlog's own.

Two chains share these pieces (see `wdh_logging._configure`):

* the *structlog* chain, which runs inside ``logger.info(...)`` before the event is
  handed to stdlib ``logging`` -- so every stdlib handler (ours, pytest's, Dagster's)
  receives an event that is already redacted, with its traceback already rendered;
* the *foreign* chain, which gives records from plain stdlib loggers (SQLAlchemy,
  Alembic, Dagster) the same fields and the same redaction when our handlers format them.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import structlog
from structlog.typing import EventDict, WrappedLogger

from wdh_logging._redaction import (
    REDACTED,
    is_sensitive_key,
    sanitize_for_logging,
    sanitize_key,
)

__all__ = [
    "EVENT_ATTRIBUTE",
    "hand_to_stdlib",
    "level_number",
    "order_fields",
    "redact_event",
    "render_exception",
]

# Keys ProcessorFormatter puts into a foreign event dict; they must reach its
# remove_processors_meta untouched.
_META_KEYS: Final = frozenset({"_record", "_from_structlog"})

EVENT_ATTRIBUTE: Final = "wdh_event"
"""LogRecord attribute holding the (redacted) structlog event dict."""

RENDERED_FIRST: Final = ("timestamp", "level", "logger", "event")
"""Fields every JSON line starts with, in this order."""

# format_exc_info renders with the stdlib traceback module: no local variables, ever.
# (Rich/better-exceptions renderers can show locals, so the console renderer is never
# given an exc_info to render itself.)
render_exception: Final = structlog.processors.format_exc_info


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: redact sensitive keys, URL passwords (in keys too) and secret objects."""
    return {
        key if key in _META_KEYS else sanitize_key(key): value
        if key in _META_KEYS
        else REDACTED
        if is_sensitive_key(key)
        else sanitize_for_logging(value)
        for key, value in event_dict.items()
    }


def order_fields(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: put timestamp, level, logger and event first, the context after them."""
    ordered = {key: event_dict[key] for key in RENDERED_FIRST if key in event_dict}
    ordered.update(event_dict)
    return ordered


class StdlibMessage(dict[str, Any]):
    """The event dict as a stdlib ``LogRecord.msg``.

    Our `structlog.stdlib.ProcessorFormatter` reads it as a dict. Any other handler
    (Dagster's captured python logs, pytest's caplog) calls ``str()`` on it and gets a
    one-line ``event key=value ...`` message -- built from the already redacted event.
    """

    def __str__(self) -> str:
        parts = [str(self.get("event", ""))]
        parts.extend(
            f"{key}={value!r}"
            for key, value in self.items()
            if key not in RENDERED_FIRST and key != "exception"
        )
        text = " ".join(parts)
        if "exception" in self:
            text = f"{text}\n{self['exception']}"
        return text


def hand_to_stdlib(
    logger: WrappedLogger, method: str, event_dict: EventDict
) -> tuple[tuple[StdlibMessage], dict[str, dict[str, Any]]]:
    """Last structlog processor: pass the event to stdlib logging (like
    `structlog.stdlib.ProcessorFormatter.wrap_for_formatter`, but with a readable
    ``str()`` for handlers that are not ours)."""
    message = StdlibMessage(event_dict)
    # The event also rides along as an attribute: some handlers (Dagster's log capture)
    # replace record.msg with a string before our formatter sees the record.
    extra = {"_logger": logger, "_name": method, EVENT_ATTRIBUTE: message}
    return (message,), {"extra": extra}


def level_number(level: str | int) -> int:
    """Translate ``"INFO"``/``"info"``/``20`` into a stdlib level number, or raise ValueError."""
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        names = ", ".join(sorted(n for n in logging.getLevelNamesMapping() if n != "NOTSET"))
        msg = f"unknown log level {level!r}; expected one of {names}"
        raise ValueError(msg)
    return number
