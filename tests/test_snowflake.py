"""The Snowflake production target, proven on an emulator (fakesnow) in CI.

The sample that `built_warehouse` ingested and built on DuckDB is loaded into an emulated
Snowflake (raw tables from `dbt run-operation create_raw_tables`, rows copied from
DuckDB's raw schema), then `dbt build --target ci_snowflake` runs there: the prod target's
settings, materializations and configs, pointed at the emulator. Every model, seed, test
and unit test must pass, and every table in schema marts must equal DuckDB's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

import snowflake_emulator
from orchestrate.contract import TABLES

PROJECT_DIR = Path(__file__).resolve().parent.parent
DBT = str(Path(sys.executable).parent / "dbt")
TOLERANCE = 1e-9
# Marts the district-scoped reader role may select (issue 11): results suppressed for
# small groups, and the reference dimensions (no personal data) that name them. Every
# mart, row-level ones included, is the researcher role's.
RESULTS_MARTS = {"topic_results", "item_results", "topic_trends", "participation", "benchmarks",
                 "reliability", "item_reliability"}
REFERENCE_DIMS = {"dim_districts", "dim_schools", "dim_surveys", "dim_questions", "dim_topics",
                  "dim_canonical_items"}
READER_MARTS = RESULTS_MARTS | REFERENCE_DIMS
ROW_LEVEL_MARTS = {"fct_question_responses", "fct_survey_responses", "respondents_wide", "dim_students"}


@dataclass
class EmulatedBuild:
    emulator: snowflake_emulator.Emulator
    env: dict[str, str]
    build: subprocess.CompletedProcess
    run_results: dict
    manifest: dict
    duckdb_file: Path
    build_statements: Path  # the full build's target/run (later tests' runs overwrite target/run)

    def explain(self) -> str:
        return (
            f"{self.build.stdout[-6000:]}\n{self.build.stderr[-2000:]}\n"
            f"fakesnow could not run:\n{self.emulator.errors()[-4000:]}"
        )


def dbt(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT, *args, "--target", "ci_snowflake", "--profiles-dir", str(PROJECT_DIR),
         "--project-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def emulated_snowflake(tmp_path_factory, built_warehouse) -> EmulatedBuild:
    folder = tmp_path_factory.mktemp("snowflake")
    with snowflake_emulator.running(folder / "fakesnow.log") as emulator:
        env = {
            **emulator.env,
            "DBT_TARGET_PATH": str(folder / "target"),
            "DBT_LOG_PATH": str(folder / "logs"),
            "DBT_SCHEMA_PREFIX": "",
            # The emulator runs one statement at a time; more threads only queue.
            "DBT_THREADS": "4",
        }
        created = dbt(env, "run-operation", "create_raw_tables")
        assert created.returncode == 0, created.stdout[-3000:]
        snowflake_emulator.load_raw_from_duckdb(emulator, built_warehouse.db, folder / "raw_parquet")
        build = dbt(env, "build")
        target = Path(env["DBT_TARGET_PATH"])
        if (target / "run").exists():
            shutil.copytree(target / "run", folder / "build_run")
        yield EmulatedBuild(
            emulator,
            env,
            build,
            json.loads((target / "run_results.json").read_text()),
            json.loads((target / "manifest.json").read_text()),
            built_warehouse.db,
            folder / "build_run",
        )


def test_full_build_passes_on_emulated_snowflake(emulated_snowflake):
    build = emulated_snowflake
    summary = [line for line in build.build.stdout.splitlines() if "Done. PASS=" in line]
    print(summary[-1] if summary else "no summary")
    assert build.build.returncode == 0, build.explain()
    statuses = {r["unique_id"]: r["status"] for r in build.run_results["results"]}
    # Exposures (models/marts/exposures.yml) are in a build's results as no-op.
    bad = {uid: s for uid, s in statuses.items()
           if s not in ("success", "pass", "warn") and not (uid.startswith("exposure.") and s == "no-op")}
    assert not bad, f"not passed on Snowflake: {bad}\n{build.explain()}"
    # Nothing is left out on this target: every model, seed, snapshot, test and unit test ran.
    expected = {
        uid
        for uid, node in {**build.manifest["nodes"], **build.manifest.get("unit_tests", {})}.items()
        if node["resource_type"] in ("model", "seed", "snapshot", "test", "unit_test")
        and node["config"].get("enabled", True)
    }
    assert expected - statuses.keys() == set()


def test_marts_equal_on_duckdb_and_emulated_snowflake(emulated_snowflake):
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    source = duckdb.connect(str(build.duckdb_file), read_only=True)
    try:
        duck_tables = sorted(
            name
            for (name,) in source.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        )
        with build.emulator.connect(schema="marts") as con:
            snow_tables = sorted(
                name.lower()
                for (name,) in con.cursor().execute(
                    "select table_name from information_schema.tables where table_schema = 'MARTS'"
                ).fetchall()
            )
            assert snow_tables == duck_tables
            assert duck_tables, "no marts were built"
            differences = []
            compared = {}
            for table in duck_tables:
                duck_columns, duck_rows = duckdb_rows(source, table)
                snow_columns, snow_rows = snowflake_rows(con, table)
                compared[table] = duck_columns
                if duck_columns != snow_columns:
                    differences.append(f"{table}: columns {duck_columns} vs {snow_columns}")
                    continue
                if problem := compare_rows(duck_columns, duck_rows, snow_rows):
                    differences.append(f"{table}: {problem}")
    finally:
        source.close()
    assert not differences, "\n".join(differences)
    # suppression is part of what is compared: the same cells, for the same reasons
    for table in ("topic_results", "item_results", "topic_trends"):
        assert {"is_suppressed", "suppression_reason"} <= set(compared[table]), table


def test_suppression_is_the_same_on_duckdb_and_emulated_snowflake(emulated_snowflake):
    """Complementary suppression chose cells on both engines, and the same ones."""
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    query = ("select suppression_reason, count(*) from marts.{table} where is_suppressed "
             "group by suppression_reason order by suppression_reason")
    source = duckdb.connect(str(build.duckdb_file), read_only=True)
    try:
        with build.emulator.connect(schema="marts") as con:
            for table in ("topic_results", "item_results"):
                duck = dict(source.execute(query.format(table=table)).fetchall())
                snow = dict(con.cursor().execute(query.format(table=table)).fetchall())
                assert duck == snow, table
                assert duck.get("primary") and duck.get("complementary_subgroup") and duck.get("complementary_level"), duck
    finally:
        source.close()


def test_prod_configuration_reaches_snowflake(emulated_snowflake):
    """Grants on marts, a query tag per model, transient below marts, clustered facts."""
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    models = {
        node["name"]: node
        for node in build.manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    marts = {name for name, node in models.items() if node["schema"].endswith("marts")}
    assert RESULTS_MARTS | ROW_LEVEL_MARTS <= marts
    granted = build.emulator.grants()
    for name in marts:
        relation = f"SURVEY_CI.MARTS.{name.upper()}"
        readers = {"SURVEY_RESEARCHER"} | ({"SURVEY_READER"} if name in READER_MARTS else set())
        assert granted.get(relation, {}).get("SELECT", set()) == readers, relation
    # what `show grants on` answers (dbt reads it to grant and revoke): the reader role
    # may select a results mart or a reference dimension, not a row-level one
    with build.emulator.connect(schema="marts") as con:
        for name in sorted(READER_MARTS | ROW_LEVEL_MARTS):
            rows = con.cursor().execute(f"show grants on table survey_ci.marts.{name}").fetchall()
            roles = {row[5] for row in rows if row[1] == "SELECT"}
            assert ("SURVEY_READER" in roles) == (name in READER_MARTS), (name, roles)
            assert "SURVEY_RESEARCHER" in roles, (name, roles)
    statements = build.emulator.statements()
    for name, node in models.items():
        if node["config"]["materialized"] == "ephemeral":
            continue
        tagged = [
            s for s in statements
            if s["query_tag"] and f'"node": "model.{name}"' in s["query_tag"]
            and s["sql"].lower().startswith(("create", "insert", "delete"))
        ]
        assert tagged, f"{name} was not built under its own query tag"
        created = next(s["sql"].lower() for s in tagged if s["sql"].lower().startswith("create"))
        if node["schema"].endswith("intermediate") and node["config"]["materialized"] == "table":
            assert "transient table" in created, created[:200]
        if name in marts and node["config"]["materialized"] == "table":
            assert "transient" not in created.split(" as", 1)[0], created[:200]
            assert "copy grants" in created, created[:200]
    for name, columns in {
        "intermediate.int_question_responses_scored": "survey_id, topic_id",  # fct_question_responses is its view
        "marts.fct_survey_responses": "school_year, district_id",
    }.items():
        assert any(
            f"{name} cluster by ({columns})" in " ".join(s["sql"].lower().split())
            for s in statements
        ), f"{name} is not clustered by {columns}"


def test_raw_tables_match_duckdb_shape(emulated_snowflake):
    """create_raw_tables (macros/snowflake) builds what the DuckDB ingester builds."""
    build = emulated_snowflake
    same_type = {
        "VARCHAR": {"TEXT", "VARCHAR"},
        "BIGINT": {"NUMBER", "BIGINT"},
        "INTEGER": {"NUMBER", "INTEGER", "BIGINT"},
        "DOUBLE": {"FLOAT", "DOUBLE"},
        "TIMESTAMP": {"TIMESTAMP_NTZ"},
        "JSON": {"VARIANT"},
    }
    source = duckdb.connect(str(build.duckdb_file), read_only=True)
    try:
        duck = source.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' order by table_name, ordinal_position"
        ).fetchall()
    finally:
        source.close()
    with build.emulator.connect() as con:
        snow = con.cursor().execute(
            "select lower(table_name), lower(column_name), data_type from information_schema.columns "
            "where table_schema = 'RAW' order by table_name, ordinal_position"
        ).fetchall()
    snow_columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in snow:
        snow_columns.setdefault(table, []).append((column, data_type))
    duck_columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in duck:
        duck_columns.setdefault(table, []).append((column, data_type))
    assert set(snow_columns) >= set(duck_columns)
    for table, columns in duck_columns.items():
        # The Snowflake ledger also keeps the stage's checksum (see create_raw_tables).
        snow_table = [c for c in snow_columns[table] if (table, c[0]) != ("ingest_ledger", "stage_md5")]
        assert [c for c, _ in snow_table] == [c for c, _ in columns], table
        for (column, duck_type), (_, snow_type) in zip(columns, snow_table):
            assert snow_type in same_type[duck_type], f"{table}.{column}: {duck_type} vs {snow_type}"


def dry_run_statements(build: EmulatedBuild, macro: str) -> list[str]:
    """The SQL statements `dbt run-operation <macro> --args '{dry_run: true}'` prints."""
    proc = dbt(build.env, "run-operation", macro, "--args", "{dry_run: true}",
               "--no-use-colors", "--log-format", "text")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    text = re.sub(r"^\d\d:\d\d:\d\d  ", "", proc.stdout, flags=re.MULTILINE)
    statements = [re.sub(r"^--.*\n", "", s).strip() for s in text.split(";\n")]
    return [s for s in statements if re.match(r"(create|copy|update|insert|list|alter|delete)\b", s)]


def test_load_raw_from_stage_renders_snowflake_sql(emulated_snowflake):
    """The stage loader cannot run on the emulator (no COPY ... ON_ERROR = CONTINUE there):
    its statements must at least render, for every table, and parse as Snowflake SQL."""
    import sqlglot

    statements = dry_run_statements(emulated_snowflake, "load_raw_from_stage")
    for table in TABLES:
        copy = [s for s in statements if s.startswith(f"copy into raw.{table} ")]
        assert copy and "on_error = continue" in copy[0], table
        assert any(
            s.startswith("insert into raw.quarantined_lines") and f"raw.{table} as loaded" in s
            for s in statements
        ), table
    for statement in statements:
        if not statement.startswith("list"):
            sqlglot.parse_one(statement, read="snowflake")


def test_district_row_access_policy_covers_every_mart_with_a_district(emulated_snowflake):
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    statements = dry_run_statements(build, "apply_district_row_access_policy")
    with build.emulator.connect(schema="marts") as con:
        with_district = sorted(
            name.lower()
            for (name,) in con.cursor().execute(
                "select table_name from information_schema.columns "
                "where table_schema = 'MARTS' and column_name = 'DISTRICT_ID'"
            ).fetchall()
        )
    assert "dim_districts" in with_district
    # every results mart with rows of one district is scoped for district readers
    assert {"topic_results", "item_results", "topic_trends", "participation"} <= set(with_district)
    assert any(s.startswith("create row access policy if not exists survey_ci.governance.district_scope")
               for s in statements)
    for table in with_district:
        assert (
            f"alter table survey_ci.marts.{table} add row access policy "
            "survey_ci.governance.district_scope on (district_id)"
        ) in statements, table


def test_snapshots_build_on_emulated_snowflake(emulated_snowflake, tmp_path):
    """The project has no snapshot yet; a scratch one, with the project's macros, proves the
    snapshot merge (macros/snowflake/snapshot_merge_sql.sql) closes and adds versions."""
    project = tmp_path / "snapshot_project"
    (project / "models").mkdir(parents=True)
    (project / "snapshots").mkdir()
    (project / "macros").symlink_to(PROJECT_DIR / "macros")
    (project / "dbt_project.yml").write_text(
        "name: survey_warehouse\nversion: '1.0.0'\nconfig-version: 2\nprofile: survey_warehouse\n"
        "model-paths: [models]\nmacro-paths: [macros]\nsnapshot-paths: [snapshots]\n"
    )
    (project / "models" / "snapshot_source.sql").write_text(
        "select 1 as id, '{{ var(\"value\", \"a\") }}' as value union all select 2 as id, 'b' as value\n"
    )
    (project / "snapshots" / "scratch_snapshot.sql").write_text(
        "{% snapshot scratch_snapshot %}\n"
        "{{ config(target_schema='ci_snapshots', unique_key='id', strategy='check', check_cols=['value']) }}\n"
        "select * from {{ ref('snapshot_source') }}\n{% endsnapshot %}\n"
    )
    env = {**emulated_snowflake.env, "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    for value in ("a", "c"):
        proc = subprocess.run(
            [DBT, "build", "--target", "ci_snowflake", "--profiles-dir", str(PROJECT_DIR),
             "--project-dir", str(project), "--vars", f"{{value: {value}}}"],
            cwd=project, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:]
    with emulated_snowflake.emulator.connect(schema="ci_snapshots") as con:
        rows = con.cursor().execute(
            "select id, value, dbt_valid_to is null from ci_snapshots.scratch_snapshot order by 1, 2"
        ).fetchall()
    assert rows == [(1, "a", False), (1, "c", True), (2, "b", True)]


def test_lookml_reads_the_marts_on_emulated_snowflake(emulated_snowflake):
    """The committed LookML on Snowflake: every view's table and ${TABLE}.column exists
    (unquoted lowercase names resolve to dbt's upper-case ones), every dimension and
    measure and a query of every explore run, and the percent favorable measure at
    school x topic x all equals Snowflake's own topic_results."""
    from orchestrate.lookml_sql import Project
    from test_lookml import (LOOKML_DIR, RESEARCHER, a_few_dimensions_and_every_measure,
                             missing_tables_and_columns, view_queries)

    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    project = Project.load(LOOKML_DIR)
    with build.emulator.connect(schema="marts") as con:
        cursor = con.cursor()
        columns: dict[str, set[str]] = {}
        for table, column in cursor.execute(
                "select lower(table_name), lower(column_name) from information_schema.columns "
                "where table_schema = 'MARTS'").fetchall():
            columns.setdefault(table, set()).add(column)
        assert not missing_tables_and_columns(project, columns)
        for name in project.views:
            for sql in view_queries(project, name):
                cursor.execute(sql).fetchall()
        district = cursor.execute("select min(district_id) from marts.dim_districts").fetchone()[0]
        for explore in project.explores():
            user = {"district_id": district} if explore.model == "survey_results" else RESEARCHER
            sql = explore.sql(a_few_dimensions_and_every_measure(explore), user_attributes=user, limit=50)
            assert cursor.execute(sql).fetchall(), f"{explore.name}: no rows on Snowflake"
        explore = project.explore("survey_results", "topic_results")
        keys = ["school_year", "respondent_type", "entity_id", "topic_id"]
        looker = {}
        for (district,) in cursor.execute("select district_id from marts.dim_districts").fetchall():
            sql = explore.sql([f"topic_results.{k}" for k in keys] + ["topic_results.percent_favorable"],
                              user_attributes={"district_id": district})
            looker |= {tuple(row[:4]): row[4] for row in cursor.execute(sql).fetchall()}
        mart = {tuple(row[:4]): row[4] for row in cursor.execute(
            "select school_year, respondent_type, entity_id, topic_id, percent_favorable from marts.topic_results "
            "where reporting_level = 'school' and subgroup_category = 'all' and not is_suppressed").fetchall()}
    assert looker.keys() == mart.keys() and mart
    assert all(math.isclose(looker[k], mart[k], rel_tol=0, abs_tol=TOLERANCE) for k in mart)


def test_lookml_generated_from_snowflake_is_the_committed_lookml(emulated_snowflake, tmp_path):
    """The generator types dimensions from Snowflake's catalog (TEXT, NUMBER, FLOAT,
    BOOLEAN, DATE, TIMESTAMP_NTZ) as from DuckDB's: the same LookML serves both."""
    from test_lookml import LOOKML_DIR, generated_files

    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKER_")}
    env |= {**build.env, "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", "lookml", "--target", "ci_snowflake", "--out", str(tmp_path / "lookml"),
         "--exposures", str(tmp_path / "exposures.yml")],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + build.emulator.errors()[-3000:]
    fresh, committed = generated_files(tmp_path / "lookml"), generated_files(LOOKML_DIR)
    assert sorted(fresh) == sorted(committed)
    assert [p for p in committed if committed[p] != fresh[p]] == []


# --- comparing tables across engines --------------------------------------------------------


def duckdb_rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], list[tuple]]:
    cursor = con.execute(f"select * from marts.{table}")
    columns = [d[0].lower() for d in cursor.description]
    return columns, cursor.fetchall()


def snowflake_rows(con, table: str) -> tuple[list[str], list[tuple]]:
    cursor = con.cursor()
    types = cursor.execute(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = 'MARTS' and table_name = '{table.upper()}' order by ordinal_position"
    ).fetchall()
    # fakesnow sends a null timestamp as 1970-01-01 over the wire; text keeps nulls null.
    select = ", ".join(
        f'to_varchar("{name}") as "{name}"' if data_type.startswith("TIMESTAMP") else f'"{name}"'
        for name, data_type in types
    )
    rows = cursor.execute(f"select {select} from marts.{table}").fetchall()
    return [name.lower() for name, _ in types], rows


def normalize(value):
    """One comparable form per value, whichever engine it came from."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{":
            try:
                return json.dumps(json.loads(text), sort_keys=True)
            except ValueError:
                return value
        try:
            return dt.datetime.fromisoformat(text) if len(text) >= 19 and text[4] == "-" and text[10] in " T" else value
        except ValueError:
            return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def sort_key(row: tuple) -> tuple:
    return tuple(
        (0, "") if v is None else (1, f"{v:.6f}") if isinstance(v, float) else (2, str(v)) for v in row
    )


def compare_rows(columns: list[str], duck_rows: list[tuple], snow_rows: list[tuple]) -> str | None:
    if len(duck_rows) != len(snow_rows):
        return f"{len(duck_rows)} rows on DuckDB, {len(snow_rows)} on Snowflake"
    left = sorted((tuple(normalize(v) for v in row) for row in duck_rows), key=sort_key)
    right = sorted((tuple(normalize(v) for v in row) for row in snow_rows), key=sort_key)
    mismatches = []
    for a, b in zip(left, right):
        for column, x, y in zip(columns, a, b):
            if isinstance(x, float) and isinstance(y, float):
                if math.isclose(x, y, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
                    continue
            elif x == y:
                continue
            mismatches.append(f"{column}: DuckDB {x!r} vs Snowflake {y!r} in row {a}")
            break
        if len(mismatches) >= 5:
            break
    return "; ".join(mismatches) or None


def test_pr_check_on_emulated_snowflake(emulated_snowflake, tmp_path):
    """pr-check --target ci_snowflake: a change built into the pr_ schemas of the emulated
    production database, unchanged parents read from production's schemas (--defer), and
    diffed there: response rates rounded to two decimals change exactly the rows whose rate
    had more, as DuckDB's copy of the same data says."""
    from conftest import run_cli, scratch_project

    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    project = scratch_project(tmp_path)
    model = project / "models/marts/survey/participation.sql"
    rate = "cast(1.0 * survey_schools.responded / survey_schools.invited as double)"
    assert model.read_text().count(rate) == 1
    model.write_text(model.read_text().replace(rate, rate.replace("cast(1.0", "cast(round(1.0").replace(
        " as double)", ", 2) as double)")))
    out = tmp_path / "out"
    proc = run_cli("pr-check", "--target", "ci_snowflake", "--base", build.env["DBT_TARGET_PATH"],
                   "--out", str(out), cwd=project, env={**build.env, "DBT_LOG_PATH": str(out / "logs")})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:] + build.emulator.errors()[-3000:]
    check = json.loads((out / "diff.json").read_text())
    models = {n["name"] for n in check["nodes"] if n["unique_id"].startswith("model.")}
    assert models == {"participation"}

    con = duckdb.connect(str(build.duckdb_file), read_only=True)
    [(moved,)] = con.execute("select count(*) from marts.participation "
                             "where abs(round(response_rate, 2) - response_rate) > 1e-9").fetchall()
    con.close()
    [diff] = check["diffs"]
    assert (diff["mart"], diff["keys"]) == ("participation", ["school_year", "survey_id", "school_id"])
    assert (diff["added"], diff["removed"]) == (0, 0)
    assert diff["changed"] == moved > 0
    [column] = diff["columns"]
    assert column["column"] == "response_rate" and column["changed"] == moved
    assert 0 < max(abs(column["min_change"]), abs(column["max_change"])) <= 0.005 + 1e-12
    # Production's marts were read, not written: the pull request's table is in pr_marts.
    with build.emulator.connect(schema="pr_marts") as sf:
        tables = {name.lower() for (name,) in sf.cursor().execute(
            "select table_name from information_schema.tables where table_schema = 'PR_MARTS'").fetchall()}
    assert tables == {"participation"}


def test_a_failed_incremental_build_leaves_readers_their_rows_on_snowflake(emulated_snowflake):
    """dbt-snowflake commits each statement on its own. A model partitioned by school year
    (item_results) or maintained by response (respondents_wide) deletes the rows it replaces
    in the same transaction as it appends their new ones, after its query has run: a build
    that fails (here: an input gone) leaves readers every row they had, not a hole until the
    next good build. A new file of a table both are built from (surveys) makes the build
    replace every school year and every response."""
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    models = {"item_results": "int_result_cells_suppressed", "respondents_wide": "int_response_topics_scored"}
    fake = "surveys__20990101T000000Z__20990102T000000Z__0000.ndjson.gz"
    with build.emulator.connect(schema="marts") as con:
        cursor = con.cursor()

        def rows() -> dict[str, int]:
            return {m: cursor.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in models}

        before = rows()
        assert all(before.values()), before
        cursor.execute(
            "insert into raw.ingest_ledger (file_name, table_name, interval_start, interval_end, part, "
            "size_bytes, line_count, rows_loaded, lines_quarantined, loaded_at) values "
            f"('{fake}', 'surveys', '2099-01-01', '2099-01-02', 0, 1, 0, 0, 0, "
            "convert_timezone('UTC', current_timestamp())::timestamp_ntz)")
        for table in models.values():
            cursor.execute(f"alter table intermediate.{table} rename to intermediate.{table}_away")
        try:
            failed = dbt(build.env, "run", "--select", *models)
            after_failure = rows()
        finally:
            for table in models.values():
                cursor.execute(f"alter table intermediate.{table}_away rename to intermediate.{table}")
        try:  # the same build with its inputs back: every year and response replaced, in one transaction each
            rebuilt = dbt(build.env, "run", "--select", *models)
            after_rebuild = rows()
        finally:
            cursor.execute(f"delete from raw.ingest_ledger where file_name = '{fake}'")
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert all(table in failed.stdout.lower() for table in models.values()), failed.stdout[-3000:]
    assert after_failure == before, f"rows lost by a failed build: {before} -> {after_failure}\n{failed.stdout[-3000:]}"
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + build.emulator.errors()[-3000:]
    assert after_rebuild == before
    # what ran: the delete and the append in one explicit transaction
    for path in ("marts/survey/item_results.sql", "marts/survey/respondents_wide.sql"):
        assert [verb for verb, _ in main_statement(build, path)] == ["begin", "delete", "insert", "commit"], path


def test_the_marts_not_null_constraints_are_in_the_tables_snowflake_creates(emulated_snowflake):
    """A contracted mart's columns that must not be null are `not_null` constraints (no
    `not_null` test runs for them): the table dbt creates on Snowflake must declare each
    one `not null`, which Snowflake always enforces (its docs: "except for NOT NULL and
    CHECK constraints, which are always enforced"), so a null fails the build instead of
    reaching readers. Checked on the DDL of the full build, since the emulator creates a
    CREATE TABLE ... AS SELECT table from its query and drops the column list's
    constraints (DuckDB's refusal is tested in test_run). The emulated build's marts hold
    no null in those columns either, and no plain `not_null` test is left on such a mart
    (the constraint is the one place for it, CONTRIBUTING.md)."""
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    marts = {uid: node for uid, node in build.manifest["nodes"].items()
             if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]
             and node["config"]["materialized"] != "view"}
    checked, nulls = 0, {}
    with build.emulator.connect(schema="marts") as con:
        cursor = con.cursor()
        for node in marts.values():
            required = [name for name, column in node["columns"].items()
                        if any(c["type"] == "not_null" for c in column["constraints"])]
            ddl = (build.build_statements / "survey_warehouse" / node["original_file_path"]).read_text()
            declared = ddl.lower().split(" as (", 1)[0]
            for name in required:
                assert re.search(rf"\n\s*{name} [a-z_() 0-9,]*?not null", declared), \
                    f"{node['name']}.{name}:\n{declared}"
                checked += 1
            counts = cursor.execute(
                "select " + ", ".join(f"sum(case when {name} is null then 1 else 0 end)" for name in required)
                + f" from {node['schema']}.{node['alias']}").fetchone()
            nulls.update({f"{node['name']}.{name}": n for name, n in zip(required, counts) if n})
    assert checked >= 70, checked
    assert nulls == {}
    plain_tests = [node["name"] for node in build.manifest["nodes"].values()
                   if node["resource_type"] == "test" and node.get("attached_node") in marts
                   and (node.get("test_metadata") or {}).get("name") == "not_null"
                   and not node["config"].get("where") and node["name"].startswith("not_null_")]
    assert plain_tests == [], "use a not_null constraint in the mart's contract instead"


def main_statement(build: EmulatedBuild, model_path: str) -> list[tuple[str, str]]:
    """The statements of a model's last main statement (dbt's target/run copy), as (first
    word, text) pairs."""
    sql = (Path(build.env["DBT_TARGET_PATH"]) / "run" / "survey_warehouse" / "models" / model_path).read_text()
    return [(part.split()[0].lower(), part) for part in (p.strip() for p in sql.split(";")) if part]


def test_an_answer_deleted_after_the_build_is_gone_on_snowflake(emulated_snowflake):
    """An incremental build of the scoring model on Snowflake: an answer whose last change
    is a delete leaves fct_question_responses, and no tombstone (is_deleted) is left
    behind, not even between statements: the delete+insert and the tombstones' removal
    are one transaction (delete_insert_without_tombstones)."""
    build = emulated_snowflake
    assert build.build.returncode == 0, build.explain()
    fake = "question_responses__20990101T000000Z__20990102T000000Z__0000.ndjson.gz"
    with build.emulator.connect(schema="marts") as con:
        cursor = con.cursor()
        response_id, question_id = cursor.execute(
            "select response_id, question_id from marts.fct_question_responses "
            "order by response_id, question_id limit 1").fetchone()
        (answers,) = cursor.execute("select count(*) from marts.fct_question_responses").fetchone()
        (seq,) = cursor.execute("select max(_seq) + 1 from raw.question_responses").fetchone()
        cursor.execute(
            "insert into raw.question_responses (_op, _ts, _seq, response_id, question_id, _source_file, "
            f"_source_line) values ('d', '2099-01-01 08:00:00', {seq}, '{response_id}', '{question_id}', "
            f"'{fake}', 1)")
        cursor.execute(
            "insert into raw.ingest_ledger (file_name, table_name, interval_start, interval_end, part, "
            "size_bytes, line_count, rows_loaded, lines_quarantined, loaded_at) values "
            f"('{fake}', 'question_responses', '2099-01-01', '2099-01-02', 0, 1, 1, 1, 0, "
            "convert_timezone('UTC', current_timestamp())::timestamp_ntz)")
        try:
            scored = dbt(build.env, "run", "--select", "int_question_responses_scored")
            statements = main_statement(build, "intermediate/survey/int_question_responses_scored.sql")
            after = cursor.execute(
                "select count(*), count_if(is_deleted), "
                f"count_if(response_id = '{response_id}' and question_id = '{question_id}'), "
                f"count_if(ingested_through >= (select loaded_at from raw.ingest_ledger where file_name = '{fake}')) "
                "from marts.fct_question_responses").fetchone()
        finally:
            cursor.execute(f"delete from raw.question_responses where _source_file = '{fake}'")
            cursor.execute(f"delete from raw.ingest_ledger where file_name = '{fake}'")
            restored = dbt(build.env, "run", "--select", "int_question_responses_scored", "--full-refresh")
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert scored.returncode == 0, scored.stdout[-3000:] + build.emulator.errors()[-3000:]
    # delete+insert, and the tombstones' removal, in one explicit transaction
    assert [verb for verb, _ in statements] == ["begin", "delete", "insert", "delete", "commit"]
    assert "is_deleted" in statements[3][1]
    # one answer fewer, no tombstone, and no other answer rescored (the build was incremental)
    assert tuple(after) == (answers - 1, 0, 0, 0)


# Statements whose fakesnow transforms put one node in two places (array_size), hang
# nodes without setting their parent (alias_in_join, regex_replace) or return fakesnow's
# shared no-op statement (alter session, use role): where translating on one copy of the
# tree could go wrong.
TRICKY_STATEMENTS = [
    "select array_size(array_agg(x)) as n from t",
    "select array_size(array_distinct(array_agg(x))) as n from t",
    "select array_size(object_keys(parse_json(v))) as n from t",
    "select t.a, u.b from t1 as t inner join t2 as u on t.id = u.id",
    "select regexp_replace(a, '[0-9]+', 'n') as a, regexp_substr(b, 'x(.)', 1, 1, 'e', 1) as b from t",
    "alter session set autocommit = false",
    "use role transformer",
    "alter session set autocommit = true",
]


def test_the_emulators_translation_is_fakesnows(emulated_snowflake):
    """The emulator translates each statement on one copy of its tree
    (snowflake_emulator._translate_on_one_copy): the same DuckDB SQL as fakesnow's own
    translation, for every model's query as dbt compiled it for the emulator (but the
    40-pass suppression model, 20 s in fakesnow's translation) and for statements whose
    transforms share nodes or return a shared statement. The queries, not the `create
    table as` around them: fakesnow's translation of that asks DuckDB for the query's
    columns, and this in-process fakesnow holds no tables."""
    import fakesnow
    import snowflake.connector
    from fakesnow.cursor import parse_one

    compiled = Path(emulated_snowflake.env["DBT_TARGET_PATH"]) / "compiled" / "survey_warehouse" / "models"
    models = sorted(compiled.rglob("*.sql"))
    # a model's query, not its tests' (compiled under <model>.yml/)
    statements = TRICKY_STATEMENTS + [p.read_text() for p in models
                                      if ".yml" not in p.relative_to(compiled).as_posix()
                                      and p.stat().st_size < 20_000]
    assert len(statements) > 40
    with fakesnow.patch():
        con = snowflake.connector.connect(database=snowflake_emulator.DATABASE, schema="intermediate")
        cursor = con.cursor()

        def translate() -> list[str]:
            return [cursor._transform(parse_one(sql), None).sql(dialect="duckdb") for sql in statements]

        expected = translate()
        undo = snowflake_emulator._translate_on_one_copy()
        try:
            translated = translate()
        finally:
            undo()
        con.close()
    different = [f"{sql[:200]}\n  fakesnow: {want[:300]}\n  emulator: {got[:300]}"
                 for sql, want, got in zip(statements, expected, translated) if want != got]
    assert not different, "\n".join(different)
