"""The README's run command works from a fresh clone and ends by saying where results are."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PROJECT_DIR


def test_make_run_from_a_fresh_clone_says_where_the_results_are(tmp_path):
    if subprocess.run(["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(clone)], check=True)
    # The environment `make test` already built, instead of a second install; -o keeps
    # make from reinstalling into it because the clone's lock file looks newer.
    (clone / ".venv").symlink_to(PROJECT_DIR / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "DUCKDB_"))}
    proc = subprocess.run(
        ["make", "-o", ".venv/.installed", "run", "SCALE=0.005"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    ending = proc.stdout.strip().splitlines()[-6:]
    db = clone / "data" / "warehouse.duckdb"
    assert any(f"DuckDB file {db}, schema marts" in line for line in ending), ending
    assert any("query:" in line and "marts.topic_results" in line for line in ending), ending
    assert any(line.startswith("Report: ") for line in ending), ending
    assert db.exists()
    assert list((clone / "data" / "extracts" / "question_responses").glob("*.ndjson.gz"))
