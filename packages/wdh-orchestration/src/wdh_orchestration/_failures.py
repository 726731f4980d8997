"""Failures a person can read, and which of them a retry may fix.

Dagster's ``RetryPolicy`` retries every exception an op raises. Ops therefore run their
work inside :func:`retry_only_transient`, which lets a transient database error (lost
connection, deadlock, serialization failure) through to the policy and turns every other
exception -- bad settings, an unknown database, a wrong password, a missing or malformed
file, bad data, a constraint violation, a bug -- into one
``dagster.Failure(allow_retries=False)`` whose description is one line saying what to
fix: retrying those would fail the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from dagster import Failure, MetadataValue, OpExecutionContext, RetryRequested
from sqlalchemy.exc import DBAPIError

from wdh_domain.errors import WdhDomainError
from wdh_io import errors as io_errors
from wdh_io.errors import TransientDatabaseError
from wdh_logging import redact_text

__all__ = ["describe_failure", "is_last_attempt", "is_transient", "retry_only_transient"]

# A connection that was refused for good: the server answered, and said no. The driver
# gives no SQLSTATE for failures while connecting, so wdh_io may report them as a lost
# connection; its permanent access error (when that class exists) is matched by type.
_PERMANENT_CONNECT: Final = re.compile(
    r"password authentication failed|no password supplied|database \S+ does not exist"
    r"|role \S+ does not exist|could not translate host name|no pg_hba\.conf entry"
    r"|permission denied for database",
    re.IGNORECASE,
)


def _access_error_type() -> type[BaseException] | None:
    found = getattr(io_errors, "DatabaseAccessError", None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def is_transient(exc: BaseException) -> bool:
    """Whether trying *exc*'s work again may succeed: a transient database error that is
    not an access error (unknown database or role, failed authentication, unknown host)."""
    access = _access_error_type()
    if access is not None and isinstance(exc, access):
        return False
    return isinstance(exc, TransientDatabaseError) and not _PERMANENT_CONNECT.search(str(exc))


def describe_failure(exc: BaseException) -> str:
    """One secret-free line describing *exc* for logs, metadata and the audit row.

    A ``dagster.Failure`` is described by its description; invalid settings (a pydantic
    ``ValidationError``) by ``invalid settings: <what is wrong with which VARIABLE>`` per error;
    a wdh_io or wdh_domain error by its message (which names file, line, table, row or
    field); an untranslated driver error by the driver's message; anything else by its
    type and message. Line breaks become ``; ``.
    """
    if isinstance(exc, Failure):
        text = exc.description or type(exc).__name__
    elif _is_validation_error(exc):
        text = "invalid settings: " + "; ".join(_validation_lines(exc))
    elif isinstance(exc, io_errors.WdhIoError | WdhDomainError):
        text = str(exc) or type(exc).__name__
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        # the driver's own message: not SQLAlchemy's rendering of the statement, its
        # parameters (row values) and a documentation link
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(_one_line(text))


def _is_validation_error(exc: BaseException) -> bool:
    # pydantic's ValidationError, without a pydantic import for one isinstance check
    return type(exc).__name__ == "ValidationError" and callable(getattr(exc, "errors", None))


def _validation_lines(exc: BaseException) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        # "DATABASE_URL: ..." would read as a secret to the redaction; name it only when
        # the message does not.
        lines.append(message if where.lower() in message.lower() else f"{where}: {message}")
    return lines


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def is_last_attempt(context: OpExecutionContext) -> bool:
    """Whether the step's retry policy allows no further attempt after this one."""
    policy = context.get_step_execution_context().op_retry_policy
    return policy is None or context.retry_number >= policy.max_retries


def _debugging() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


@contextmanager
def retry_only_transient(action: str, *, last_attempt: bool = False) -> Iterator[None]:
    """Run a block so that only transient database errors reach the op's retry policy.

    Any other exception -- and on the *last_attempt* a transient one too, with
    `` (retried, no attempt left)`` appended -- is re-raised as
    ``Failure("<action>: <reason>", allow_retries=False)``; *action* says what could not
    be done (``"cannot read the input file"``). The original exception is attached as
    the failure's cause only when logging is at DEBUG: otherwise Dagster would print its
    whole traceback under the one-line reason.
    """
    try:
        yield
    except (Failure, RetryRequested):
        raise
    except Exception as exc:
        transient = is_transient(exc)
        if transient and not last_attempt:
            raise
        suffix = " (retried, no attempt left)" if transient else ""
        failure = Failure(
            description=f"{action}: {describe_failure(exc)}{suffix}",
            metadata={
                "error_type": MetadataValue.text(type(exc).__name__),
                "retried": MetadataValue.bool(False),
            },
            allow_retries=False,
        )
        if _debugging():
            raise failure from exc
        raise failure from None
