"""No personal data past staging: the built warehouse's non-raw schemas hold no student's
name, email, birth date or district-local id, by value or by column name, and the marts
hold no platform student id (they carry student_key instead)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent

PERSONAL_COLUMNS = ("first_name", "last_name", "email", "birth_date", "local_student_id")
# Column names that suggest personal data, wherever they appear past raw.
PERSONAL_NAME = re.compile(
    r"(^|_)(first|last|middle|given|family|full|sur|student)_?name($|_)"
    r"|e_?mail|birth|(^|_)dob($|_)|local_(student_)?id|(^|_)ssn($|_)|phone|address"
)
TEXT_TYPES = ("VARCHAR", "JSON", "DATE")  # numbers are checked by column name only
NOT_READER_SCHEMAS = ("raw", "information_schema", "pg_catalog")


def seed_vocabulary() -> set[str]:
    """Every cell of the committed seeds: reference data, not student data.

    A surname can also be a word of the standard vocabulary ("White" is a last name and
    a race category); such a value in a seed-derived column is not a leak."""
    values: set[str] = set()
    for path in Path(PROJECT_DIR, "seeds").rglob("*.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                values.update(cell.strip() for cell in row)
    return values


@pytest.fixture(scope="module")
def con(built_warehouse):
    """In-memory DuckDB with the built warehouse attached read-only under its own name
    (the views refer to it by that name) and the personal values in a table."""
    con = duckdb.connect()
    con.execute(f"attach '{built_warehouse.db}' as warehouse (read_only)")
    personal = con.execute(
        "select distinct value from ("
        + " union all ".join(f"select cast({c} as varchar) as value from warehouse.raw.students" for c in PERSONAL_COLUMNS)
        + " union all select first_name || ' ' || last_name from warehouse.raw.students"
        ") where value is not null"
    ).fetchall()
    allowed = seed_vocabulary()
    con.execute("create table personal (value varchar)")
    con.executemany("insert into personal values (?)", [(v,) for (v,) in personal if v not in allowed])
    yield con
    con.close()


def reader_columns(con, schemas_excluded=NOT_READER_SCHEMAS) -> list[tuple[str, str, str, str]]:
    placeholders = ", ".join("?" for _ in schemas_excluded)
    return con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        f"where table_catalog = 'warehouse' and table_schema not in ({placeholders}) "
        "order by 1, 2, 3",
        list(schemas_excluded),
    ).fetchall()


def test_the_check_sees_the_warehouse(con):
    """Guards against a vacuous pass: personal values exist and the marts are there."""
    assert con.execute("select count(*) from personal").fetchone()[0] > 1000
    tables = {(s, t) for s, t, _, _ in reader_columns(con)}
    assert ("marts", "dim_students") in tables
    assert ("staging", "stg_replica__students") in tables


def test_no_column_is_named_like_personal_data(con):
    named = [f"{s}.{t}.{c}" for s, t, c, _ in reader_columns(con) if PERSONAL_NAME.search(c.lower())]
    assert not named, f"columns named like personal data outside raw: {named}"


def test_no_personal_value_appears_outside_raw(con):
    leaks = []
    for schema, table, column, data_type in reader_columns(con):
        if not data_type.upper().startswith(TEXT_TYPES):
            continue
        value = f't."{column}"::varchar'
        relation = f'warehouse."{schema}"."{table}" as t'
        hits = con.execute(
            f"select distinct {value} from {relation} where {value} in (select p.value from personal as p) limit 5"
        ).fetchall()
        # Emails are distinctive enough to look for inside longer text (JSON, free text) too.
        hits += con.execute(
            f"select distinct {value} from {relation} join personal as p "
            f"on p.value like '%@%' and {value} like '%@%' and contains({value}, p.value) limit 5"
        ).fetchall()
        if hits:
            leaks.append(f"{schema}.{table}.{column}: {[h[0] for h in hits]}")
    assert not leaks, "personal values found outside raw:\n" + "\n".join(leaks)


def test_marts_carry_no_platform_student_id(con):
    marts = [(t, c, d) for s, t, c, d in reader_columns(con) if s.endswith("marts")]
    assert not [f"{t}.{c}" for t, c, _ in marts if c.lower() == "student_id"]
    con.execute("create or replace temp table student_ids as select distinct student_id from warehouse.raw.students")
    found = []
    for schema, table, column, data_type in reader_columns(con):
        if not schema.endswith("marts") or not data_type.upper().startswith("VARCHAR"):
            continue
        hit = con.execute(
            f'select t."{column}" from warehouse."{schema}"."{table}" as t '
            f'where t."{column}" in (select s.student_id from student_ids as s) limit 1'
        ).fetchone()
        if hit:
            found.append(f"{schema}.{table}.{column}")
    assert not found, f"platform student ids in marts: {found}"


def test_prod_refuses_to_build_without_student_key_salt(tmp_path):
    """Compiling dim_students for prod with no STUDENT_KEY_SALT stops with a message naming
    the variable (compile needs no connection, so dummy Snowflake settings do)."""
    env = {k: v for k, v in os.environ.items() if k != "STUDENT_KEY_SALT"}
    env.update({
        "DBT_TARGET": "prod", "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs"),
        **{f"SNOWFLAKE_{name}": "not-used" for name in ("ACCOUNT", "USER", "ROLE", "WAREHOUSE", "DATABASE")},
    })
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "compile", "--select", "dim_students", "--no-populate-cache",
         "--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode != 0
    assert "STUDENT_KEY_SALT is not set" in proc.stdout + proc.stderr
