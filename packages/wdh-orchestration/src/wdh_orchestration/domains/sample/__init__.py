"""The sample domain: the pattern every domain follows, proving the platform end to end.

A row model (``SampleRecord``), and one declaration (``SAMPLE``): where its rows land,
the key the loader upserts on, how many invalid rows a file may have, how its files are
named in the landing directory. It also ships a 20-row CSV (3 rows invalid on purpose),
read by a run that names no file.
"""

from wdh_orchestration._domain import Domain
from wdh_orchestration.domains.sample._dataset import sample_csv_path
from wdh_orchestration.domains.sample._model import SampleRecord

__all__ = ["SAMPLE", "SampleRecord", "sample_csv_path"]

SAMPLE = Domain(
    name="sample",
    model=SampleRecord,
    table="sample_data",
    keys=("record_id",),
    file_pattern="sample*.csv",
    max_failure_rate=0.25,
    default_file=sample_csv_path(),
    description="Sample transactions: the valid rows of every sample file, upserted on record_id.",
)
