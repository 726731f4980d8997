"""AC-1.9.6: ``tests/fixtures/sample_data.csv`` is the sample the job ships and reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from wdh_orchestration.domains.sample import sample_csv_path

pytestmark = pytest.mark.unit


def test_fixture_copy_is_identical_to_the_packaged_sample(repo_root: Path) -> None:
    fixture = repo_root / "tests" / "fixtures" / "sample_data.csv"
    assert fixture.read_bytes() == sample_csv_path().read_bytes(), (
        "tests/fixtures/sample_data.csv differs from the CSV shipped in wdh_orchestration; "
        "copy packages/wdh-orchestration/src/wdh_orchestration/sample/data/sample_data.csv"
    )


def test_packaged_sample_has_twenty_rows_with_chinese_names() -> None:
    lines = sample_csv_path().read_text(encoding="utf-8").splitlines()
    assert lines[0] == "record_id,customer_name,email,amount,transaction_date,region"
    assert len(lines) == 21
    assert any("张伟" in line for line in lines)
