"""The Looker project (lookml/, written by `python -m orchestrate lookml`) against the warehouse.

The committed LookML must be what the project generates; every file must parse; every
view must read existing tables and columns; explores and dashboards must name only what
exists; and the SQL Looker would issue (orchestrate/lookml_sql.py renders it) must run and
give the marts' own numbers: percent favorable re-aggregated from counts, means weighted
by their counts, published rows only, one district per user. Runs on the session's
DuckDB warehouse; tests/test_snowflake.py runs the same checks on emulated Snowflake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lkml
import numpy as np
import pandas as pd
import pytest
import yaml

from orchestrate import lookml as generator
from orchestrate.errors import UserError
from orchestrate.lookml_sql import AccessDenied, Explore, LookmlError, Project

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOOKML_DIR = PROJECT_DIR / "lookml"
EXPOSURES = PROJECT_DIR / "models" / "marts" / "exposures.yml"
TOLERANCE = 1e-9
RESEARCHER = {"survey_role": "researcher"}


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.load(LOOKML_DIR)


@pytest.fixture(scope="module")
def regenerated(built_warehouse, tmp_path_factory) -> Path:
    """`python -m orchestrate lookml` run afresh against the session's warehouse, into a
    scratch folder (its own dbt target folder, so the build's artifacts stay as they are)."""
    folder = tmp_path_factory.mktemp("lookml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKER_")}
    env |= {**built_warehouse.env, "DBT_TARGET_PATH": str(folder / "target"), "DBT_LOG_PATH": str(folder / "logs")}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", "lookml", "--out", str(folder / "lookml"),
         "--exposures", str(folder / "exposures.yml")],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout.splitlines()[0])
    return folder


def generated_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*"))
            if p.is_file() and p.name.endswith((".lkml", ".lookml"))}


def test_committed_lookml_is_what_the_project_generates(regenerated):
    committed, fresh = generated_files(LOOKML_DIR), generated_files(regenerated / "lookml")
    assert committed, "no LookML committed under lookml/"
    fix = "regenerate with `python -m orchestrate lookml` (after `make run`) and commit lookml/ and exposures.yml"
    assert sorted(committed) == sorted(fresh), f"files differ: {fix}"
    changed = [path for path in committed if committed[path] != fresh[path]]
    assert not changed, f"{changed} differ from what the project generates: {fix}"
    assert EXPOSURES.read_text(encoding="utf-8") == (regenerated / "exposures.yml").read_text(encoding="utf-8"), fix


def test_every_lkml_file_parses_and_every_mart_has_a_view(project, built_warehouse):
    files = sorted(LOOKML_DIR.rglob("*.lkml"))
    assert len(files) >= 4
    for path in files:
        tree = lkml.load(path.read_text(encoding="utf-8"))
        assert tree, f"{path} parsed to nothing"
    for path in LOOKML_DIR.rglob("*.dashboard.lookml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))[0]["dashboard"]
    marts = {name for (name,) in built_warehouse.query(
        "select table_name from information_schema.tables where table_schema = 'marts'")}
    assert set(project.views) == marts
    assert {"survey_results", "survey_research"} <= set(project.models)
    assert {d["dashboard"] for d in project.dashboards} == {"school_results", "participation", "trends"}


# --- views against the warehouse ---------------------------------------------------------


def view_queries(project: Project, name: str) -> list[str]:
    """Every dimension (one row) and every measure (aggregated over the table) of a view."""
    explore = project.view_explore(name)
    view = project.view(name)
    dimensions = [f.ref for f in view.fields.values() if f.kind == "dimension"]
    measures = [f.ref for f in view.fields.values() if f.kind == "measure"]
    queries = [explore.sql(dimensions, limit=1)]
    if measures:
        queries.append(explore.sql(measures))
    return queries


def missing_tables_and_columns(project: Project, columns: dict[str, set[str]]) -> list[str]:
    """Views whose table, or ${TABLE}.columns, are not in `columns` (table -> its columns)."""
    problems = []
    for view in project.views.values():
        schema, _, table = view.table.lower().rpartition(".")
        assert schema == "marts", view.table
        if table not in columns:
            problems.append(f"view {view.name}: no table {view.table}")
            continue
        missing = view.table_columns() - columns[table]
        if missing:
            problems.append(f"view {view.name}: {view.table} has no column {sorted(missing)}")
    return problems


def test_views_read_existing_tables_and_columns_on_duckdb(project, built_warehouse):
    columns: dict[str, set[str]] = {}
    for table, column in built_warehouse.query(
            "select table_name, column_name from information_schema.columns where table_schema = 'marts'"):
        columns.setdefault(table, set()).add(column)
    assert not missing_tables_and_columns(project, columns)
    for name in project.views:
        for sql in view_queries(project, name):
            built_warehouse.query(sql)


def test_view_types_keys_and_measures(project):
    results = project.view("topic_results")
    assert results.fields["pk"].hidden and "primary_key: yes" in project.files["views/topic_results.view.lkml"]
    assert results.fields["is_suppressed"].type == "yesno"
    assert results.fields["school_year"].type == "string"
    # The numbers the measures re-aggregate are not dimensions; non-additive ones are.
    assert results.fields["percent_favorable"].kind == "measure"
    assert results.fields["respondents"].kind == "measure"
    benchmarks = project.view("benchmarks")
    assert all(benchmarks.fields[f"p{p}_percent_favorable"].kind == "dimension" for p in (10, 25, 50, 75, 90))
    assert project.view("reliability").fields["cronbach_alpha"].kind == "dimension"
    item_reliability = project.view("item_reliability").fields
    assert item_reliability["corrected_item_total_correlation"].kind == "dimension"
    trends = project.view("topic_trends").fields
    assert trends["percent_favorable"].kind == "dimension" and trends["percent_favorable_change"].kind == "dimension"
    surveys = project.view("dim_surveys").fields
    assert surveys["opens_date"].timeframe == "date" and surveys["survey_id"].type == "string"
    assert "primary_key: yes" in project.files["views/dim_surveys.view.lkml"]
    answers = project.view("fct_question_responses").fields
    assert answers["mapping_fingerprint"].hidden and answers["ingested_through_raw"].hidden
    assert project.view("fct_survey_responses").fields["started_time"].timeframe == "time"
    assert "label: \"Percent favorable\"" in project.files["views/topic_results.view.lkml"]
    assert ("description: \"School year, e.g. 2023-24.\"" in project.files["views/topic_results.view.lkml"])


# --- explores and dashboards name what exists -------------------------------------------


def test_explores_join_existing_views_and_fields(project):
    explores = project.explores()
    assert {e.name for e in explores if e.model == "survey_results"} == {
        "topic_results", "item_results", "topic_trends", "participation"}
    for explore in explores:
        project.view(explore.base)
        for name, join in explore.joins.items():
            project.view(name)
            assert join["relationship"] == "many_to_one", (explore.name, name)
            explore.views_referenced(join["sql_on"])  # raises on a view or field that does not exist
            assert set(join.get("required_joins", [])) <= set(explore.joins)
        for ref in [*explore.always_filters(), *(a["field"] for a in explore.access_filters())]:
            explore.field(ref)
        explore.views_referenced(explore.spec.get("sql_always_where", ""))
        if explore.model == "survey_results":
            assert [a["user_attribute"] for a in explore.access_filters()] == ["district_id"], explore.name
            if "is_suppressed" in project.view(explore.base).fields:
                assert explore.spec["sql_always_where"] == f"not ${{{explore.base}.is_suppressed}}"
            assert not explore.spec.get("required_access_grants")
        else:
            assert explore.spec["required_access_grants"] == ["survey_researcher"], explore.name
    # The researchers' answers explore reaches every dimension.
    answers = project.explore("survey_research", "question_responses")
    assert {v for v in project.views if v.startswith("dim_")} <= set(answers.views)


def test_lookml_errors_name_what_is_missing(project):
    explore = project.explore("survey_results", "topic_results")
    with pytest.raises(LookmlError, match="no field nope"):
        explore.field("topic_results.nope")
    with pytest.raises(LookmlError, match="has no view dim_students"):
        explore.field("dim_students.gender")
    with pytest.raises(LookmlError, match="a yesno filter is Yes or No"):
        explore.sql(["topic_results.respondents"], {"topic_results.is_suppressed": "true"}, {"district_id": "d01"})


def test_dashboards_name_only_existing_explores_and_fields(project):
    for dashboard in project.dashboards:
        for dashboard_filter in dashboard["filters"]:
            project.explore(dashboard_filter["model"], dashboard_filter["explore"]).field(dashboard_filter["field"])
        tiles = project.tile_queries(dashboard)
        assert tiles, dashboard["dashboard"]
        for tile in tiles:
            for ref in tile["fields_named"]:
                tile["explore"].field(ref)


def test_dashboard_tiles_run_on_duckdb(project, built_warehouse):
    school, district, year = built_warehouse.query(
        "select s.school_name, s.district_id, r.school_year from marts.topic_results as r "
        "join marts.dim_schools as s on r.entity_id = s.school_id "
        "where r.reporting_level = 'school' and r.subgroup_category = 'gender' and not r.is_suppressed "
        "and r.respondent_type = 'student' order by r.respondents desc limit 1")[0]
    district_name = built_warehouse.query("select district_name from marts.dim_districts where district_id = ?",
                                          [district])[0][0]
    values = {"school": school, "district": district_name, "school_year": year}
    for dashboard in project.dashboards:
        for tile in project.tile_queries(dashboard, values):
            rows = built_warehouse.query(tile["explore"].sql(
                tile["fields"], tile["filters"], {"district_id": district}, tile["sorts"], tile["limit"]))
            assert rows, f"dashboard {dashboard['dashboard']}, tile {tile['element']}: no rows for {values}"


# --- the SQL Looker would issue ----------------------------------------------------------


def every_measure(explore: Explore) -> list[str]:
    return [f.ref for v in explore.views for f in explore.project.view(v).fields.values()
            if f.kind == "measure" and not f.hidden]


def user_for(explore: Explore, district: str) -> dict[str, str]:
    return {"district_id": district} if explore.model == "survey_results" else RESEARCHER


def a_few_dimensions_and_every_measure(explore: Explore) -> list[str]:
    """Up to four dimensions of the explore's first views, then every measure it has."""
    dimensions = [f.ref for v in explore.views[:3] for f in list(explore.project.view(v).fields.values())[:6]
                  if f.kind == "dimension" and not f.hidden][:4]
    return [*dimensions, *every_measure(explore)]


def test_every_explore_runs_with_dimensions_and_every_measure(project, built_warehouse):
    district = built_warehouse.query("select min(district_id) from marts.dim_districts")[0][0]
    for explore in project.explores():
        sql = explore.sql(a_few_dimensions_and_every_measure(explore), user_attributes=user_for(explore, district),
                          limit=50)
        rows = built_warehouse.query(sql)
        assert rows, f"explore {explore.model}.{explore.name} returned nothing:\n{sql}"


def published(built_warehouse, level: str) -> pd.DataFrame:
    return built_warehouse.df(f"""
        select school_year, respondent_type, entity_id, topic_id, percent_favorable, topic_mean,
               respondents, scored_respondents
        from marts.topic_results
        where reporting_level = '{level}' and subgroup_category = 'all' and not is_suppressed""")


def compare(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    merged = expected.merge(actual, on=keys, how="outer", suffixes=("", "_looker"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    for column in columns:
        a, b = merged[column].astype(float), merged[f"{column}_looker"].astype(float)
        assert np.allclose(a, b, rtol=0, atol=TOLERANCE, equal_nan=True), (
            merged.loc[~np.isclose(a, b, rtol=0, atol=TOLERANCE, equal_nan=True), [*keys, column, f"{column}_looker"]])
    return merged


def client_rows(project, built_warehouse, fields: list[str], filters: dict | None = None) -> pd.DataFrame:
    """The client explore's rows for every district, each queried as that district's user."""
    explore = project.explore("survey_results", "topic_results")
    frames = []
    for (district,) in built_warehouse.query("select district_id from marts.dim_districts order by 1"):
        sql = explore.sql(fields, filters, {"district_id": district})
        frames.append(built_warehouse.df(sql))
    out = pd.concat(frames, ignore_index=True)
    out.columns = [c.split(".", 1)[1] for c in out.columns]
    return out


KEYS = ["school_year", "respondent_type", "entity_id", "topic_id"]
RESULT_FIELDS = [f"topic_results.{k}" for k in KEYS] + ["topic_results.percent_favorable", "topic_results.topic_mean"]


def test_percent_favorable_at_school_topic_all_equals_topic_results(project, built_warehouse):
    expected = published(built_warehouse, "school")
    actual = client_rows(project, built_warehouse, RESULT_FIELDS)  # always_filter: school level, subgroup all
    merged = compare(expected, actual, KEYS, ["percent_favorable", "topic_mean"])
    assert len(merged) > 100
    print(f"{len(merged)} school x topic rows: percent favorable and topic mean equal to {TOLERANCE}")


def test_percent_favorable_at_district_level_equals_the_district_row(project, built_warehouse):
    expected = published(built_warehouse, "district")
    actual = client_rows(project, built_warehouse, RESULT_FIELDS, {"topic_results.reporting_level": "district"})
    assert len(compare(expected, actual, KEYS, ["percent_favorable", "topic_mean"])) > 20


def test_school_rows_re_aggregate_to_their_district_row(project, built_warehouse):
    """Where every school of a district is published, the measures over its school rows
    give the district row: pooled percent favorable and the weighted topic mean; the
    average of the schools' percents would not."""
    schools = client_rows(project, built_warehouse, [
        "topic_results.school_year", "topic_results.respondent_type", "dim_districts.district_id",
        "topic_results.topic_id", "topic_results.percent_favorable", "topic_results.topic_mean",
        "topic_results.respondents"])
    schools = schools.rename(columns={"district_id": "entity_id"})
    district = published(built_warehouse, "district")
    all_schools = built_warehouse.df("""
        select r.school_year, r.respondent_type, s.district_id as entity_id, r.topic_id,
               count(*) as schools, count(case when r.is_suppressed then 1 end) as suppressed
        from marts.topic_results as r join marts.dim_schools as s on r.entity_id = s.school_id
        where r.reporting_level = 'school' and r.subgroup_category = 'all' group by all""")
    whole = all_schools[all_schools.suppressed == 0].merge(district, on=KEYS).merge(
        schools, on=KEYS, suffixes=("", "_looker"))
    whole = whole[whole.respondents == whole.respondents_looker]  # every respondent has a school
    assert len(whole) >= 5, "too few districts with every school published to check"
    assert np.allclose(whole.percent_favorable, whole.percent_favorable_looker, rtol=0, atol=TOLERANCE)
    assert np.allclose(whole.topic_mean, whole.topic_mean_looker, rtol=0, atol=TOLERANCE)
    school_level = published(built_warehouse, "school").merge(
        built_warehouse.df("select school_id as entity_id, district_id from marts.dim_schools"), on="entity_id")
    naive = school_level.groupby(["school_year", "respondent_type", "district_id", "topic_id"]).percent_favorable.mean()
    naive = naive.rename("naive").reset_index().rename(columns={"district_id": "entity_id"}).merge(whole, on=KEYS)
    assert (abs(naive.naive - naive.percent_favorable) > 1e-6).any(), "the check cannot tell pooling from averaging"


def test_row_level_answers_give_the_marts_percent_favorable(project, built_warehouse):
    """The researchers' answers explore, grouped by school (and by district) x topic,
    re-aggregates the row-level facts to topic_results' published numbers."""
    explore = project.explore("survey_research", "question_responses")
    for level, entity in (("school", "school_id"), ("district", "district_id")):
        sql = explore.sql(
            ["fct_survey_responses.school_year", "fct_survey_responses.respondent_type",
             f"fct_survey_responses.{entity}", "fct_question_responses.topic_id",
             "fct_question_responses.percent_favorable"],
            {"fct_question_responses.topic_id": "-NULL", f"fct_survey_responses.{entity}": "-NULL",
             "fct_survey_responses.school_year": "-NULL"},
            RESEARCHER)
        actual = built_warehouse.df(sql)
        actual.columns = ["school_year", "respondent_type", "entity_id", "topic_id", "percent_favorable_looker"]
        expected = published(built_warehouse, level).merge(actual, on=KEYS, how="left")
        assert expected.percent_favorable_looker.notna().all()
        assert np.allclose(expected.percent_favorable, expected.percent_favorable_looker, rtol=0, atol=TOLERANCE)


def test_benchmarks_beside_results_are_those_of_the_schools_level(project, built_warehouse):
    actual = client_rows(project, built_warehouse, [
        *RESULT_FIELDS[:4], "topic_results.reporting_level", "benchmarks.p50_percent_favorable"],
        {"topic_results.reporting_level": "school,district"})
    expected = built_warehouse.df("""
        select r.school_year, r.respondent_type, r.entity_id, r.topic_id, r.reporting_level,
               b.p50_percent_favorable
        from marts.topic_results as r
        left join marts.dim_schools as s on r.reporting_level = 'school' and r.entity_id = s.school_id
        left join marts.benchmarks as b
            on b.school_year = r.school_year and b.respondent_type = r.respondent_type and b.topic_id = r.topic_id
            and b.school_level = coalesce(s.school_level, 'all') and b.is_published
        where r.subgroup_category = 'all' and not r.is_suppressed""")
    merged = compare(expected, actual, [*KEYS, "reporting_level"], ["p50_percent_favorable"])
    assert merged.p50_percent_favorable.notna().any(), "no published benchmark in the sample to check"


def test_client_explores_return_no_suppressed_number(project, built_warehouse):
    """Every client explore, queried at its mart's grain for every district's user, returns
    exactly that district's published rows: no suppressed row, no other district's."""
    checked = 0
    for explore in project.explores():
        if explore.model != "survey_results":
            continue
        base = project.view(explore.base)
        grain = [f for f in ("school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
                             "canonical_item_id", "subgroup_category", "subgroup_value", "survey_id", "school_id")
                 if f in base.fields and base.fields[f].kind == "dimension"]
        overrides = {f"{explore.base}.reporting_level": "school,district"} if "reporting_level" in grain else {}
        if "subgroup_category" in grain:
            overrides[f"{explore.base}.subgroup_category"] = (
                "all,gender,race_ethnicity,grade_level,english_learner,iep,econ_disadvantaged")
        fields = [f"{explore.base}.{f}" for f in grain] + ["dim_districts.district_id", *every_measure(explore)]
        has_suppression = "is_suppressed" in base.fields
        if "reporting_level" in grain:
            district_of = "case when t.reporting_level = 'district' then t.entity_id else s.district_id end"
            school_join = "left join marts.dim_schools as s on t.reporting_level = 'school' and t.entity_id = s.school_id"
        else:
            district_of, school_join = "t.district_id", ""
        truth = built_warehouse.df(f"""
            select {', '.join(f't.{g}' for g in grain)}, {district_of} as district_id,
                   {'t.is_suppressed' if has_suppression else 'false'} as is_suppressed
            from marts.{explore.base} as t {school_join}""")
        if has_suppression:
            assert truth.is_suppressed.any(), f"{explore.base}: no suppressed row to hide"
        for (district,) in built_warehouse.query("select district_id from marts.dim_districts order by 1"):
            rows = built_warehouse.df(explore.sql(fields, overrides, {"district_id": district}))
            rows.columns = [c.split(".", 1)[1] for c in rows.columns]
            assert (rows.district_id == district).all(), f"{explore.name}: another district's rows"
            expected = truth[(truth.district_id == district) & ~truth.is_suppressed]
            got = set(map(tuple, rows[grain].astype(str).values))
            assert got == set(map(tuple, expected[grain].astype(str).values)), explore.name
            hidden = truth[(truth.district_id == district) & truth.is_suppressed]
            assert not got & set(map(tuple, hidden[grain].astype(str).values)), explore.name
            checked += len(rows)
    assert checked > 1000


def test_explores_refuse_users_without_access(project):
    client = project.explore("survey_results", "topic_results")
    with pytest.raises(AccessDenied, match="district_id"):
        client.sql(["topic_results.percent_favorable"])
    research = project.explore("survey_research", "question_responses")
    with pytest.raises(AccessDenied, match="survey_researcher"):
        research.sql(["fct_question_responses.percent_favorable"], user_attributes={"survey_role": "district_staff"})
    research.sql(["fct_question_responses.percent_favorable"], user_attributes=RESEARCHER)


# --- exposures ----------------------------------------------------------------------------


def test_exposures_list_what_each_dashboard_needs(project, built_warehouse):
    exposures = {e["name"]: e for e in yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]}
    assert {f"{d['dashboard']}_dashboard" for d in project.dashboards} <= set(exposures)
    assert {f"{e.name}_explore" for e in project.explores()} <= set(exposures)
    school = exposures["school_results_dashboard"]
    assert school["type"] == "dashboard" and school["owner"]["email"] and school["url"].startswith("https://")
    depends = {ref[5:-2] for ref in school["depends_on"]}
    assert depends == {"topic_results", "benchmarks", "dim_topics", "dim_schools", "dim_districts"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "ls", "--select", "+exposure:school_results_dashboard",
         "--resource-type", "model", "--output", "name", "--profiles-dir", str(PROJECT_DIR),
         "--project-dir", str(PROJECT_DIR), "--quiet"],
        cwd=PROJECT_DIR, env={**os.environ, **built_warehouse.env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    listed = set(proc.stdout.split())
    assert depends <= listed
    assert {"int_response_topics_scored", "int_question_responses_scored", "stg_replica__question_responses"} <= listed
    assert not {"item_results", "participation", "topic_trends", "respondents_wide"} & listed


# --- the generator's errors ---------------------------------------------------------------


def test_a_bad_measure_definition_names_the_yml(tmp_path):
    columns = {"favorable_answers", "substantive_answers"}
    where = "models/marts/survey/topic_results.yml"
    with pytest.raises(UserError, match="topic_results.yml.*needs numerator"):
        generator.build_measure(where, "topic_results", {"name": "pf", "type": "ratio", "denominator": "x"}, columns)
    with pytest.raises(UserError, match="does not have"):
        generator.build_measure(where, "topic_results", {"name": "n", "type": "sum", "column": "nope"}, columns)
    with pytest.raises(UserError, match="one of"):
        generator.build_measure(where, "topic_results", {"name": "m", "type": "median", "column": "x"}, columns)


def test_missing_artifacts_exit_2_with_what_to_do(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "orchestrate", "lookml", "--artifacts", str(tmp_path),
                           "--out", str(tmp_path / "out"), "--exposures", str(tmp_path / "e.yml")],
                          cwd=PROJECT_DIR, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "manifest.json does not exist" in proc.stderr and "dbt docs generate" in proc.stderr
    assert "Traceback" not in proc.stderr
