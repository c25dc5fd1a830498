"""Shared fixtures: every test gets its own DuckDB file, dbt target folder and logs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from orchestrate import contract

PROJECT_DIR = Path(__file__).resolve().parent.parent


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


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = False):
    """`python -m orchestrate ...` in a subprocess, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        cwd=PROJECT_DIR,
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
