"""The run history through bound parameters, on DuckDB and on emulated Snowflake (issue 13)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

import snowflake_emulator
from orchestrate.warehouse import DuckDBWarehouse, History, SnowflakeWarehouse


@contextlib.contextmanager
def opened(kind: str, tmp_path, monkeypatch):
    if kind == "duckdb":
        warehouse = DuckDBWarehouse(duckdb.connect(str(tmp_path / "w.duckdb")))
        try:
            yield warehouse
        finally:
            warehouse.close()
        return
    with snowflake_emulator.running(tmp_path / "fakesnow.log") as emulator:
        for name, value in emulator.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DBT_SCHEMA_PREFIX", raising=False)
        warehouse = SnowflakeWarehouse()
        try:
            yield warehouse
        finally:
            warehouse.close()


@pytest.mark.parametrize("kind", ["duckdb", "snowflake"])
def test_the_run_history_keeps_values_as_they_are(kind, tmp_path, monkeypatch):
    """Values are bound, never pasted into SQL: quotes stay quotes, an aware time is stored
    in UTC, a run left `running` (killed) is marked interrupted by the next one."""
    started = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with opened(kind, tmp_path, monkeypatch) as warehouse:
        history = History(warehouse)
        row = {"run_id": "r1", "command": "run", "target": "dev", "options": '{"select": ["it\'s"]}',
               "started_at": started, "status": "running", "steps": "{}", "report_path": "/tmp/o'brien/report.html"}
        assert history.start(row) is None
        history.update("r1", {"status": "passed", "built_through": started, "build_scope": "only what's new"})
        last = history.last("dev")
        assert last["options"] == {"select": ["it's"]}
        assert last["report_path"] == "/tmp/o'brien/report.html" and last["build_scope"] == "only what's new"
        assert history.built_through("r1") == datetime(2026, 3, 1, 10, 30)  # UTC, as stored
        assert history.last("prod") is None

        assert history.start({**row, "run_id": "r2", "started_at": started + timedelta(hours=1)}) == ("r1", "passed")
        assert history.start({**row, "run_id": "r3", "started_at": started + timedelta(hours=2)}) == ("r2", "running")
        assert [r["run_id"] for r in history.recent()] == ["r3", "r2", "r1"]
        statuses = dict(warehouse.rows(f"select run_id, status from {history.table}"))
        assert statuses == {"r1": "passed", "r2": "interrupted", "r3": "running"}
