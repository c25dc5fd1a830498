"""Survey marts recomputed independently in pandas/numpy (issues 4 and 16).

The recomputation is orchestrate/reference_pandas.py, the script `bench` times the project
against: it starts from the extract files the session's warehouse was built from and the
seed CSV files, and redoes current state, mapping, answer resolution, scoring,
demographics, aggregation, primary and complementary suppression (orchestrate.disclosure)
and the statistics in Python, without reading the warehouse. The marts must agree to 1e-9,
with the same rows, and suppress the same rows for the same reasons. Alpha is checked
against pingouin as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pingouin
import pytest

from orchestrate import reference_pandas
from orchestrate.reference_pandas import MART_KEYS, compare_frames
from conftest import PROJECT_DIR, warehouse_env

TOL = 1e-9
MIN_N = 10


@pytest.fixture(scope="module")
def reference(built_warehouse) -> reference_pandas.Reference:
    replica = reference_pandas.load(built_warehouse.extracts, progress=lambda _: None)
    return reference_pandas.compute(replica, progress=lambda _: None, details=True)


def assert_agrees(reference, built_warehouse, mart: str) -> pd.DataFrame:
    """The mart as the reference computes it, after checking the warehouse's equals it."""
    expected = reference.marts[mart]
    actual = built_warehouse.df(f"select * from marts.{mart}")
    problems = compare_frames(mart, expected, actual, MART_KEYS[mart], TOL)
    assert not problems, "\n".join(problems)
    return expected


def assert_frames_match(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str], columns: list[str]):
    problems = compare_frames("frame", expected[keys + columns], actual, keys, TOL)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------
# Tests


def test_topic_results_match_recomputation(built_warehouse, reference):
    expected = assert_agrees(reference, built_warehouse, "topic_results")
    assert len(expected) > 100 and (~expected.is_suppressed).sum() > 50
    assert (expected.suppression_reason == "primary").sum() < expected.is_suppressed.sum(), \
        "the sample should need complementary suppression"
    assert expected.suppression_reason.isin(["complementary_level", "complementary_item"]).any()


def test_item_results_match_recomputation(built_warehouse, reference):
    expected = assert_agrees(reference, built_warehouse, "item_results")
    assert (~expected.is_suppressed).sum() > 100


def test_topic_trends_match_recomputation(built_warehouse, reference):
    expected = assert_agrees(reference, built_warehouse, "topic_trends")
    assert expected.percent_favorable_change.notna().sum() > 10, "the sample should show some trends"


def test_participation_matches_recomputation(built_warehouse, reference):
    expected = assert_agrees(reference, built_warehouse, "participation")
    assert (expected.response_rate > 0).sum() > 10


def test_benchmark_percentiles_match_recomputation(built_warehouse, reference):
    expected = assert_agrees(reference, built_warehouse, "benchmarks")
    assert expected.is_published.sum() >= 5, "the sample should publish some benchmarks"


def test_the_comparison_finds_a_difference(built_warehouse, reference):
    """The agreement check can fail: a number off by more than 1e-9, a row missing, a
    suppression flag flipped are each reported, naming the mart and the column."""
    actual = built_warehouse.df("select * from marts.topic_results")
    keys = MART_KEYS["topic_results"]
    expected = reference.marts["topic_results"]
    published = actual.index[~actual.is_suppressed][0]
    nudged = actual.copy()
    nudged.loc[published, "topic_mean"] += 2e-9
    assert any(p.startswith("topic_results.topic_mean: 1 rows differ") for p in
               compare_frames("topic_results", expected, nudged, keys))
    assert any("1 rows on one side only" in p for p in
               compare_frames("topic_results", expected, actual.drop(index=published), keys))
    flipped = actual.copy()
    flipped.loc[published, "is_suppressed"] = True
    assert any(p.startswith("topic_results.is_suppressed") for p in
               compare_frames("topic_results", expected, flipped, keys))
    assert compare_frames("topic_results", expected, actual, keys) == []


def listwise_matrices(reference):
    """Per (school year, respondent type, topic): respondents × items, complete rows only."""
    items = reference_pandas.read_seeds().items
    topic_items = items.groupby("topic_id").canonical_item_id.apply(sorted).to_dict()
    for key, g in reference.per_item.groupby(["school_year", "respondent_type", "topic_id"]):
        wide = g.pivot(index="response_id", columns="canonical_item_id", values="item_score")
        wide = wide.reindex(columns=topic_items[key[2]]).dropna()
        yield key, wide


def alpha(wide: pd.DataFrame) -> float:
    k = wide.shape[1]
    return k / (k - 1) * (1 - wide.var(ddof=1).sum() / wide.sum(axis=1).var(ddof=1))


def test_reliability_matches_recomputation_and_pingouin(built_warehouse, reference):
    assert_agrees(reference, built_warehouse, "reliability")
    actual = built_warehouse.df("select * from marts.reliability").set_index(
        ["school_year", "respondent_type", "topic_id"])
    checked = 0
    for key, wide in listwise_matrices(reference):
        if len(wide) == 0:
            assert key not in actual.index
            continue
        row = actual.loc[key]
        assert row["items"] == wide.shape[1]
        if len(wide) < MIN_N:
            assert row.is_suppressed and pd.isna(row.cronbach_alpha) and pd.isna(row.complete_respondents)
            continue
        assert not row.is_suppressed and row.complete_respondents == len(wide)
        expected = alpha(wide)
        by_pingouin, _ = pingouin.cronbach_alpha(data=wide)
        assert abs(expected - by_pingouin) < TOL
        assert abs(row.cronbach_alpha - expected) < TOL, key
        checked += 1
    assert checked >= 20


def test_item_reliability_matches_recomputation(built_warehouse, reference):
    actual = built_warehouse.df("select * from marts.item_reliability").set_index(
        ["school_year", "respondent_type", "topic_id", "canonical_item_id"])
    checked = 0
    for key, wide in listwise_matrices(reference):
        if len(wide) < MIN_N:
            continue
        total = wide.sum(axis=1)
        for item in wide.columns:
            row = actual.loc[key + (item,)]
            rest = total - wide[item]
            expected_r = np.corrcoef(wide[item], rest)[0, 1]
            assert abs(row.corrected_item_total_correlation - expected_r) < TOL, (key, item)
            without, _ = pingouin.cronbach_alpha(data=wide.drop(columns=item))
            assert abs(row.alpha_if_item_deleted - without) < TOL, (key, item)
            checked += 1
    assert checked >= 100


def test_respondent_topic_scores_match_recomputation(built_warehouse, reference):
    t = reference.per_topic
    wide = built_warehouse.df("select * from marts.respondents_wide")
    long = wide.melt(id_vars="response_id", value_vars=[c for c in wide.columns if c.endswith("_score")],
                     var_name="topic_id", value_name="topic_score").dropna()
    long["topic_id"] = long.topic_id.str.removesuffix("_score")
    expected = t[t.topic_score.notna()][["response_id", "topic_id", "topic_score"]]
    assert_frames_match(expected, long, ["response_id", "topic_id"], ["topic_score"])


def test_no_suppressed_row_exposes_a_number(built_warehouse):
    """Rows under min_reporting_n carry no number; benchmarks need 10 schools from 3 districts."""
    numbers = {
        "topic_results": ["respondents", "scored_respondents", "topic_mean", "percent_favorable",
                          "favorable_answers", "substantive_answers"],
        "item_results": ["respondents", "item_mean", "percent_favorable", "favorable_answers",
                         "substantive_answers"],
        "topic_trends": ["respondents", "topic_mean", "percent_favorable", "percent_favorable_change",
                         "topic_mean_change"],
        "reliability": ["complete_respondents", "cronbach_alpha"],
        "item_reliability": ["complete_respondents", "corrected_item_total_correlation", "alpha_if_item_deleted"],
    }
    for mart, columns in numbers.items():
        exposed = " or ".join(f"{c} is not null" for c in columns)
        bad = built_warehouse.query(f"select count(*) from marts.{mart} where is_suppressed and ({exposed})")[0][0]
        assert bad == 0, f"{mart}: {bad} suppressed rows expose a number"
        small = built_warehouse.query(
            f"select count(*) from marts.{mart} where not is_suppressed and {columns[0]} < {MIN_N}")[0][0]
        assert small == 0, f"{mart}: {small} rows from fewer than {MIN_N} respondents are not suppressed"
        assert built_warehouse.query(f"select count(*) from marts.{mart} where is_suppressed")[0][0] > 0 \
            or mart.endswith("reliability")
    # last year's side of a trend follows last year's suppression
    leaks = built_warehouse.query("""
        select count(*) from marts.topic_trends
        where previous_is_suppressed
          and (previous_respondents is not null or previous_topic_mean is not null
               or previous_percent_favorable is not null)""")[0][0]
    assert leaks == 0
    # benchmarks: only schools that meet min_reporting_n, and only from 10 schools in 3 districts
    rows = built_warehouse.query("""
        select count(*) from marts.benchmarks
        where (schools < 10 or districts < 3)
          and (is_published or p10_percent_favorable is not null or p25_percent_favorable is not null
               or p50_percent_favorable is not null or p75_percent_favorable is not null
               or p90_percent_favorable is not null)""")[0][0]
    assert rows == 0
    unpublished_numbers = built_warehouse.query("""
        select count(*) from marts.benchmarks
        where not is_published and p50_percent_favorable is not null""")[0][0]
    assert unpublished_numbers == 0
    contributing = built_warehouse.query("""
        select count(*) from marts.benchmarks as b
        where b.schools <> (
            select count(*) from marts.topic_results as r
            join marts.dim_schools as s on r.entity_id = s.school_id
            where r.reporting_level = 'school' and r.subgroup_category = 'all' and not r.is_suppressed
              and r.respondents >= 10
              and r.school_year = b.school_year and r.respondent_type = b.respondent_type
              and r.topic_id = b.topic_id and (b.school_level = 'all' or s.school_level = b.school_level))""")[0][0]
    assert contributing == 0


def test_every_answer_is_kept(built_warehouse, reference):
    """Unmapped, skipped and non-substantive answers stay in fct_question_responses."""
    expected = reference.answers.astype({"response_id": str, "question_id": str}).rename(columns={
        "canonical_item_id": "item", "is_substantive": "substantive", "scored_value": "scored",
        "is_favorable": "favorable"})
    actual = built_warehouse.df(
        "select response_id, question_id, canonical_item_id, is_substantive, scored_value, is_favorable "
        "from marts.fct_question_responses")
    merged = expected.merge(actual, on=["response_id", "question_id"], how="outer", indicator=True)
    assert (merged._merge == "both").all(), merged._merge.value_counts()
    assert (merged.substantive == merged.is_substantive).all()
    assert (merged.item.fillna("") == merged.canonical_item_id.fillna("")).all()
    sub = merged[merged.substantive]
    assert np.allclose(sub.scored.astype(float), sub.scored_value.astype(float))
    assert (sub.favorable == sub.is_favorable).all()
    assert merged[~merged.substantive].scored_value.isna().all()
    assert merged.canonical_item_id.isna().sum() > 0, "answers to unmapped questions are kept"


def test_a_profile_shared_by_two_sets_of_subgroups_fails_the_build(built_warehouse, tmp_path):
    """The results are aggregated once per subgroup_profile and then spread over its
    subgroups: two responses in different subgroups under one profile (a hash collision)
    would count each in the other's subgroups. The singular test stops such a build, for
    two students of different genders and for a student and a response only in `all`."""
    env = warehouse_env(tmp_path)
    shutil.copy(built_warehouse.db, env["DBT_DUCKDB_PATH"])
    table = "intermediate.int_respondent_subgroups_assigned"
    singular = (PROJECT_DIR / "tests/dbt/survey/assert_subgroup_profiles_name_one_set_of_subgroups.sql")
    # the test's own SQL, its one ref resolved by hand
    check = singular.read_text().replace("{{ ref('int_respondent_subgroups_assigned') }}", table)
    con = duckdb.connect(env["DBT_DUCKDB_PATH"])
    try:
        assert con.execute(check).fetchall() == []
        _, other_student, profile = con.execute(f"""
            select a.response_id, b.response_id, a.subgroup_profile
            from {table} as a
            inner join {table} as b
                on a.subgroup_category = 'gender' and b.subgroup_category = 'gender'
                and a.subgroup_value <> b.subgroup_value
            limit 1""").fetchone()
        only_all, its_profile = con.execute(f"""
            select response_id, any_value(subgroup_profile) from {table}
            group by response_id having count(*) = 1 limit 1""").fetchone()
        # a response only in `all` under the student's profile: the profile's student
        # categories miss one of its responses
        con.execute(f"update {table} set subgroup_profile = ? where response_id = ?", [profile, only_all])
        failing = con.execute(check).fetchall()
        assert failing and {row[0] for row in failing} == {profile}, failing
        assert all(row[3] < row[4] for row in failing), failing  # in the category < in the profile
        con.execute(f"update {table} set subgroup_profile = ? where response_id = ?", [its_profile, only_all])
        # two students of different genders under one profile: what dbt runs next
        con.execute(f"update {table} set subgroup_profile = ? where response_id = ?", [profile, other_student])
        failing = con.execute(check).fetchall()
        assert ("gender" in {row[1] for row in failing} and {row[2] for row in failing if row[1] == "gender"} == {2}), failing
    finally:
        con.close()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "test", "--select",
         "assert_subgroup_profiles_name_one_set_of_subgroups",
         "--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR, env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Failure in test assert_subgroup_profiles_name_one_set_of_subgroups" in proc.stdout, proc.stdout[-3000:]
