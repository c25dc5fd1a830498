"""Normalized demographics against the generator's truth (<extracts>/_truth/students.csv).

The generator knows each student's true standardized demographics; the warehouse only
sees each district's codes. After the crosswalks, the published dim_students must give
the same distribution per field, and the same value per student wherever the truth is
known. Codes nobody could map and nulls are Unknown / null on both sides.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import pandas as pd
import pytest

from orchestrate import sample_design as sd

DEV_SALT = "dev-only-insecure-salt"
# An unknown value is "Unknown" in text fields; in flags it is empty in the truth file and
# null in the warehouse, both compared as "null".
UNKNOWN_TEXT = "Unknown"
TEXT_FIELDS = ("grade_level", "gender", "race_ethnicity_federal", "race_ethnicity_2024")
FLAG_FIELDS = ("hispanic_latino", "english_learner", "iep", "section_504", "econ_disadvantaged")


def expected_student_key(student_id: str) -> str:
    """student_key as the marts contract defines it: sha256 hex of salt || platform id."""
    salt = os.environ.get("STUDENT_KEY_SALT") or DEV_SALT
    return hashlib.sha256((salt + student_id).encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def truth(built_warehouse) -> pd.DataFrame:
    df = pd.read_csv(built_warehouse.extracts / "_truth" / "students.csv", dtype=str, keep_default_na=False)
    df["student_key"] = df["student_id"].map(expected_student_key)
    for field in FLAG_FIELDS:
        df[field] = df[field].map({"true": "true", "false": "false", "": "null"})
    return df.set_index("student_key")


@pytest.fixture(scope="module")
def published(built_warehouse) -> pd.DataFrame:
    flags = ", ".join(f"coalesce(cast({f} as varchar), 'null') as {f}" for f in FLAG_FIELDS)
    df = built_warehouse.df(
        f"select student_key, district_id, {', '.join(TEXT_FIELDS)}, {flags} from marts.dim_students"
    )
    return df.set_index("student_key")


def test_every_student_is_published_under_its_key(truth, published):
    assert published.index.is_unique
    assert set(published.index) == set(truth.index), (
        "dim_students' student keys are not sha256(STUDENT_KEY_SALT || student_id) of the roster's students"
    )
    joined = truth[["district_id"]].join(published[["district_id"]], rsuffix="_published")
    assert (joined["district_id"] == joined["district_id_published"]).all()


@pytest.mark.parametrize("field", TEXT_FIELDS + FLAG_FIELDS)
def test_distribution_matches_truth(truth, published, field):
    expected = Counter(truth[field])
    actual = Counter(published[field])
    assert actual == expected, f"{field}: counts per normalized value differ (warehouse vs truth)"


@pytest.mark.parametrize("field", TEXT_FIELDS + FLAG_FIELDS)
def test_each_known_value_matches_truth(truth, published, field):
    joined = truth[[field, "district_id"]].join(published[[field]], rsuffix="_published")
    unknown = UNKNOWN_TEXT if field in TEXT_FIELDS else "null"
    known = joined[joined[field] != unknown]
    wrong = known[known[field] != known[f"{field}_published"]]
    assert wrong.empty, (
        f"{field}: {len(wrong)} of {len(known)} students with a known true value are normalized "
        f"differently, e.g.\n{wrong.head(10).to_string()}"
    )


def test_race_sets_match_truth(built_warehouse, truth):
    """Each student's set of mapped races (before any roll-up) is the true set."""
    rows = built_warehouse.query(
        "select student_id, standard_value from intermediate.int_student_demographic_codes_mapped "
        "where field = 'race' and standard_value is not null"
    )
    actual: dict[str, set[str]] = {}
    for student_id, race in rows:
        actual.setdefault(student_id, set()).add(race)
    expected = {
        student_id: {sd.RACE_LABELS[r] for r in races.split(";")}
        for student_id, races in zip(truth["student_id"], truth["races"])
        if races
    }
    wrong = {s: (expected.get(s), actual.get(s)) for s in set(expected) | set(actual)
             if expected.get(s) != actual.get(s)}
    assert not wrong, f"{len(wrong)} students' race sets differ (truth, warehouse): {list(wrong.items())[:10]}"
