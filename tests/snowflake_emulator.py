"""A Snowflake emulator (fakesnow) for tests: start it, load raw into it, stop it.

`python tests/snowflake_emulator.py --port N` serves fakesnow's HTTP API on 127.0.0.1:N,
which dbt-snowflake (the `ci_snowflake` target) and snowflake.connector talk to as if it
were Snowflake. Additions to fakesnow's own server:

- A statement fakesnow cannot handle answers with an error naming the exception
  (Snowflake's "SQL compilation error" shape) instead of HTTP 500, which the Snowflake
  connector retries forever, so a CI build fails in seconds and says why.
- Access control and session statements fakesnow does not implement are emulated here,
  so the build runs the same statements as production: `grant … on … to …`,
  `revoke … from …`, `show grants on …` (answered from the grants made), and the session
  query tag (`alter session set/unset query_tag`, `show parameters like 'query_tag' in
  session`). They only record: nothing is enforced. Every statement is appended to
  `<log>.statements.jsonl` with the session's query tag when it ran and its duration.
- information_schema.tables lists views too (table_type VIEW), as Snowflake's does, so
  dbt's catalog describes view models.
- Each statement is translated on one copy of its syntax tree, not one copy per fakesnow
  transform, copied again only where a transform leaves it no longer a tree
  (`_translate_on_one_copy`): the same SQL as fakesnow's, several times faster.
"""

from __future__ import annotations

import contextlib
import contextvars
import gzip
import json
import logging
import re
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

    def statements(self) -> list[dict]:
        """Every statement the emulator received: {"sql", "query_tag"} (see module doc)."""
        path = statements_log(self.log)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def grants(self) -> dict[str, dict[str, set[str]]]:
        """Grants in force at the end: object name -> privilege -> grantee roles."""
        granted: dict[str, dict[str, set[str]]] = {}
        for statement in self.statements():
            if (dcl := _parse_dcl(statement["sql"])) is None:
                continue
            verb, privilege, name, roles = dcl
            by_privilege = granted.setdefault(name, {})
            if verb == "grant":
                by_privilege.setdefault(privilege, set()).update(roles)
            else:
                by_privilege.get(privilege, set()).difference_update(roles)
        return granted

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
            [sys.executable, __file__, "--port", str(port), "--log", str(log)],
            stdout=out,
            stderr=subprocess.STDOUT,
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


def statements_log(log: Path) -> Path:
    return log.with_name(log.name + ".statements.jsonl")


_DCL = re.compile(
    r"^\s*(?P<verb>grant|revoke)\s+(?P<privilege>[\w ]+?)\s+on\s+(?:(?:table|view)\s+)?"
    r"(?P<name>[\w.\"$]+)\s+(?:to|from)\s+(?:role\s+)?(?P<roles>.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SHOW_GRANTS = re.compile(
    r"^\s*show\s+grants\s+on\s+(?:(?:table|view)\s+)?(?P<name>[\w.\"$]+)\s*;?\s*$", re.IGNORECASE
)
_SET_TAG = re.compile(r"^\s*alter\s+session\s+set\s+query_tag\s*=\s*'(?P<tag>(?:[^']|'')*)'\s*;?\s*$", re.I)
_UNSET_TAG = re.compile(r"^\s*alter\s+session\s+unset\s+query_tag\s*;?\s*$", re.IGNORECASE)
_SHOW_TAG = re.compile(r"^\s*show\s+parameters\s+like\s+'query_tag'\s+in\s+session\s*;?\s*$", re.I)


def _object_name(name: str) -> str:
    return name.replace('"', "").upper()


def _parse_dcl(sql: str) -> tuple[str, str, str, list[str]] | None:
    sql = re.sub(r"/\*.*?\*/", "", sql, flags=re.DOTALL)
    if not (m := _DCL.match(sql)):
        return None
    roles = [_object_name(r.strip()) for r in m["roles"].split(",")]
    return m["verb"].lower(), m["privilege"].upper(), _object_name(m["name"]), roles


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def _status(message: str) -> str:
    return f'select {_literal(message)} as "status"'


class _Account:
    """What fakesnow leaves out, kept here: grants and each session's query tag."""

    def __init__(self, log: Path) -> None:
        self.grants: dict[str, dict[str, set[str]]] = {}
        self.query_tags: dict[str, str | None] = {}
        self.out = statements_log(log).open("a", buffering=1)

    def rewrite(self, token: str, sql: str) -> str | None:
        """The SQL fakesnow should run instead of `sql`, or None to run `sql` itself."""
        bare = re.sub(r"/\*.*?\*/", "", sql, flags=re.DOTALL).strip()
        if m := _SET_TAG.match(bare):
            self.query_tags[token] = m["tag"].replace("''", "'")
            return _status("Statement executed successfully.")
        if _UNSET_TAG.match(bare):
            self.query_tags[token] = None
            return _status("Statement executed successfully.")
        if _SHOW_TAG.match(bare):
            return (
                f'select \'QUERY_TAG\' as "key", {_literal(self.query_tags.get(token) or "")} as "value", '
                '\'\' as "default", \'SESSION\' as "level", \'\' as "description", \'STRING\' as "type"'
            )
        if m := _SHOW_GRANTS.match(bare):
            name = _object_name(m["name"])
            rows = [
                f"select null::timestamp as \"created_on\", {_literal(privilege)} as \"privilege\", "
                f"'TABLE' as \"granted_on\", {_literal(name)} as \"name\", 'ROLE' as \"granted_to\", "
                f"{_literal(role)} as \"grantee_name\", 'false' as \"grant_option\", "
                f"'CI' as \"granted_by\""
                for privilege, roles in sorted(self.grants.get(name, {}).items())
                for role in sorted(roles)
            ]
            return " union all ".join(rows) or (
                'select null::timestamp as "created_on", \'\' as "privilege", \'\' as "granted_on", '
                '\'\' as "name", \'\' as "granted_to", \'\' as "grantee_name", '
                '\'\' as "grant_option", \'\' as "granted_by" where false'
            )
        if dcl := _parse_dcl(bare):
            verb, privilege, name, roles = dcl
            by_privilege = self.grants.setdefault(name, {})
            if verb == "grant":
                by_privilege.setdefault(privilege, set()).update(roles)
            else:
                by_privilege.get(privilege, set()).difference_update(roles)
            return _status("Statement executed successfully.")
        return None

    def record(self, token: str, sql: str, query_tag: str | None, seconds: float) -> None:
        entry = {"sql": sql.strip()[:2000], "query_tag": query_tag, "seconds": seconds}
        self.out.write(json.dumps(entry) + "\n")


_last_error: contextvars.ContextVar[str | None] = contextvars.ContextVar("last_error", default=None)


class _RememberError(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            _last_error.set(f"{type(exc).__name__}: {exc}")


def _list_views_in_information_schema_tables() -> None:
    """Snowflake's information_schema.tables lists views (table_type VIEW) beside tables;
    fakesnow's lists tables only, so dbt's catalog (docs generate) would miss view models."""
    import fakesnow.info_schema as info

    template = info.SQL_CREATE_INFORMATION_SCHEMA_TABLES_VIEW.template
    if "duckdb_views" in template:
        return
    views = """
union all
select
    views.database_name, views.schema_name, views.view_name, 'SYSADMIN', 'VIEW', 'NO',
    null::varchar, null, 0, 1, null::varchar, null::varchar, null::varchar, null::varchar,
    null::varchar, 'NO', 'YES', null::varchar, to_timestamp(0)::timestamptz,
    to_timestamp(0)::timestamptz, to_timestamp(0)::timestamptz, 'SYSADMIN', 'NO',
    views.comment, 'NO', 'NO', 'NO', 'NO', 'NO'
from duckdb_views as views
where views.database_name = '${catalog}'
  and views.schema_name != '_fs_information_schema'
"""
    info.SQL_CREATE_INFORMATION_SCHEMA_TABLES_VIEW = type(info.SQL_CREATE_INFORMATION_SCHEMA_TABLES_VIEW)(
        template.rstrip().rstrip(";") + views)


def _sound(root) -> bool:
    """Whether a syntax tree is a tree: no node in two places, every node's parent, key and
    index those it hangs under (what sqlglot's transform relies on to replace a node)."""
    from sqlglot.expressions.core import Expression

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return False
        seen.add(id(node))
        for key, value in node.args.items():
            placed = enumerate(value) if isinstance(value, list) else [(None, value)]
            for index, child in placed:
                if not isinstance(child, Expression):
                    continue
                if child.parent is not node or child.arg_key != key or child.index != index:
                    return False
                stack.append(child)
    return True


def _translate_on_one_copy():
    """fakesnow translates a statement with some 80 sqlglot transforms in a row
    (`FakeSnowflakeCursor._transform`), each of which deep-copies the whole tree first
    (sqlglot's `Expression.transform(copy=True)`): on the suppression model (95 KB of SQL,
    40 unrolled passes) that took 20 s, four fifths of it copying. Here the statement is
    copied once and the chain's transforms work on that copy in place. A copy did more than
    protect the input: it also split a node that a transform put in two places (fakesnow's
    `array_size` does) and mended parents a transform did not set. So after each transform
    the tree is checked (`_sound`) and copied when it is not a tree, or when the transform
    returned another root (fakesnow's shared `SUCCESS_NOP`, a rewritten statement): each
    transform then sees what it would have seen in fakesnow, and the SQL is the same
    (`test_snowflake.py::test_the_emulators_translation_is_fakesnows`). Transforms that
    a transform runs inside itself keep their own copies. Returns a function that undoes
    the patch."""
    import threading

    from fakesnow.cursor import FakeSnowflakeCursor
    from sqlglot.expressions.core import Expression

    # translating.depth: None outside _transform; 0 between the chain's transforms; 1 inside
    # one of them (a transform it runs itself keeps its own copy argument)
    translating = threading.local()
    original_transform = Expression.transform
    original_translate = FakeSnowflakeCursor._transform

    def transform(self, fun, *args, copy: bool = True, **kwargs):
        depth = getattr(translating, "depth", None)
        if depth is None or depth > 0:
            return original_transform(self, fun, *args, copy=copy, **kwargs)
        translating.depth = 1
        try:
            result = original_transform(self, fun, *args, copy=False, **kwargs)
        finally:
            translating.depth = 0
        return result.copy() if result is not self or not _sound(result) else result

    def translate(self, expression, params):
        translating.depth = 0
        try:
            return original_translate(self, expression.copy(), params)
        finally:
            translating.depth = None

    def undo() -> None:
        Expression.transform = original_transform
        FakeSnowflakeCursor._transform = original_translate

    Expression.transform = transform
    FakeSnowflakeCursor._transform = translate
    return undo


def serve(port: int, log: Path) -> None:
    import fakesnow.server
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    logging.getLogger("fakesnow.server").addHandler(_RememberError())
    _list_views_in_information_schema_tables()
    _translate_on_one_copy()
    original_query = fakesnow.server.query_request
    original_login = fakesnow.server.login_request
    account = _Account(log)

    async def read_json(request) -> dict:
        body = await request.body()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)

    def replace_json(request, data: dict) -> None:
        body = json.dumps(data).encode()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.compress(body)
        request._body = body  # starlette hands the cached body to the endpoint

    async def login_request(request):
        tag = (await read_json(request))["data"].get("SESSION_PARAMETERS", {}).get("QUERY_TAG")
        response = await original_login(request)
        token = (json.loads(response.body).get("data") or {}).get("token")
        if token:
            account.query_tags[token] = tag
        return response

    async def query_request(request):
        _last_error.set(None)
        token = fakesnow.server.to_token(request) if request.headers.get("Authorization") else ""
        data = await read_json(request)
        sql = data["sqlText"]
        started = time.perf_counter()
        tag = account.query_tags.get(token)
        if (rewritten := account.rewrite(token, sql)) is not None:
            replace_json(request, {**data, "sqlText": rewritten})
        response = await original_query(request)
        account.record(token, sql, tag, round(time.perf_counter() - started, 4))
        if response.status_code != 500:
            return response
        reason = _last_error.get() or "unknown error"
        print(f"fakesnow cannot run: {reason}\n  {sql[:2000]}", flush=True)
        return JSONResponse(
            {
                "data": {"errorCode": "002003", "sqlState": "42S02"},
                "code": "002003",
                "message": f"SQL compilation error:\nfakesnow cannot run this statement: {reason}",
                "success": False,
            }
        )

    replacements = {original_query: query_request, original_login: login_request}
    routes = [
        Route(r.path, replacements[r.endpoint], methods=list(r.methods or []))
        if r.endpoint in replacements
        else r
        for r in fakesnow.server.routes
    ]
    uvicorn.run(Starlette(routes=routes), host=HOST, port=port, log_level="warning")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--port"] or sys.argv[3:4] != ["--log"] or len(sys.argv) != 5:
        sys.exit("usage: python tests/snowflake_emulator.py --port N --log FILE")
    serve(int(sys.argv[2]), Path(sys.argv[4]))
