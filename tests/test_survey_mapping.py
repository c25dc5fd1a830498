"""Question mapping against the generator's truth, the crosswalk review loop, refusals (issue 4)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import PROJECT_DIR, run_cli, warehouse_env

CROSSWALK = Path("seeds/survey/question_crosswalk.csv")
CROSSWALK_HEADER = "district_id,survey_id,question_text,canonical_item_id,reviewed_by,reviewed_on\n"


def text_key(text: str) -> str:
    text = re.sub(r"[^\w\s]", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def truth_questions(extracts: Path) -> pd.DataFrame:
    return pd.read_csv(extracts / "_truth" / "questions.csv", dtype=str, keep_default_na=False)


def project_copy(folder: Path) -> Path:
    """The dbt project (not the Python, not the data) copied, so a test can edit its seeds."""
    project = folder / "project"
    project.mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(PROJECT_DIR / name, project / name)
    for name in ("models", "macros", "seeds", "snapshots", "analyses", "tests/dbt"):
        if (PROJECT_DIR / name).exists():
            shutil.copytree(PROJECT_DIR / name, project / name)
    return project


def warehouse_copy(source_db: Path, folder: Path) -> dict[str, str]:
    env = warehouse_env(folder)
    shutil.copy2(source_db, env["DBT_DUCKDB_PATH"])
    return env


def dbt(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project, env={**os.environ, **env}, capture_output=True, text=True,
    )


def query(db: str, sql: str) -> pd.DataFrame:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def empty_crosswalk(built_warehouse, tmp_path_factory):
    """The built sample warehouse, rebuilt from a project whose crosswalk seed is empty
    (a temporary copy; the committed seed is untouched)."""
    folder = tmp_path_factory.mktemp("empty_crosswalk")
    project = project_copy(folder)
    (project / CROSSWALK).write_text(CROSSWALK_HEADER, encoding="utf-8")
    env = warehouse_copy(built_warehouse.db, folder)
    proc = dbt(project, env, "build", "--select", "question_crosswalk+")
    assert proc.returncode == 0, proc.stdout[-5000:]
    return env, folder


def test_wording_variants_are_mapped_and_client_only_questions_are_not(built_warehouse):
    truth = truth_questions(built_warehouse.extracts)
    questions = built_warehouse.df("select question_id, canonical_item_id, mapping_method from marts.dim_questions")
    merged = truth.merge(questions, on="question_id", how="outer", indicator=True)
    assert (merged._merge == "both").all(), "every generated question is in dim_questions"

    variants = merged[merged.variant_kind != "client_only"]
    assert len(variants) > 500
    wrong = variants[variants.canonical_item_id_y.fillna("") != variants.canonical_item_id_x]
    assert wrong.empty, f"mapped to the wrong item or unmapped:\n{wrong.head(20)}"
    expected_method = {"exact": "exact", "normalized": "exact", "rephrased": "crosswalk", "reordered": "crosswalk"}
    assert (variants.mapping_method == variants.variant_kind.map(expected_method)).all()

    client_only = merged[merged.variant_kind == "client_only"]
    assert len(client_only) > 50
    assert client_only.canonical_item_id_y.isna().all()
    assert (client_only.mapping_method == "unmapped").all()


def test_unmapped_questions_are_reported_by_the_warning_test(built_warehouse):
    """cfg_unmapped_questions (warn, store_failures) lists exactly the client-only questions."""
    truth = truth_questions(built_warehouse.extracts)
    reported = built_warehouse.df("select question_id from dbt_test__audit.cfg_unmapped_questions")
    assert set(reported.question_id) == set(truth[truth.variant_kind == "client_only"].question_id)


def test_answers_to_unmapped_questions_are_kept(built_warehouse):
    counts = built_warehouse.query("""
        select count(*) from marts.fct_question_responses as f
        join marts.dim_questions as q using (question_id)
        where q.mapping_method = 'unmapped' and f.canonical_item_id is null and not f.is_substantive""")[0][0]
    assert counts > 500


def test_a_crosswalk_edit_reaches_answers_already_built(built_warehouse, empty_crosswalk):
    env, _ = empty_crosswalk
    db = env["DBT_DUCKDB_PATH"]
    methods = query(db, "select mapping_method, count(*) as n from marts.dim_questions group by 1")
    assert "crosswalk" not in set(methods.mapping_method)
    stale = query(db, """
        select count(*) as n from marts.fct_question_responses as f
        join marts.dim_questions as q using (question_id)
        where f.canonical_item_id is distinct from q.canonical_item_id
           or (q.canonical_item_id is null and f.is_substantive)""")
    assert stale.n[0] == 0
    before = built_warehouse.query("select count(*) from marts.fct_question_responses")[0][0]
    after = query(db, "select count(*) as n from marts.fct_question_responses").n[0]
    assert before == after, "unmapping a question drops none of its answers"


def test_suggest_mappings_ranks_the_right_item_first(built_warehouse, empty_crosswalk):
    env, folder = empty_crosswalk
    out = folder / "mapping_suggestions.csv"
    run_cli("suggest-mappings", "--out", str(out), env=env, check=True)
    suggestions = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(suggestions.columns[:6]) == CROSSWALK_HEADER.strip().split(","), \
        "the review file starts with the crosswalk's columns"
    assert (suggestions.canonical_item_id == "").all(), "nothing is accepted automatically"
    assert (PROJECT_DIR / CROSSWALK).read_text() != CROSSWALK_HEADER, "the committed seed is untouched"

    truth = truth_questions(built_warehouse.extracts)
    questions = built_warehouse.df("select question_id, question_text, respondent_type from marts.dim_questions")
    truth = truth.merge(questions, on="question_id")
    truth["key"] = truth.question_text.map(text_key)
    suggestions["key"] = suggestions.question_text.map(text_key)
    merged = truth.merge(suggestions.drop(columns=["canonical_item_id", "survey_id", "question_text"]),
                         on=["district_id", "respondent_type", "key"], how="left", indicator=True)

    unmapped = merged[merged.variant_kind.isin(["rephrased", "reordered", "client_only"])]
    assert (unmapped._merge == "both").all(), "every unmapped question is in the review file"
    mapped = merged[merged.variant_kind.isin(["exact", "normalized"])]
    assert (mapped._merge == "left_only").all(), "exactly matched questions are not"

    variants = merged[merged.variant_kind.isin(["rephrased", "reordered"])]
    right_first = (variants.suggestion_1_item == variants.canonical_item_id).mean()
    assert right_first >= 0.9, f"right item first for only {right_first:.1%} of the wording variants"
    in_top_three = (
        (variants.suggestion_1_item == variants.canonical_item_id)
        | (variants.suggestion_2_item == variants.canonical_item_id)
        | (variants.suggestion_3_item == variants.canonical_item_id)
    ).mean()
    assert in_top_three >= right_first
    scores = pd.to_numeric(variants.suggestion_1_similarity)
    assert scores.between(0, 100).all()


def test_mapping_onto_an_item_with_another_scale_is_refused(built_warehouse, tmp_path):
    """A crosswalk row putting a 6-option client question on a 5-point item fails the build."""
    project = project_copy(tmp_path)
    with (project / CROSSWALK).open("a", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerow(
            ["d01", "", "How do you usually get to school?", "bel_01", "test", "2024-01-01"])
    env = warehouse_copy(built_warehouse.db, tmp_path)
    proc = dbt(project, env, "build", "--select", "question_crosswalk+")
    assert proc.returncode != 0
    assert re.search(r"FAIL \d+ assert_mapped_questions_match_item_scale", proc.stdout), proc.stdout[-3000:]
    assert re.search(r"SKIP relation marts\.fct_question_responses", proc.stdout), \
        "nothing is scored from the refused mapping"
