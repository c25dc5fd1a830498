"""Survey marts recomputed independently in pandas/numpy (issue 4).

Everything here starts from the staging tables (current state of the replica) and the
seed CSV files, and redoes the mapping, answer resolution, scoring, suppression and
statistics in Python, without reading any intermediate model or the marts' own derived
columns. Demographics come from dim_students (the core mart), joined on a student_key
computed here. Complementary suppression is redone by tests/disclosure.py's pandas
implementation of the rule (issue 11). The marts must agree to 1e-9, and suppress the
same rows for the same reasons.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest

from conftest import PROJECT_DIR
from disclosure import reference_suppression

TOL = 1e-9
MIN_N = 10
SEEDS = PROJECT_DIR / "seeds" / "survey"
SUBGROUP_COLUMNS = {
    "gender": "gender",
    "race_ethnicity": "race_ethnicity_federal",
    "grade_level": "grade_level",
    "english_learner": "english_learner",
    "iep": "iep",
    "econ_disadvantaged": "econ_disadvantaged",
}


def question_key(text: str) -> str:
    text = re.sub(r"[^\w\s]", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def label_key(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def student_key(student_id) -> str | None:
    if student_id is None or (isinstance(student_id, float) and np.isnan(student_id)):
        return None
    salt = os.environ.get("STUDENT_KEY_SALT") or "dev-only-insecure-salt"
    return hashlib.sha256((salt + student_id).encode()).hexdigest()


def seed(name: str) -> pd.DataFrame:
    return pd.read_csv(SEEDS / name, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------------------
# The independent pipeline


@pytest.fixture(scope="module")
def truth(built_warehouse):
    wh = built_warehouse
    items = seed("canonical_items.csv")
    items["scale_points"] = items.scale_points.astype(int)
    items["favorable_threshold"] = items.favorable_threshold.astype(int)
    items["reverse_coded"] = items.reverse_coded == "true"
    topics = seed("topics.csv")
    crosswalk = seed("question_crosswalk.csv")
    non_substantive = {label_key(x) for x in seed("non_substantive_options.csv").option_label}

    surveys = wh.df("select survey_id, district_id, respondent_type, school_year from staging.stg_replica__surveys")
    questions = wh.df(
        "select question_id, survey_id, question_text, cast(response_options as varchar) as options "
        "from staging.stg_replica__survey_questions"
    )
    responses = wh.df(
        "select response_id, survey_id, school_id, student_id, submitted_at is not null as complete "
        "from staging.stg_replica__survey_responses"
    )
    answers = wh.df("select response_id, question_id, answer_value from staging.stg_replica__question_responses")
    invitations = wh.df("select survey_id, school_id from staging.stg_replica__survey_invitations")
    students = wh.df("select * from marts.dim_students")
    schools = wh.df("select school_id, district_id, school_level from marts.dim_schools")

    # mapping: exact normalized text, else the district's crosswalk row
    exact = dict(zip(items.canonical_text.map(question_key), items.canonical_item_id))
    xwalk = {(r.district_id, r.survey_id, question_key(r.question_text)): r.canonical_item_id
             for r in crosswalk.itertuples()}
    questions = questions.merge(surveys, on="survey_id", how="left")

    def map_question(q):
        key = question_key(q.question_text)
        if key in exact:
            return exact[key]
        return xwalk.get((q.district_id, q.survey_id, key)) or xwalk.get((q.district_id, "", key))

    questions["item"] = [map_question(q) for q in questions.itertuples()]
    questions = questions.merge(items.rename(columns={"canonical_item_id": "item"}), on="item", how="left")

    # answers: resolve to the option's value, by value then by label
    options = {}
    for q in questions.itertuples():
        opts = json.loads(q.options) if isinstance(q.options, str) else None
        options[q.question_id] = opts or []
    qinfo = questions.set_index("question_id")

    rows = []
    for a in answers.itertuples():
        if a.question_id not in qinfo.index:
            continue
        q = qinfo.loc[a.question_id]
        opts = options[a.question_id]
        chosen = None
        if a.answer_value is not None:
            try:
                as_int = int(a.answer_value)
            except ValueError:
                as_int = None
            chosen = next((o for o in opts if as_int is not None and o["value"] == as_int), None)
            if chosen is None:
                chosen = next((o for o in opts if label_key(o["label"]) == label_key(a.answer_value)), None)
        substantive = (
            isinstance(q["item"], str) and chosen is not None
            and label_key(chosen["label"]) not in non_substantive
            and 1 <= chosen["value"] <= q.scale_points
        )
        scored = None
        if substantive:
            v = chosen["value"]
            scored = (1 + q.scale_points - v) if q.reverse_coded else v
        rows.append({
            "response_id": a.response_id, "question_id": a.question_id, "item": q["item"],
            "topic_id": q.topic_id, "substantive": substantive, "scored": scored,
            "favorable": substantive and scored >= q.favorable_threshold,
        })
    scored = pd.DataFrame(rows)

    responses = responses.merge(surveys, on="survey_id", how="inner")
    responses["student_key"] = responses.student_id.map(student_key)
    answers_ok = scored[scored.substantive].merge(responses, on="response_id", how="inner")

    # one row per response and item, then per response and topic
    per_item = answers_ok.groupby(
        ["response_id", "school_year", "respondent_type", "school_id", "district_id", "topic_id", "item"],
        as_index=False,
    ).agg(item_score=("scored", "mean"), substantive=("scored", "size"), favorable=("favorable", "sum"))
    topic_size = items.groupby("topic_id").size().rename("topic_items")
    per_topic = per_item.groupby(
        ["response_id", "school_year", "respondent_type", "school_id", "district_id", "topic_id"], as_index=False
    ).agg(items_answered=("item", "size"), mean_score=("item_score", "mean"),
          substantive=("substantive", "sum"), favorable=("favorable", "sum"))
    per_topic = per_topic.join(topic_size, on="topic_id")
    per_topic["topic_score"] = np.where(2 * per_topic.items_answered >= per_topic.topic_items,
                                        per_topic.mean_score, np.nan)

    # subgroups, long
    linked = responses[responses.student_key.notna()].merge(students, on="student_key", how="left")
    groups = [responses[["response_id"]].assign(subgroup_category="all", subgroup_value="all")]
    for category, column in SUBGROUP_COLUMNS.items():
        values = linked[column]
        if values.dtype == bool or column in ("english_learner", "iep", "econ_disadvantaged"):
            values = values.map({True: "true", False: "false"})
        groups.append(linked[["response_id"]].assign(subgroup_category=category,
                                                     subgroup_value=values.fillna("Unknown").values))
    subgroups = pd.concat(groups, ignore_index=True)

    return {
        "scored": scored, "responses": responses, "per_item": per_item, "per_topic": per_topic,
        "subgroups": subgroups, "invitations": invitations, "schools": schools, "items": items,
        "topics": topics, "questions": questions,
    }


def by_level(frame: pd.DataFrame, subgroups: pd.DataFrame) -> pd.DataFrame:
    """Each row once per reporting level (school, district) and subgroup it counts in."""
    frame = frame.merge(subgroups, on="response_id")
    return pd.concat([
        frame.assign(reporting_level="school", entity_id=frame.school_id),
        frame.assign(reporting_level="district", entity_id=frame.district_id),
    ], ignore_index=True)


TOPIC_KEYS = ["school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
              "subgroup_category", "subgroup_value"]
ITEM_KEYS = ["school_year", "respondent_type", "reporting_level", "entity_id", "item",
             "subgroup_category", "subgroup_value"]


@pytest.fixture(scope="module")
def expected_results(truth) -> dict[str, pd.DataFrame]:
    """topic_results and item_results recomputed, before and after suppression (primary,
    then complementary over both marts at once, as tests/disclosure.py defines it)."""
    t = by_level(truth["per_topic"], truth["subgroups"])
    topics = t.groupby(TOPIC_KEYS + ["district_id"], as_index=False).agg(
        respondents=("response_id", "size"), scored_respondents=("topic_score", "count"),
        topic_mean=("topic_score", "mean"), substantive_answers=("substantive", "sum"),
        favorable_answers=("favorable", "sum"),
    )
    t = by_level(truth["per_item"], truth["subgroups"])
    items = t.groupby(ITEM_KEYS + ["topic_id", "district_id"], as_index=False).agg(
        respondents=("response_id", "size"), item_mean=("item_score", "mean"),
        substantive_answers=("substantive", "sum"), favorable_answers=("favorable", "sum"),
    )
    for frame in (topics, items):
        frame["percent_favorable"] = 100.0 * frame.favorable_answers / frame.substantive_answers
    cells = pd.concat([topics.assign(kind="topic", item_id=""),
                       items.assign(kind="item", item_id=items.item)], ignore_index=True)
    cells["n"] = cells.respondents
    decided = reference_suppression(cells, MIN_N)
    flags = ["is_suppressed", "suppression_reason"]
    topics = topics.merge(decided[decided.kind == "topic"][TOPIC_KEYS + flags], on=TOPIC_KEYS)
    items = items.merge(decided[decided.kind == "item"][ITEM_KEYS + flags], on=ITEM_KEYS)
    return {"topic_results": topics, "item_results": items}


def assert_frames_match(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str], columns: list[str]):
    merged = expected.merge(actual, on=keys, how="outer", suffixes=("_expected", "_actual"), indicator=True)
    missing = merged[merged._merge != "both"]
    assert missing.empty, f"rows only on one side:\n{missing[keys + ['_merge']].head(20)}"
    for column in columns:
        e = merged[f"{column}_expected"].astype(float).to_numpy()
        a = merged[f"{column}_actual"].astype(float).to_numpy()
        both_null = np.isnan(e) & np.isnan(a)
        close = np.isclose(e, a, rtol=0, atol=TOL)
        bad = ~(both_null | close)
        assert not bad.any(), f"{column} differs:\n{merged.loc[bad, keys + [column + '_expected', column + '_actual']].head(20)}"


def suppress(frame: pd.DataFrame, numbers: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in numbers:
        frame[column] = frame[column].where(~frame.is_suppressed)
    return frame


def assert_same_suppression(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str]):
    merged = expected.merge(actual, on=keys, suffixes=("_expected", "_actual"))
    assert len(merged) == len(expected) == len(actual)
    for column in ("suppression_reason", "district_id"):
        bad = merged[f"{column}_expected"].fillna("") != merged[f"{column}_actual"].fillna("")
        assert not bad.any(), f"{column} differs:\n{merged.loc[bad, keys + [column + '_expected', column + '_actual']].head(20)}"


# --------------------------------------------------------------------------------------
# Tests


def test_topic_results_match_recomputation(built_warehouse, expected_results):
    numbers = ["respondents", "scored_respondents", "topic_mean", "percent_favorable",
               "substantive_answers", "favorable_answers"]
    expected = suppress(expected_results["topic_results"], numbers)
    actual = built_warehouse.df("select * from marts.topic_results")
    assert len(expected) > 100 and (~expected.is_suppressed).sum() > 50
    assert (expected.suppression_reason == "primary").sum() < expected.is_suppressed.sum(), \
        "the sample should need complementary suppression"
    assert_frames_match(expected, actual, TOPIC_KEYS, numbers + ["is_suppressed"])
    assert_same_suppression(expected, actual, TOPIC_KEYS)


def test_item_results_match_recomputation(built_warehouse, expected_results):
    numbers = ["respondents", "item_mean", "percent_favorable", "substantive_answers", "favorable_answers"]
    expected = suppress(expected_results["item_results"], numbers)
    actual = built_warehouse.df("select * from marts.item_results").rename(columns={"canonical_item_id": "item"})
    assert (~expected.is_suppressed).sum() > 100
    assert_frames_match(expected, actual, ITEM_KEYS, numbers + ["is_suppressed"])
    assert_same_suppression(expected, actual, ITEM_KEYS)


def test_participation_matches_recomputation(built_warehouse, truth):
    responses = truth["responses"]
    invited = truth["invitations"].groupby(["survey_id", "school_id"]).size().rename("invited")
    responded = responses.groupby(["survey_id", "school_id"]).agg(
        responded=("response_id", "size"), completed=("complete", "sum"))
    expected = pd.concat([invited, responded], axis=1).fillna(0).reset_index()
    expected["response_rate"] = np.where(expected.invited > 0, expected.responded / expected.invited.where(expected.invited > 0), np.nan)
    expected["completion_rate"] = np.where(expected.invited > 0, expected.completed / expected.invited.where(expected.invited > 0), np.nan)
    actual = built_warehouse.df("select * from marts.participation")
    assert_frames_match(expected, actual, ["survey_id", "school_id"],
                        ["invited", "responded", "completed", "response_rate", "completion_rate"])


def school_percent_favorable(truth, expected_results) -> pd.DataFrame:
    """Published school results (subgroup all): only those contribute to benchmarks."""
    t = expected_results["topic_results"]
    schools = t[(t.reporting_level == "school") & (t.subgroup_category == "all") & ~t.is_suppressed]
    schools = schools.rename(columns={"entity_id": "school_id", "percent_favorable": "pct"})
    return schools[["school_year", "respondent_type", "topic_id", "school_id", "pct"]].merge(
        truth["schools"], on="school_id")


def test_benchmark_percentiles_match_recomputation(built_warehouse, truth, expected_results):
    schools = school_percent_favorable(truth, expected_results)
    schools = pd.concat([schools, schools.assign(school_level="all")], ignore_index=True)
    rows = []
    for key, g in schools.groupby(["school_year", "respondent_type", "topic_id", "school_level"]):
        published = g.school_id.nunique() >= 10 and g.district_id.nunique() >= 3
        p = np.percentile(g.pct.to_numpy(), [10, 25, 50, 75, 90]) if published else [np.nan] * 5
        rows.append(dict(zip(["school_year", "respondent_type", "topic_id", "school_level"], key),
                         schools=g.school_id.nunique(), districts=g.district_id.nunique(),
                         is_published=published, **{f"p{q}_percent_favorable": v for q, v in zip((10, 25, 50, 75, 90), p)}))
    expected = pd.DataFrame(rows)
    actual = built_warehouse.df("select * from marts.benchmarks")
    assert expected.is_published.sum() >= 5, "the sample should publish some benchmarks"
    assert_frames_match(expected, actual, ["school_year", "respondent_type", "topic_id", "school_level"],
                        ["schools", "districts", "is_published"]
                        + [f"p{q}_percent_favorable" for q in (10, 25, 50, 75, 90)])


def listwise_matrices(truth):
    """Per (school year, respondent type, topic): respondents × items, complete rows only."""
    items = truth["items"]
    topic_items = items.groupby("topic_id").canonical_item_id.apply(sorted).to_dict()
    for key, g in truth["per_item"].groupby(["school_year", "respondent_type", "topic_id"]):
        wide = g.pivot(index="response_id", columns="item", values="item_score")
        wide = wide.reindex(columns=topic_items[key[2]]).dropna()
        yield key, wide


def alpha(wide: pd.DataFrame) -> float:
    k = wide.shape[1]
    return k / (k - 1) * (1 - wide.var(ddof=1).sum() / wide.sum(axis=1).var(ddof=1))


def test_reliability_matches_recomputation_and_pingouin(built_warehouse, truth):
    actual = built_warehouse.df("select * from marts.reliability").set_index(
        ["school_year", "respondent_type", "topic_id"])
    checked = 0
    for key, wide in listwise_matrices(truth):
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


def test_item_reliability_matches_recomputation(built_warehouse, truth):
    actual = built_warehouse.df("select * from marts.item_reliability").set_index(
        ["school_year", "respondent_type", "topic_id", "canonical_item_id"])
    checked = 0
    for key, wide in listwise_matrices(truth):
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


def test_respondent_topic_scores_match_recomputation(built_warehouse, truth):
    t = truth["per_topic"]
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


def test_every_answer_is_kept(built_warehouse, truth):
    """Unmapped, skipped and non-substantive answers stay in fct_question_responses."""
    expected = truth["scored"].merge(truth["responses"][["response_id"]], on="response_id")
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
