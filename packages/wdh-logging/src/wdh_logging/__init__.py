"""WorkDataHub structured logging: one configuration call, secrets redacted on every event.

Entry points (Dagster definitions, CLIs, tests) call `configure_logging` once;
libraries only call `get_logger` (or ``structlog.get_logger(__name__)``). Every event --
from structlog or from plain stdlib loggers such as SQLAlchemy's -- is rendered as a
JSON line (or a pretty console line) with ``timestamp``, ``level``, ``logger``, ``event``
and its bound context, after sensitive keys, URL passwords and secret values have been
redacted. `sanitize_for_logging` applies the same redaction to any value.
"""

from wdh_logging._configure import (
    LOG_FILE_NAME,
    LogFormat,
    configure_logging,
    get_logger,
    reset_logging,
)
from wdh_logging._redaction import (
    REDACTED,
    is_sensitive_key,
    redact_text,
    redact_texts,
    sanitize_for_logging,
)

__all__ = [
    "LOG_FILE_NAME",
    "REDACTED",
    "LogFormat",
    "configure_logging",
    "get_logger",
    "is_sensitive_key",
    "redact_text",
    "redact_texts",
    "reset_logging",
    "sanitize_for_logging",
]
