"""Shared fixtures: every test gets its own DuckDB file, dbt target folder and logs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from orchestrate import contract

PROJECT_DIR = Path(__file__).resolve().parent.parent


# The files whose tests take longest, longest first (CI's --durations, worker-seconds). The
# suite runs a file per xdist worker (pyproject.toml: --dist loadfile, in collection order:
# --no-loadscope-reorder); a long file started last would end the suite with one worker
# busy and the other idle, as test_run.py did (~1170 worker-seconds, begun ~700 s in).
LONGEST_FIRST = ("test_run.py", "test_incremental.py", "test_snowflake.py", "test_bench.py",
                 "test_pr_check.py")


def pytest_collection_modifyitems(items):
    """The longest files first, the others as collected (a stable sort)."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """A private warehouse: DBT_DUCKDB_PATH and dbt's target/log folders under tmp_path."""
    db = tmp_path / "warehouse.duckdb"
    for name, value in warehouse_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return db


def warehouse_env(folder: Path) -> dict[str, str]:
    return {
        "DBT_DUCKDB_PATH": str(folder / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
        "DUCKDB_TEMP_DIRECTORY": str(folder / "duckdb_tmp"),
    }


def scratch_project(folder: Path) -> Path:
    """A copy of the project's files (no .venv, data, dbt output or git) under `folder`, to
    make a bad change in. `python -m orchestrate` run with cwd there works on the copy."""
    copy = folder / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "data", "target", "logs", "reports", ".pytest_cache", "__pycache__", "*.duckdb"))
    return copy


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = False,
            cwd: Path = PROJECT_DIR):
    """`python -m orchestrate ...` in a subprocess, as a user would run it (in `cwd`: the
    project, or a scratch copy of it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_extract(
    root: Path, table: str, day: datetime, lines: list[str], part: int = 0
) -> Path:
    """Write lines (already serialized) as one extract file for the day starting at `day`."""
    start = day.replace(tzinfo=timezone.utc)
    path = root / table / contract.file_name(table, start, start + timedelta(days=1), part)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def change(op: str, seq: int, ts: str = "2024-09-03T10:00:00.000Z", **row) -> str:
    return json.dumps({"_op": op, "_ts": ts, "_seq": seq, **row})


def table_fingerprints(db: Path) -> dict[str, tuple]:
    """Row count and an order-independent content hash of every table in every schema."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        out = {}
        for schema, name in tables:
            out[f"{schema}.{name}"] = con.execute(
                f'select count(*), sum(hash(t)) from "{schema}"."{name}" as t'
            ).fetchone()
        return out
    finally:
        con.close()


SAMPLE_SCALE = 0.02
SAMPLE_SEED = 7


@pytest.fixture(scope="session")
def sample_extracts(tmp_path_factory) -> Path:
    """Generated extracts at a small scale, shared by the whole session (read-only)."""
    out = tmp_path_factory.mktemp("sample") / "extracts"
    run_cli("generate", "--out", str(out), "--scale", str(SAMPLE_SCALE), "--seed", str(SAMPLE_SEED), check=True)
    return out


@dataclass
class BuiltWarehouse:
    db: Path
    env: dict[str, str]
    extracts: Path

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def df(self, sql: str):
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).df()
        finally:
            con.close()


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory, sample_extracts) -> BuiltWarehouse:
    """The sample extracts ingested and `dbt build` run once; tests only read it."""
    folder = tmp_path_factory.mktemp("built")
    env = warehouse_env(folder)
    run_cli("ingest", "--extracts", str(sample_extracts), "--quiet", env=env, check=True)
    dbt_build(env)
    return BuiltWarehouse(Path(env["DBT_DUCKDB_PATH"]), env, sample_extracts)


def dbt_build(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`dbt build` in a subprocess against the warehouse that `env` points at."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", str(PROJECT_DIR),
         "--project-dir", str(PROJECT_DIR), *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise AssertionError(f"dbt build failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc
