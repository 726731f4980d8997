"""``op_scope``: what every sample op wraps its work in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import OpExecutionContext
from structlog.contextvars import bound_contextvars

from wdh_orchestration._audit import execution_id_for
from wdh_orchestration._failures import retry_only_transient

__all__ = ["op_scope"]


@contextmanager
def op_scope(context: OpExecutionContext, *, failure: str) -> Iterator[str]:
    """Run an op's work with the run's ids on every log event and only transient errors
    retried; yield the run's audit execution id.

    Every structlog event inside the block -- the op's, the pipeline's, the loader's --
    carries ``execution_id`` and ``dagster_run_id``. An exception other than a transient
    database error becomes ``Failure("<failure>: <reason>", allow_retries=False)``.
    """
    execution_id = execution_id_for(context)
    with (
        bound_contextvars(execution_id=execution_id, dagster_run_id=context.run_id),
        retry_only_transient(failure),
    ):
        yield execution_id
