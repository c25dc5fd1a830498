"""Where the local warehouse lives and how to open it.

The DuckDB file is the one dbt's `dev` target uses (profiles.yml reads the same
environment variables), so the ingester's raw tables and dbt's models share one file.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from orchestrate.errors import UserError, explain

PROJECT_DIR = Path(__file__).resolve().parent.parent


class WarehouseBusy(UserError):
    """Another process holds the DuckDB file's write lock."""


def duckdb_path() -> Path:
    path = Path(os.environ.get("DBT_DUCKDB_PATH", "data/warehouse.duckdb"))
    return path if path.is_absolute() else PROJECT_DIR / path


def connect(path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the same memory limit and spill directory as dbt."""
    path = path or duckdb_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise explain(exc) or UserError(f"cannot create the warehouse's folder: {exc}") from exc
    temp_dir = Path(os.environ.get("DUCKDB_TEMP_DIRECTORY", "data/duckdb_tmp"))
    if not temp_dir.is_absolute():
        temp_dir = PROJECT_DIR / temp_dir
    config = {
        "memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "3GB"),
        "temp_directory": str(temp_dir),
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"{path} is in use by another process (DuckDB allows one writer per file). "
                "Wait for it to finish, or close the program holding it (a notebook, a SQL "
                "client, another `python -m orchestrate` command), then try again."
            ) from exc
        explained = explain(exc)
        if explained is not None:
            raise explained from exc
        raise
    con.execute("set enable_progress_bar = false")
    return con
