"""Which failures a retry may fix: only transient database errors.

Dagster's ``RetryPolicy`` retries every exception an op raises. Ops therefore run their
work inside :func:`retry_only_transient`, which lets
:class:`~wdh_io.errors.TransientDatabaseError` (lost connection, deadlock, serialization
failure) through to the policy and turns every other exception -- bad data, a malformed
file, a missing column, a constraint violation, a bug -- into a
``dagster.Failure(allow_retries=False)``: retrying those would fail the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure, MetadataValue, RetryRequested

from wdh_io.errors import TransientDatabaseError
from wdh_logging import redact_text

__all__ = ["describe_failure", "retry_only_transient"]


def describe_failure(exc: BaseException) -> str:
    """A one-line, secret-free description of *exc* for logs, metadata and the audit row.

    A ``dagster.Failure`` is described by its description; other exceptions by their
    type and message (wdh errors carry their where: file, line, table, row, field).
    """
    if isinstance(exc, Failure):
        text = exc.description or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(text)


@contextmanager
def retry_only_transient(action: str) -> Iterator[None]:
    """Run a block so that only transient database errors reach the op's retry policy.

    Any other exception is re-raised as ``Failure("<action>: <reason>",
    allow_retries=False)`` from the original, which Dagster shows with its cause;
    *action* says what could not be done (``"cannot read the input file"``).
    """
    try:
        yield
    except (TransientDatabaseError, Failure, RetryRequested):
        raise
    except Exception as exc:
        reason = describe_failure(exc)
        raise Failure(
            description=f"{action}: {reason}",
            metadata={
                "error_type": MetadataValue.text(type(exc).__name__),
                "retried": MetadataValue.bool(False),
            },
            allow_retries=False,
        ) from exc
