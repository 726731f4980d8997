"""A streamed load in a process of its own, for the tests that kill it or starve it.

    python stream_child.py EXECUTION_ID CSV BLOCK_SIZE [--pause-after N] [--address-space BYTES]

The database URL comes from ``WDH_TEST_DATABASE_URL`` (not argv: it may hold a
password). The run's audit row is opened, then the sample domain's streamed load runs
without overlap; after each chunk it prints ``chunk <rows read>``. ``--pause-after N``
sleeps (inside the load's open transaction) after the N-th chunk, to be killed there.
``--address-space`` caps the process's virtual memory (``RLIMIT_AS``) before the load
starts. At the end it prints ``loaded <inserted> <updated> <unchanged> <rejected>`` and its
``VmPeak`` in bytes.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from wdh_logging import configure_logging
from wdh_orchestration import WarehouseResource, load_file
from wdh_orchestration.domains.sample import SAMPLE

URL_VARIABLE = "WDH_TEST_DATABASE_URL"


def vm_peak() -> int:
    """This process's peak virtual memory, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) * 1024
    return -1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("execution_id")
    parser.add_argument("csv")
    parser.add_argument("block_size", type=int)
    parser.add_argument("--pause-after", type=int, default=0)
    parser.add_argument("--address-space", type=int, default=0)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    warehouse = WarehouseResource(database_url=os.environ[URL_VARIABLE], pool_size=2)
    audit = warehouse.audit()
    audit.ensure_run(execution_id=args.execution_id, pipeline_name="stream_child")
    chunks = [0]

    def progress(rows: int) -> None:
        chunks[0] += 1
        print(f"chunk {rows}", flush=True)
        if chunks[0] == args.pause_after:
            time.sleep(600)

    if args.address_space:
        resource.setrlimit(resource.RLIMIT_AS, (args.address_space, args.address_space))
    loaded = load_file(
        warehouse.loader(),
        audit,
        SAMPLE,
        args.csv,
        execution_id=args.execution_id,
        block_size=args.block_size,
        overlap=False,
        on_chunk=progress,
    )
    result = loaded.result
    print(
        f"loaded {result.rows_inserted} {result.rows_updated} {result.rows_unchanged} "
        f"{loaded.rows_failed}",
        flush=True,
    )
    print(f"vmpeak {vm_peak()}", flush=True)


if __name__ == "__main__":
    main()
