"""`python -m orchestrate pr-check` on DuckDB: a pull request's change, made in a scratch
copy of the project, built and tested against the session's built warehouse as
production (its dbt state is that build's manifest), then diffed against it.

The diff's numbers are checked against pandas reading both warehouses, and against
what the change was built to do."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, scratch_project

CHANGED_MODEL = "models/intermediate/survey/int_response_topics_scored.sql"
SCORE = "then answered.mean_item_score"


def pr_check(project: Path, production, out: Path, *args: str):
    env = {
        "DBT_DUCKDB_PATH": str(production.db),
        "DBT_LOG_PATH": str(out / "logs"),
        "DUCKDB_TEMP_DIRECTORY": str(out / "duckdb_tmp"),
    }
    proc = run_cli("pr-check", "--base", production.env["DBT_TARGET_PATH"], "--out", str(out), *args,
                   cwd=project, env=env)
    check = json.loads((out / "diff.json").read_text()) if (out / "diff.json").exists() else None
    return proc, check


def edit(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    text = file.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    file.write_text(text.replace(old, new))


def downstream(manifest: dict, unique_id: str) -> set[str]:
    """The node and every model downstream of it, and the tests and unit tests of those:
    what `<node>+` selects, from the manifest's child map."""
    models, queue = {unique_id}, deque([unique_id])
    while queue:
        for child in manifest["child_map"].get(queue.popleft(), []):
            if child.startswith("model.") and child not in models:
                models.add(child)
                queue.append(child)
    tests = {uid for uid, node in manifest["nodes"].items()
             if node["resource_type"] == "test" and set(node["depends_on"]["nodes"]) & models}
    unit_tests = {uid for uid, node in manifest.get("unit_tests", {}).items()
                  if set(node["depends_on"]["nodes"]) & models}
    return models | tests | unit_tests


@pytest.fixture(scope="module")
def base_manifest(built_warehouse) -> dict:
    return json.loads((Path(built_warehouse.env["DBT_TARGET_PATH"]) / "manifest.json").read_text())


def test_pr_check_builds_only_the_change_and_downstream_and_diffs_exactly_the_rows_it_changes(
        tmp_path, built_warehouse, base_manifest):
    """The change: topic scores rounded to two decimals. Exactly the responses with a
    topic score of more than two decimals change in respondents_wide, each by at most
    0.005, and the topic means of the groups holding them in topic_results."""
    project = scratch_project(tmp_path)
    edit(project, CHANGED_MODEL, SCORE, "then round(answered.mean_item_score, 2)")
    proc, check = pr_check(project, built_warehouse, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    built = {n["unique_id"] for n in check["nodes"]}
    expected = downstream(base_manifest, "model.survey_warehouse.int_response_topics_scored")
    assert built == expected, (sorted(built - expected), sorted(expected - built))
    models = {uid.split(".")[-1] for uid in built if uid.startswith("model.")}
    assert {"int_response_topics_scored", "respondents_wide", "topic_results", "topic_trends"} <= models
    assert not models & {"dim_students", "fct_question_responses", "int_response_items_scored", "dim_questions"}
    assert all(n["status"] in ("success", "pass") for n in check["nodes"]), check["nodes"]

    # What the change does, computed from production's scores with pandas.
    scores = built_warehouse.df("select response_id, topic_id, topic_score "
                                "from intermediate.int_response_topics_scored where topic_score is not null")
    scores["rounded"] = np.round(scores["topic_score"], 2)
    moved = scores[(scores["rounded"] - scores["topic_score"]).abs() > 1e-9]
    assert len(moved) > 20, "the sample should have scores of more than two decimals"
    diffs = {d["mart"]: d for d in check["diffs"]}
    assert set(diffs) == models & {n["name"] for n in base_manifest["nodes"].values()
                                   if n["resource_type"] == "model" and n["fqn"][1] == "marts"}

    wide = diffs["respondents_wide"]
    assert wide["status"] == "changed" and wide["keys"] == ["response_id"]
    assert (wide["rows_base"], wide["rows_pr"], wide["added"], wide["removed"]) == (
        wide["rows_base"], wide["rows_base"], 0, 0)
    assert wide["changed"] == moved["response_id"].nunique()
    by_column = {c["column"]: c for c in wide["columns"]}
    expected_columns = moved.groupby("topic_id")["response_id"].nunique().to_dict()
    assert {c: e["changed"] for c, e in by_column.items()} == {f"{t}_score": n for t, n in expected_columns.items()}
    for topic, entry in by_column.items():
        assert entry["became_null"] == entry["was_null"] == 0
        assert 0 < max(abs(entry["min_change"]), abs(entry["max_change"])) <= 0.005 + 1e-12
        for example in entry["examples"]:
            row = scores[(scores["response_id"] == example["key"]["response_id"])
                         & (scores["topic_id"] == topic.removesuffix("_score"))].iloc[0]
            assert example["base"] == pytest.approx(row["topic_score"])
            assert example["pr"] == pytest.approx(row["rounded"])

    # topic_results and topic_trends against pandas reading both warehouses.
    con = duckdb.connect(str(tmp_path / "out" / "pr_check.duckdb"), read_only=True)
    con.execute(f"attach '{built_warehouse.db}' as warehouse (read_only)")
    for mart in ("topic_results", "topic_trends"):
        d = diffs[mart]
        keys = d["keys"]
        base = con.execute(f"select * from warehouse.marts.{mart}").df()
        pr = con.execute(f"select * from pr_check.pr_marts.{mart}").df()
        both = base.merge(pr, on=keys, suffixes=("_b", "_p"))
        assert len(both) == len(base) == len(pr) == d["matched"]
        changed = np.zeros(len(both), dtype=bool)
        for column in [c for c in base.columns if c not in keys]:
            b, p = both[f"{column}_b"], both[f"{column}_p"]
            diff = (b.isna() != p.isna()).to_numpy(dtype=bool)
            if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
                fb, fp = b.astype("float64").to_numpy(), p.astype("float64").to_numpy()
                with np.errstate(invalid="ignore"):
                    diff |= np.abs(fp - fb) > 1e-9 * np.maximum(1, np.abs(fb))  # NaN compares False
            else:
                diff |= (b.astype(object).where(b.notna(), None).to_numpy()
                         != p.astype(object).where(p.notna(), None).to_numpy())
            changed |= diff
            reported = next((c["changed"] for c in d["columns"] if c["column"] == column), 0)
            assert reported == int(diff.sum()), (mart, column, reported, int(diff.sum()))
        assert d["changed"] == int(changed.sum()) > 0, mart
    con.close()

    md = (tmp_path / "out" / "diff.md").read_text()
    assert f"| respondents_wide | {wide['rows_base']:,} → {wide['rows_pr']:,} | 0 | 0 | {wide['changed']:,} |" in md
    assert "#### respondents_wide" in md and "`stu_belonging_score`" in md
    assert md in proc.stdout


def test_pr_check_of_a_no_op_change_reports_no_difference(tmp_path, built_warehouse):
    project = scratch_project(tmp_path)
    edit(project, CHANGED_MODEL, "\nfinal as (", "\n-- one row per response and topic\nfinal as (")
    proc, check = pr_check(project, built_warehouse, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "model.survey_warehouse.int_response_topics_scored" in {n["unique_id"] for n in check["nodes"]}
    assert len(check["diffs"]) >= 3
    assert all(d["status"] == "unchanged" and d["changed"] == d["added"] == d["removed"] == 0
               for d in check["diffs"]), check["diffs"]
    assert f"### Marts: 0 of {len(check['diffs'])} rebuilt differ from production" in proc.stdout


def test_pr_check_without_production_state_says_what_to_do(tmp_path, built_warehouse):
    proc = run_cli("pr-check", "--base", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"),
                   env={"DBT_DUCKDB_PATH": str(built_warehouse.db)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no production state in" in proc.stderr and "Traceback" not in proc.stderr


def test_a_join_that_duplicates_a_composite_grain_fails_naming_the_yml_and_the_keys(tmp_path, built_warehouse):
    """reliability's grain is school year, respondent type and topic; a join that forgets
    the topic fans every topic out over the others. The unique_combination test fails
    (named with its yml) and the diff lists duplicated keys instead of comparing rows."""
    project = scratch_project(tmp_path)
    edit(project, "models/marts/survey/reliability.sql",
         "\n        and item_summary.topic_id = total_summary.topic_id", "")
    proc, check = pr_check(project, built_warehouse, tmp_path / "out")
    assert proc.returncode == 1, proc.stdout[-6000:] + proc.stderr[-3000:]
    failed = [n for n in check["failures"] if "unique_combination_reliability" in n["unique_id"]]
    assert failed and failed[0]["file"] == "models/marts/survey/reliability.yml", check["failures"]
    assert "**FAIL** `unique_combination_reliability" in proc.stdout and "(models/marts/survey/reliability.yml)" in proc.stdout
    reliability = next(d for d in check["diffs"] if d["mart"] == "reliability")
    expected = built_warehouse.query("select count(*) from marts.reliability")[0][0]
    assert reliability["duplicate_keys"] == expected  # every key now has one row per topic of its survey type
    example = reliability["duplicate_examples"][0]
    assert set(example) == {"school_year", "respondent_type", "topic_id"}
    assert f"`{example['school_year']} / {example['respondent_type']} / {example['topic_id']}`" in proc.stdout


def test_a_join_that_duplicates_a_single_column_grain_fails_naming_the_model_and_the_key(tmp_path, built_warehouse):
    """dim_schools' grain, school_id, is its primary key constraint (DuckDB enforces it): a
    join that fans schools out fails the build, naming the model, its file and a key."""
    project = scratch_project(tmp_path)
    edit(project, "models/marts/core/dim_schools.sql",
         "\n        and {{ code_match_key('grade_span.lowest_code') }} = lowest.code_key", "")
    proc, check = pr_check(project, built_warehouse, tmp_path / "out")
    assert proc.returncode == 2, proc.stdout[-6000:] + proc.stderr[-3000:]
    error = next(n for n in check["errors"] if n["unique_id"] == "model.survey_warehouse.dim_schools")
    assert error["file"] == "models/marts/core/dim_schools.sql"
    schools = {s for (s,) in built_warehouse.query("select school_id from marts.dim_schools")}
    assert "constraint" in error["message"].lower() and any(s in error["message"] for s in schools), error["message"]
    assert "**ERROR** `dim_schools` (models/marts/core/dim_schools.sql)" in proc.stdout
    assert "of the nodes failed" in proc.stderr.strip().splitlines()[-1]


PERCENT = "            as percent_favorable,"
PERCENT_SQL = "cast(100.0 * results.favorable_answers / results.substantive_answers as double)"
PERCENT_YML = "      - name: percent_favorable\n        data_type: double\n"


@pytest.mark.parametrize("change, reasons", [
    ({"sql": (PERCENT, "            as favorable_percent,")},
     [["favorable_percent", "DOUBLE", "", "missing in contract"],
      ["percent_favorable", "", "DOUBLE", "missing in definition"]]),
    ({"sql": (PERCENT_SQL, PERCENT_SQL.replace("as double)", "as varchar)"))},
     [["percent_favorable", "VARCHAR", "DOUBLE", "data type mismatch"]]),
], ids=["renamed", "retyped"])
def test_renaming_or_retyping_a_contracted_column_fails_with_the_contract_error(
        tmp_path, built_warehouse, change, reasons):
    """topic_results.percent_favorable renamed or retyped in the SQL: dbt's contract error,
    naming the model, its file and the column, before anything is built with data."""
    project = scratch_project(tmp_path)
    edit(project, "models/marts/survey/topic_results.sql", *change["sql"])
    proc, check = pr_check(project, built_warehouse, tmp_path / "out")
    assert proc.returncode == 2, proc.stdout[-6000:] + proc.stderr[-3000:]
    [error] = check["errors"]
    assert (error["name"], error["file"]) == ("topic_results", "models/marts/survey/topic_results.sql")
    assert "Compilation Error in model topic_results (models/marts/survey/topic_results.sql)" in error["message"]
    assert "This model has an enforced contract that failed." in error["message"]
    for reason in reasons:  # rows of dbt's table: column_name | definition_type | contract_type | reason
        assert reason in table_rows(error["message"]), error["message"]
        assert reason in table_rows(proc.stdout)
    assert check["diffs"] == []


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.strip().startswith("|")]


def test_a_contract_changed_to_match_is_a_breaking_change_against_production(tmp_path, built_warehouse):
    """The same changes made in the yml too (percent_favorable renamed, topic_mean retyped):
    the model matches its contract, but the contract no longer matches production's. dbt's
    breaking-change check names the model and both columns; pr-check stops and says to make
    a new model version."""
    project = scratch_project(tmp_path)
    sql, yml = "models/marts/survey/topic_results.sql", "models/marts/survey/topic_results.yml"
    edit(project, sql, PERCENT, "            as favorable_percent,")
    edit(project, yml, PERCENT_YML, PERCENT_YML.replace("percent_favorable", "favorable_percent"))
    edit(project, sql, "cast(results.topic_mean as double)", "cast(results.topic_mean as varchar)")
    edit(project, yml, "      - name: topic_mean\n        data_type: double\n",
         "      - name: topic_mean\n        data_type: varchar\n")
    proc, _ = pr_check(project, built_warehouse, tmp_path / "out")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-6000:]
    assert "Breaking change to contracted, unversioned model topic_results" in out
    assert "(models/marts/survey/topic_results.sql)" in out
    assert "Columns were removed" in out and "percent_favorable" in out
    assert "data_type changes" in out and "topic_mean" in out
    assert "new version of the model" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out
    comment = (tmp_path / "out" / "diff.md").read_text()  # what CI posts on the pull request
    assert "pr-check stopped" in comment and "Columns were removed" in comment and "percent_favorable" in comment
