"""``op_scope``: what every step of a WorkDataHub job wraps its work in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import OpExecutionContext
from structlog.contextvars import bound_contextvars

from wdh_orchestration._audit import execution_id_for
from wdh_orchestration._failures import is_last_attempt, retry_only_transient
from wdh_orchestration.resources import WarehouseResource

__all__ = ["op_scope"]


@contextmanager
def op_scope(
    context: OpExecutionContext,
    warehouse: WarehouseResource,
    *,
    failure: str,
    input_file_path: str | None = None,
) -> Iterator[str]:
    """Run a step's work with the run's audit row open, the run's ids on every log event
    and only transient errors retried; yield the run's audit execution id.

    The run's ``running`` row is inserted first unless it exists (with
    *input_file_path*). Every structlog event inside the block -- the step's, the
    pipeline's, the loader's -- carries ``execution_id`` and ``dagster_run_id``. An
    exception other than a transient database error becomes ``Failure("<failure>:
    <reason>", allow_retries=False)``, and so does a transient one on the step's last
    attempt (inner blocks may name their own *failure* with
    :func:`~wdh_orchestration.retry_only_transient`).
    """
    execution_id = execution_id_for(context)
    with (
        bound_contextvars(execution_id=execution_id, dagster_run_id=context.run_id),
        retry_only_transient(failure, last_attempt=is_last_attempt(context)),
    ):
        warehouse.audit().ensure_run(
            execution_id=execution_id,
            pipeline_name=context.job_name,
            input_file_path=input_file_path,
        )
        yield execution_id
