"""The warehouse: where it lives, how to open it, what its schemas are called, the run
history it keeps and the lock that lets one run at a time use it.

The DuckDB file is the one dbt's `dev` target uses (profiles.yml reads the same
environment variables), so the ingester's raw tables and dbt's models share one file.
Snowflake is reached with the settings profiles.yml reads. Both connections have the same
small interface (rows, scalar, execute, df, exists, close) and take bound parameters
(`?`), never values pasted into SQL.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from orchestrate.errors import UserError, explain



def find_project_dir() -> Path:
    """The dbt project the orchestrator drives: $ORCHESTRATE_PROJECT_DIR; else the
    checkout this package is in (an editable install, `pip install -e .`); else the
    nearest folder holding dbt_project.yml from the current one up."""
    if os.environ.get("ORCHESTRATE_PROJECT_DIR"):
        found = Path(os.environ["ORCHESTRATE_PROJECT_DIR"]).expanduser().resolve()
        if not (found / "dbt_project.yml").exists():
            raise UserError(f"ORCHESTRATE_PROJECT_DIR={found} holds no dbt_project.yml: point it "
                            "at the warehouse project's folder.")
        return found
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "dbt_project.yml").exists():
        return checkout
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "dbt_project.yml").exists():
            return folder
    raise UserError("no dbt project found: run from the warehouse project's folder, or set "
                    "ORCHESTRATE_PROJECT_DIR to it.")


PROJECT_DIR = find_project_dir()
ORCHESTRATE_SCHEMA = "orchestrate"  # run history and snapshots: the orchestrator's, not dbt's


class WarehouseBusy(UserError):
    """Another process holds the DuckDB file's write lock."""


class RunRefused(UserError):
    """Another run holds this warehouse."""


# --------------------------------------------------------------------------------------
# Names


def schema_name(layer: str) -> str:
    """A schema as macros/generate_schema_name.sql names it: DBT_SCHEMA_PREFIX (a pull
    request's `pr_123`) before the layer's name, `pr_123_marts`."""
    prefix = os.environ.get("DBT_SCHEMA_PREFIX", "").strip()
    return f"{prefix}_{layer}" if prefix else layer


def orchestrate_schema_name() -> str:
    return schema_name(ORCHESTRATE_SCHEMA)


def history_table() -> str:
    """The run history's relation: orchestrate.run_history (with the schema prefix)."""
    return f"{orchestrate_schema_name()}.run_history"


# --------------------------------------------------------------------------------------
# Connections


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


def _bindable(params: list | None) -> list:
    """Aware datetimes as naive UTC: both warehouses store `timestamp` without zone."""
    return [p.astimezone(timezone.utc).replace(tzinfo=None)
            if isinstance(p, datetime) and p.tzinfo is not None else p for p in params or []]


class DuckDBWarehouse:
    """The DuckDB file."""

    kind = "duckdb"

    def __init__(self, con):
        self.con = con

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(sql, _bindable(params)).fetchall()

    def scalar(self, sql: str, params: list | None = None):
        return self.con.execute(sql, _bindable(params)).fetchone()[0]

    def execute(self, sql: str, params: list | None = None) -> None:
        self.con.execute(sql, _bindable(params))

    def df(self, sql: str, params: list | None = None):
        return self.con.execute(sql, _bindable(params)).df()

    def exists(self, relation: str) -> bool:
        try:
            self.con.execute(f"select 1 from {relation} where 1 = 0")
            return True
        except duckdb.CatalogException:
            return False

    def close(self) -> None:
        self.con.close()


class SnowflakeWarehouse:
    """Snowflake, with the settings profiles.yml reads (qmark parameters, as DuckDB's)."""

    kind = "snowflake"

    def __init__(self):
        import snowflake.connector

        names = ("account", "user", "role", "warehouse", "database")
        missing = [f"SNOWFLAKE_{n.upper()}" for n in names if not os.environ.get(f"SNOWFLAKE_{n.upper()}")]
        if missing:
            raise UserError(f"set {', '.join(missing)} to check the Snowflake warehouse "
                            "(the same variables profiles.yml reads)")
        self.settings = {n: os.environ[f"SNOWFLAKE_{n.upper()}"] for n in names}
        if os.environ.get("SNOWFLAKE_HOST"):  # the ci_snowflake target's emulator
            self.settings.update(host=os.environ["SNOWFLAKE_HOST"],
                                 port=int(os.environ.get("SNOWFLAKE_PORT", "443")),
                                 protocol=os.environ.get("SNOWFLAKE_PROTOCOL", "https"))
        auth: dict[str, Any] = {}
        if os.environ.get("SNOWFLAKE_PRIVATE_KEY_PATH"):
            auth["private_key_file"] = os.environ["SNOWFLAKE_PRIVATE_KEY_PATH"]
            if os.environ.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"):
                auth["private_key_file_pwd"] = os.environ["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"]
        else:
            auth["password"] = os.environ.get("SNOWFLAKE_PASSWORD", "")
        self.auth = auth
        self.con = snowflake.connector.connect(**self.settings, **auth, paramstyle="qmark")

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.con.cursor() as cur:
            cur.execute(sql, _bindable(params) or None)
            return cur.fetchall()

    def scalar(self, sql: str, params: list | None = None):
        return self.rows(sql, params)[0][0]

    def execute(self, sql: str, params: list | None = None) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql, _bindable(params) or None)

    def df(self, sql: str, params: list | None = None):
        with self.con.cursor() as cur:
            cur.execute(sql, _bindable(params) or None)
            frame = cur.fetch_pandas_all()
        frame.columns = [c.lower() for c in frame.columns]
        return frame

    def exists(self, relation: str) -> bool:
        try:
            self.execute(f"select 1 from {relation} where 1 = 0")
            return True
        except Exception:  # snowflake.connector.errors.ProgrammingError: does not exist
            return False

    def connection_details(self) -> dict:
        """The connection as great-expectations' Snowflake datasource takes it."""
        details: dict[str, Any] = {
            "account": self.settings["account"],
            "user": self.settings["user"],
            "role": self.settings["role"],
            "warehouse": self.settings["warehouse"],
            "database": self.settings["database"],
            "schema": os.environ.get("SNOWFLAKE_SCHEMA", "marts"),
        }
        if "private_key_file" in self.auth:
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_private_key(
                Path(self.auth["private_key_file"]).read_bytes(),
                password=(self.auth.get("private_key_file_pwd") or "").encode() or None,
            )
            details["private_key"] = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            details["password"] = self.auth["password"]
        return details

    def close(self) -> None:
        self.con.close()


def open_warehouse(target_type: str):
    """A connection to the warehouse of a target's adapter type (dbt.adapter_type)."""
    if target_type == "duckdb":
        return DuckDBWarehouse(connect())
    if target_type == "snowflake":
        return SnowflakeWarehouse()
    raise UserError(f"no warehouse connection for adapter {target_type!r} (duckdb and snowflake are supported)")


def where_results_are(target_type: str) -> list[str]:
    """Where the marts are and a query that reads them, as a person would type it."""
    if target_type == "duckdb":
        db = duckdb_path()
        return [
            f"DuckDB file {db}, schema marts",
            f"""query: {sys.executable} -c "import duckdb; print(duckdb.connect('{db}', read_only=True).sql('select * from marts.topic_results limit 10'))\"""",
        ]
    database = os.environ.get("SNOWFLAKE_DATABASE", "<database>")
    marts = schema_name("marts")
    return [f"Snowflake database {database}, schema {marts}",
            f"query: select * from {database}.{marts}.topic_results limit 10"]


# --------------------------------------------------------------------------------------
# The run lock: one run at a time per warehouse


def lock_path(artifacts: Path, target: str, target_type: str) -> Path:
    """Beside the DuckDB file; for Snowflake in the target's dbt artifacts folder."""
    if target_type == "duckdb":
        db = duckdb_path()
        return db.with_name(db.name + ".run.lock")
    return artifacts / f"orchestrate-{target}.run.lock"


def acquire_lock(path: Path, holder: str):
    """Hold an exclusive lock for the whole run; refuse at once if another run has it.
    The OS releases it when the file is closed or the process dies, even by kill -9."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunRefused(
            f"another run is already using this warehouse ({holder}); lock file {path}. "
            "Nothing was done and that run is unharmed: wait for it to finish, then look at "
            "its report (reports/latest) or run again."
        ) from None
    describe_holder(handle, holder)
    return handle


def describe_holder(handle, holder: str) -> None:
    """Say in the lock file who holds it, for the message another run prints."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{holder}, pid {os.getpid()}, since "
                 f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
    handle.flush()


# --------------------------------------------------------------------------------------
# Run history: orchestrate.run_history, one row per run

HISTORY_COLUMNS = {
    "run_id": "varchar primary key",
    "command": "varchar not null",
    "retry_of": "varchar",
    "target": "varchar not null",
    "options": "varchar",
    "started_at": "timestamp not null",
    "ended_at": "timestamp",
    "status": "varchar not null",
    "exit_code": "integer",
    "steps": "varchar",
    "files_loaded": "bigint",
    "rows_loaded": "bigint",
    "lines_quarantined": "bigint",
    "dbt_state": "varchar",
    "report_path": "varchar",
}
# Added after the first release: warehouses created before have the table without them.
HISTORY_ADDED_COLUMNS = {"build_scope": "varchar", "build_fingerprint": "varchar",
                         "built_through": "timestamp"}


class History:
    """orchestrate.run_history of one warehouse (the caller holds the run lock)."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.table = history_table()

    def exists(self) -> bool:
        return self.warehouse.exists(self.table)

    def start(self, row: dict) -> tuple[str, str] | None:
        """Create the table if need be, mark runs still `running` as interrupted (we hold
        the lock: they were killed), insert this run's row; return the target's previous
        run (run_id, status as it was) or None."""
        w = self.warehouse
        w.execute(f"create schema if not exists {orchestrate_schema_name()}")
        columns = ", ".join(f"{name} {kind}" for name, kind in HISTORY_COLUMNS.items())
        w.execute(f"create table if not exists {self.table} ({columns})")
        for column, column_type in HISTORY_ADDED_COLUMNS.items():
            w.execute(f"alter table {self.table} add column if not exists {column} {column_type}")
        previous = w.rows(f"select run_id, status from {self.table} where target = ? "
                          "order by started_at desc limit 1", [row["target"]])
        w.execute(f"update {self.table} set status = 'interrupted' where status = 'running'")
        names = list(row)
        w.execute(f"insert into {self.table} ({', '.join(names)}) "
                  f"values ({', '.join('?' for _ in names)})", [row[n] for n in names])
        return previous[0] if previous else None

    def update(self, run_id: str, values: dict) -> None:
        names = list(values)
        self.warehouse.execute(
            f"update {self.table} set {', '.join(f'{n} = ?' for n in names)} where run_id = ?",
            [values[n] for n in names] + [run_id])

    def recent(self, limit: int = 10) -> list[dict]:
        from orchestrate.checks import to_jsonable

        frame = self.warehouse.df(
            f"select run_id, command, status, started_at, ended_at, files_loaded, rows_loaded, "
            f"report_path from {self.table} order by started_at desc limit ?", [limit + 1])
        return to_jsonable(frame.to_dict(orient="records"))

    def last(self, target: str) -> dict | None:
        """The target's most recent run, options and steps decoded."""
        from orchestrate.checks import to_jsonable

        if not self.exists():
            return None
        frame = self.warehouse.df(f"select * from {self.table} where target = ? "
                                  "order by started_at desc limit 1", [target])
        if frame.empty:
            return None
        row = to_jsonable(frame.iloc[0].to_dict())
        row["options"] = json.loads(row["options"] or "{}")
        row["steps"] = json.loads(row["steps"] or "{}")
        return row

    def built_through(self, run_id: str) -> datetime | None:
        """The ledger time a passing build of `run_id` made the marts current to."""
        rows = self.warehouse.rows(
            f"select built_through from {self.table} where run_id = ? and built_through is not null",
            [run_id])
        return rows[0][0] if rows else None
