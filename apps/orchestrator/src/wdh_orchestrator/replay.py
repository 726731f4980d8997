"""Replay a run's rejected rows: ``python -m wdh_orchestrator.replay <execution_id>``.

After a domain's rules or data are fixed, this validates the rejected rows of the run
*execution_id* (as ``pipeline_executions`` and ``python -m wdh_orchestrator.show`` name
it) again with the current model of their domain, and in one transaction upserts the
rows that now pass, marks them resolved by this replay and gives the rows still rejected
their new reasons (see ``wdh_orchestration.replay_run``). The replay has its own audit
row, ``<domain>_replay``. ``--domain`` names the domain when the run rejected rows of
several. Replaying again with the same model changes nothing.

It prints one line: what was replayed, resolved and still rejected, or ``nothing to
replay``. Run it from the directory you run ``dagster dev`` in (``apps/orchestrator``):
with no ``DATABASE_URL`` it opens the same embedded database. The same replay runs in
the UI as the job ``replay_rejected_rows``, its config the execution id.

Exit status: 0 (replayed, or nothing to replay); 1 when the replay cannot be done or
failed -- an unknown run or domain, rows that now pass but cannot be loaded -- with one
line on stderr, ``replay: <what and where>``, and nothing changed; 2 when the database
cannot be reached (one line, as ``show`` prints it). ``LOG_LEVEL=DEBUG`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine, describe_url_text, resolve_database_url
from wdh_io.loader import WarehouseLoader
from wdh_logging import configure_logging
from wdh_orchestration import ReplayError, describe_failure, replay_run, resolve_execution_id
from wdh_orchestration.domains import DOMAINS
from wdh_orchestrator.show import connection_error

__all__ = ["main"]

_PROG = "replay"


def _debugging() -> bool:
    return os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Replay the run named in *argv*; return 0, 1 (not done, nothing changed) or 2 (the
    database cannot be reached)."""
    parser = argparse.ArgumentParser(
        prog="python -m wdh_orchestrator.replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("execution_id", help="execution id of the run to replay (exec_…)")
    parser.add_argument(
        "--domain", help="the domain to replay (needed only for a run of several domains)"
    )
    args = parser.parse_args(argv)
    # An entry point configures logging; only errors are worth a line here: the one-line
    # message says what failed (a warning such as a refused connection would repeat it).
    configure_logging(level="ERROR", fmt="pretty", stream=sys.stderr)

    where: str | None = None
    try:
        url = resolve_database_url()
        where = describe_url_text(url)
        engine = create_engine(url, pool_size=1)
        # reach it now (a connection problem is its own message); a Dagster run id names
        # its run's execution id
        with engine.connect() as conn:
            run = resolve_execution_id(conn, args.execution_id)
    except Exception as exc:
        if _debugging():
            raise
        err.write(connection_error(exc, where, prog=_PROG) + "\n")
        return 2
    try:
        result = replay_run(
            WarehouseLoader(engine),
            AuditRecorder(engine),
            DOMAINS,
            execution_id=run,
            domain=args.domain,
        )
    except Exception as exc:
        if _debugging():
            raise
        reason = str(exc) if isinstance(exc, ReplayError) else describe_failure(exc)
        err.write(f"{_PROG}: {reason}\n")
        return 1
    finally:
        engine.dispose()
    out.write(result.summary() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
