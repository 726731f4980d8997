"""The ``alembic`` command line: one ``FAILED:`` line for a database it cannot reach, and
generated revisions whose ids pass the secret scan as they are."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret
ALEMBIC = [sys.executable, "-m", "alembic"]


def _alembic(args: list[str], cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "LOG_LEVEL"}}
    env |= environ
    return subprocess.run(
        [*ALEMBIC, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ENVIRONMENT": "prod"}, "FAILED: invalid settings: DATABASE_URL is required"),
        (
            {"ENVIRONMENT": "staging", "DATABASE_URL": f"postgresql://u:{PLANTED}@h:port/db"},
            "FAILED: the database URL is malformed",
        ),
        (
            {"ENVIRONMENT": "staging", "DATABASE_URL": "{unknown}"},
            'database "wdh_nope" does not exist',
        ),
        ({"ENVIRONMENT": "staging", "DATABASE_URL": "{unreachable}"}, "Connection refused"),
    ],
    ids=["missing-url", "malformed-url", "unknown-database", "unreachable"],
)
def test_upgrade_that_cannot_reach_the_database_is_one_line(
    database_url: URL, repo_root: Path, environ: dict[str, str], expected: str
) -> None:
    urls = {
        "unknown": database_url.set(database="wdh_nope", password=PLANTED),
        "unreachable": database_url.set(host="127.0.0.1", port=1, query={}, password=PLANTED),
    }
    rendered = {k: u.render_as_string(hide_password=False) for k, u in urls.items()}
    env = {k: v.format(**rendered) for k, v in environ.items()}

    completed = _alembic(["-c", "packages/wdh-io/alembic.ini", "upgrade", "head"], repo_root, **env)

    assert completed.returncode != 0
    output = (completed.stdout + completed.stderr).strip()
    # One message, no traceback: Alembic prints it as "FAILED: ..." on stdout (and logs
    # the same text on stderr through alembic.ini's logging).
    [line] = completed.stdout.strip().splitlines()
    assert line.startswith("FAILED: ")
    assert expected in line
    assert completed.stderr.strip() in {"", f"ERROR [alembic.util.messaging] {line[8:]}"}
    assert "Traceback" not in output
    assert PLANTED not in output

    debug = _alembic(
        ["-c", "packages/wdh-io/alembic.ini", "upgrade", "head"],
        repo_root,
        LOG_LEVEL="DEBUG",
        **env,
    )
    assert "Traceback" in debug.stderr  # the detail is there when asked for
    assert PLANTED not in debug.stdout + debug.stderr


def test_generated_revisions_have_readable_ids_that_pass_the_secret_scan(
    repo_root: Path, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(repo_root / "packages/wdh-io/src/wdh_io/migrations", migrations)
    ini = tmp_path / "alembic.ini"
    original = (repo_root / "packages/wdh-io/alembic.ini").read_text(encoding="utf-8")
    ini.write_text(
        original.replace("%(here)s/src/wdh_io/migrations", "%(here)s/migrations"), encoding="utf-8"
    )
    messages = [f"Add table {n}: rejected rows & friends" for n in range(6)]
    for message in messages:
        completed = _alembic(["-c", str(ini), "revision", "-m", message], tmp_path)
        assert completed.returncode == 0, completed.stderr

    generated = sorted(p for p in (migrations / "versions").glob("*.py") if "add_table_" in p.name)
    assert len(generated) == len(messages)
    ids = [
        re.search(r"^revision: str = '([^']+)'$", p.read_text(encoding="utf-8"), re.M).group(1)  # type: ignore[union-attr]
        for p in generated
    ]
    assert len(set(ids)) == len(ids)
    for revision_id in ids:
        assert len(revision_id) <= 32  # alembic_version.version_num
        assert re.fullmatch(r"\d{8}_\d{6}_add_table_\d_[a-z_]*", revision_id), revision_id
    heads = _alembic(["-c", str(ini), "heads"], tmp_path)
    assert heads.returncode == 0
    assert len(heads.stdout.strip().splitlines()) == 1  # one chain, each revising the last

    scan = subprocess.run(
        [sys.executable, "-m", "detect_secrets.pre_commit_hook", *map(str, generated)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert scan.returncode == 0, scan.stdout + scan.stderr
