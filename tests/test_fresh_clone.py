"""The README's run command works from a fresh clone and ends by saying where results are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import PROJECT_DIR, warehouse_env


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


def test_orchestrate_installed_with_pip_runs_from_another_folder(built_warehouse, tmp_path):
    """`pip install -e .` gives an `orchestrate` command that drives this dbt project from
    any folder. A scratch environment sees the dependencies already installed (no second
    install) but not the project, which it gets only from pip."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = list((venv / "lib").glob("python*/site-packages"))
    (site / "installed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import orchestrate"], cwd=tmp_path,
                          capture_output=True).returncode != 0, "the project is importable before it is installed"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                           "--disable-pip-version-check", "--no-deps", "--no-build-isolation", "-e", str(PROJECT_DIR)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(built_warehouse.db, elsewhere / "warehouse.duckdb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "DUCKDB_", "ORCHESTRATE_"))}
    env.update(warehouse_env(elsewhere), ORCHESTRATE_REPORTS_DIR=str(elsewhere / "reports"))
    proc = subprocess.run([str(venv / "bin" / "orchestrate"), "run", "--select", "stg_replica__districts"],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    report = json.loads((elsewhere / "reports" / "latest" / "report.json").read_text())
    assert [r["name"] for r in report["dbt"]["results"] if r["resource_type"] == "model"] == ["stg_replica__districts"]
    assert report["dbt"]["command"].startswith("dbt build --select stg_replica__districts")
