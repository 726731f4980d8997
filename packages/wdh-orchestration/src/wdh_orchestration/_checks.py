"""Asset checks: the platform's three for every domain, plus the domain's own.

Every check is evaluated in the load's transaction, after the rows are written, so it
sees what the load will commit; its verdict goes to Dagster (an ``AssetCheckResult``)
and to ``data_quality_metrics`` (``check.<name>.passed`` = 1 or 0 and
``check.<name>.value``), keyed by the run's execution id, in that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey
from sqlalchemy import ColumnClause, Connection, column, func, inspect, select, table

from wdh_orchestration._domain import CheckOutcome, Domain, DomainCheck, LoadedFile

__all__ = [
    "FAILURE_RATE_CHECK",
    "check_metrics",
    "check_result",
    "check_specs",
    "domain_checks",
    "evaluate",
    "failure_rate_outcome",
]

FAILURE_RATE_CHECK: Final = "failure_rate_within_threshold"


def failure_rate_outcome(domain: Domain, rows_read: int, rows_failed: int) -> CheckOutcome:
    """Whether at most ``domain.max_failure_rate`` of the rows read failed validation."""
    rate = rows_failed / rows_read if rows_read else 0.0
    return CheckOutcome(
        passed=rate <= domain.max_failure_rate,
        description=(
            f"{rows_failed} of {rows_read} rows failed validation ({rate:.1%}); "
            f"the domain allows {domain.max_failure_rate:.1%}"
        ),
        value=rate,
    )


def _failure_rate(_: Connection, loaded: LoadedFile) -> CheckOutcome:
    return failure_rate_outcome(loaded.domain, loaded.rows_read, loaded.rows_failed)


def _unique_index_on(conn: Connection, domain: Domain) -> str | None:
    """The name of a primary key, unique constraint or unique index on exactly the
    domain's keys, if the table has one."""
    inspector = inspect(conn)
    wanted = set(domain.keys)
    primary = inspector.get_pk_constraint(domain.table, schema=domain.schema)
    if set(primary.get("constrained_columns") or ()) == wanted:
        return str(primary.get("name") or "primary key")
    for constraint in inspector.get_unique_constraints(domain.table, schema=domain.schema):
        if set(constraint["column_names"]) == wanted:
            return str(constraint["name"])
    for index in inspector.get_indexes(domain.table, schema=domain.schema):
        if index["unique"] and set(index["column_names"]) == wanted:
            return str(index["name"])
    return None


def _keys_unique(conn: Connection, loaded: LoadedFile) -> CheckOutcome:
    domain = loaded.domain
    names = ", ".join(domain.keys)
    enforced = _unique_index_on(conn, domain)
    if enforced is not None:
        # The database refuses duplicates itself: no need to scan the whole table.
        return CheckOutcome(
            passed=True,
            description=(
                f"({names}) is unique in {domain.schema}.{domain.table} (enforced by {enforced})"
            ),
            value=0.0,
        )
    keys: list[ColumnClause[Any]] = [column(key) for key in domain.keys]
    target = table(domain.table, *keys, schema=domain.schema)
    duplicated = (
        select(*target.c).group_by(*target.c).having(func.count() > 1).subquery("duplicated")
    )
    groups = conn.execute(select(func.count()).select_from(duplicated)).scalar_one()
    return CheckOutcome(
        passed=groups == 0,
        description=(
            f"({names}) is unique in {domain.schema}.{domain.table}"
            if groups == 0
            else f"{groups} values of ({names}) occur more than once in "
            f"{domain.schema}.{domain.table}"
        ),
        value=float(groups),
    )


def _non_empty(_: Connection, loaded: LoadedFile) -> CheckOutcome:
    # Valid rows whose table row already held the same data are not written: a file
    # loaded again is not empty, it is up to date.
    written = loaded.rows_inserted + loaded.rows_updated
    return CheckOutcome(
        passed=loaded.rows_valid > 0,
        description=f"{written} rows written ({loaded.rows_inserted} inserted, "
        f"{loaded.rows_updated} updated), {loaded.rows_unchanged} unchanged",
        value=float(written),
    )


def domain_checks(domain: Domain) -> tuple[DomainCheck, ...]:
    """The platform's checks (failure rate, unique keys, non-empty load), then the
    domain's own."""
    platform = (
        DomainCheck(
            FAILURE_RATE_CHECK,
            f"At most {domain.max_failure_rate:.0%} of a file's rows fail validation.",
            _failure_rate,
            blocking=True,
        ),
        DomainCheck(
            "upsert_keys_unique",
            f"The upsert keys ({', '.join(domain.keys)}) are unique in the table.",
            _keys_unique,
            blocking=True,
        ),
        DomainCheck(
            "non_empty_load",
            "The file had at least one valid row (written, or already up to date).",
            _non_empty,
        ),
    )
    return platform + domain.checks


def check_specs(domain: Domain, asset: AssetKey) -> list[AssetCheckSpec]:
    """One ``AssetCheckSpec`` per check of *domain*, on the table asset *asset*."""
    return [
        AssetCheckSpec(check.name, asset=asset, description=check.description)
        for check in domain_checks(domain)
    ]


def evaluate(
    domain: Domain, conn: Connection, loaded: LoadedFile
) -> list[tuple[DomainCheck, CheckOutcome]]:
    """Every check of *domain* on *loaded*, in declaration order."""
    return [(check, check.evaluate(conn, loaded)) for check in domain_checks(domain)]


def check_result(check: DomainCheck, outcome: CheckOutcome) -> AssetCheckResult:
    """The Dagster result of one check; a failed non-blocking check is a warning."""
    metadata: dict[str, float | str] = {"description": outcome.description}
    if outcome.value is not None:
        metadata["value"] = outcome.value
    return AssetCheckResult(
        check_name=check.name,
        passed=outcome.passed,
        description=outcome.description,
        metadata=metadata,
        severity=AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN,
    )


def check_metrics(
    outcomes: Iterable[tuple[DomainCheck, CheckOutcome]],
) -> Mapping[str, float | int]:
    """``check.<name>.passed`` (1/0) and ``check.<name>.value`` of each outcome."""
    metrics: dict[str, float | int] = {}
    for check, outcome in outcomes:
        metrics[f"check.{check.name}.passed"] = int(outcome.passed)
        if outcome.value is not None:
            metrics[f"check.{check.name}.value"] = outcome.value
    return metrics
