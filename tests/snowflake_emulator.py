"""A Snowflake emulator (fakesnow) for tests: start it, load raw into it, stop it.

`python tests/snowflake_emulator.py --port N` serves fakesnow's HTTP API on 127.0.0.1:N,
which dbt-snowflake (the `ci_snowflake` target) and snowflake.connector talk to as if it
were Snowflake. One change to fakesnow's own server: a statement fakesnow cannot handle
answers with an error naming the exception (Snowflake's "SQL compilation error" shape)
instead of HTTP 500, which the Snowflake connector retries forever, so a CI build fails
in seconds and says why instead of hanging.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

HOST = "127.0.0.1"
DATABASE = "survey_ci"

# Dummy credentials: fakesnow accepts any. Real ones never reach a test.
CONNECTION_ENV = {
    "SNOWFLAKE_ACCOUNT": "ci_emulator",
    "SNOWFLAKE_USER": "ci",
    "SNOWFLAKE_PASSWORD": "ci",
    "SNOWFLAKE_ROLE": "transformer",
    "SNOWFLAKE_WAREHOUSE": "ci_wh",
    "SNOWFLAKE_DATABASE": DATABASE,
    "SNOWFLAKE_PROTOCOL": "http",
    "SNOWFLAKE_PRIVATE_KEY_PATH": "",
}


@dataclass
class Emulator:
    port: int
    log: Path
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """What the `ci_snowflake` target reads to reach this emulator."""
        return {**CONNECTION_ENV, "SNOWFLAKE_HOST": HOST, "SNOWFLAKE_PORT": str(self.port)}

    def connect(self, schema: str = "raw"):
        import snowflake.connector

        return snowflake.connector.connect(
            host=HOST,
            port=self.port,
            protocol="http",
            account=CONNECTION_ENV["SNOWFLAKE_ACCOUNT"],
            user=CONNECTION_ENV["SNOWFLAKE_USER"],
            password=CONNECTION_ENV["SNOWFLAKE_PASSWORD"],
            database=DATABASE,
            schema=schema,
            session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            network_timeout=60,
        )

    def errors(self) -> str:
        """fakesnow's own account of statements it could not run (for failure messages)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(line for line in text.splitlines() if "fakesnow cannot run" in line)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(log: Path, timeout: float = 60.0) -> Iterator[Emulator]:
    """Start the emulator on a free loopback port; stop it (and only it) afterwards."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    emulator = Emulator(port, log, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fakesnow exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"fakesnow did not listen on {HOST}:{port} in {timeout}s")
            time.sleep(0.2)
        yield emulator
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def load_raw_from_duckdb(emulator: Emulator, duckdb_file: Path, staging_dir: Path) -> dict[str, int]:
    """Copy every table of DuckDB's raw schema into the emulator's raw schema, as Snowflake
    bulk loads do: each table to a Parquet file, PUT on a stage, COPY INTO by column name.
    The raw tables must exist (`dbt run-operation create_raw_tables`). Returns rows per table.
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    source = duckdb.connect(str(duckdb_file), read_only=True)
    loaded = {}
    try:
        tables = [
            name
            for (name,) in source.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'raw' and table_type = 'BASE TABLE' order by 1"
            ).fetchall()
        ]
        with contextlib.closing(emulator.connect()) as con, contextlib.closing(con.cursor()) as cur:
            cur.execute("create or replace temporary stage raw.ci_raw_load")
            for table in tables:
                path = staging_dir / f"{table}.parquet"
                source.execute(f"copy (select * from raw.{table}) to '{path}' (format parquet)")
                cur.execute(f"truncate table raw.{table}")
                cur.execute(f"put 'file://{path}' @raw.ci_raw_load auto_compress = false")
                result = cur.execute(
                    f"copy into raw.{table} from @raw.ci_raw_load/{path.name} "
                    "file_format = (type = parquet) match_by_column_name = case_insensitive"
                ).fetchall()
                status, rows = result[0][1], result[0][3]
                expected = source.execute(f"select count(*) from raw.{table}").fetchone()[0]
                if status != "LOADED" or rows != expected:
                    raise RuntimeError(f"raw.{table}: COPY said {result[0]}, expected {expected} rows")
                loaded[table] = rows
    finally:
        source.close()
    return loaded


# --- the server process ------------------------------------------------------------------

_last_error: contextvars.ContextVar[str | None] = contextvars.ContextVar("last_error", default=None)


class _RememberError(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            _last_error.set(f"{type(exc).__name__}: {exc}")


def serve(port: int) -> None:
    import fakesnow.server
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    logging.getLogger("fakesnow.server").addHandler(_RememberError())
    original = fakesnow.server.query_request

    async def query_request(request):
        _last_error.set(None)
        response = await original(request)
        if response.status_code != 500:
            return response
        body = json.loads(response.body)
        reason = _last_error.get() or "unknown error"
        sql = body.get("message", "")
        print(f"fakesnow cannot run: {reason}\n  {sql[:2000]}", flush=True)
        return JSONResponse(
            {
                "data": {"errorCode": "002003", "sqlState": "42S02"},
                "code": "002003",
                "message": f"SQL compilation error:\nfakesnow cannot run this statement: {reason}",
                "success": False,
            }
        )

    routes = [
        Route(r.path, query_request, methods=list(r.methods or []))
        if r.endpoint is original
        else r
        for r in fakesnow.server.routes
    ]
    app = Starlette(routes=routes)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if sys.argv[1:2] != ["--port"] or len(sys.argv) != 3:
        sys.exit("usage: python tests/snowflake_emulator.py --port N")
    serve(int(sys.argv[2]))
