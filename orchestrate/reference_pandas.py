"""The results marts as a careful researcher would compute them in pandas, without the
warehouse: the yardstick `bench` times the project against (issue 16), and the
independent recomputation tests/test_survey_stats.py checks the marts with.

`python -m orchestrate.reference_pandas --extracts DIR --out DIR` reads the extracts and
writes the six results marts the warehouse publishes for readers (docs/contracts/marts-v1.md,
"Survey results"): topic_results, item_results, topic_trends, participation, benchmarks
and reliability, one parquet file each, and timing.json (seconds, CPU seconds, peak
memory). `--check` then compares them with the marts of the warehouse DBT_DUCKDB_PATH
points at (numbers to 1e-9, the same rows, the same suppressed cells and reasons).

One pass, single-threaded, vectorized, no database:

1. read every extract file (gzip NDJSON, `json` line by line: a column of the contract
   may hold a number on one line and a string on the next, which pandas' and pyarrow's
   typed readers refuse), keeping the columns the marts need; answers are turned into
   integer codes chunk by chunk (a response, a question, a distinct answer text), so
   memory follows the answers, not their text;
2. current state per key: the change with the highest `_seq`, deletes dropped;
3. map questions onto canonical items (exact normalized wording, then
   seeds/survey/question_crosswalk.csv, a row for the survey before a district-wide row);
4. resolve answers (by value, else by label), non-substantive options and labels,
   reverse coding, favorable;
5. demographics onto the standard codes (seeds/demographics: a district override, then
   the field's global row, then the global yes/no row; race split and rolled up);
6. aggregate per response and item, response and topic, then per school and district
   and subgroup (sums, counts: a district is the sum of its schools and of its answers
   without a school);
7. primary and complementary suppression (orchestrate.disclosure.suppress_cells, the
   project's rule written again in numpy), trends, participation, benchmarks, alpha.

It follows the models' definitions (docs/contracts/marts-v1.md) but shares no code with
them. What it does not do: validate lines (it expects clean extracts; the ingester
quarantines what is not) or resolve a `_seq` delivered twice (the ingester keeps the
first loaded). `try_cast(... as integer)` of an answer is emulated for decimal text
('4', '4.0', '4.5' rounds half away from zero), not for DuckDB's hex or '1_000' forms.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from orchestrate import contract
from orchestrate.disclosure import suppress_cells
from orchestrate.warehouse import PROJECT_DIR

SEEDS = PROJECT_DIR / "seeds"
READ_CHUNK = 400_000  # lines parsed into Python objects at a time
TOLERANCE = 1e-9
SUBGROUP_CATEGORIES = ("gender", "race_ethnicity", "grade_level", "english_learner", "iep",
                       "econ_disadvantaged")
FLAG_FIELDS = ("hispanic_latino", "english_learner", "iep", "section_504")
SCALAR_FIELDS = ("grade_level", "gender", *FLAG_FIELDS, "lunch_status")
MENA = "Middle Eastern or North African"

TOPIC_KEYS = ["school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
              "subgroup_category", "subgroup_value"]
ITEM_KEYS = ["school_year", "respondent_type", "reporting_level", "entity_id", "canonical_item_id",
             "subgroup_category", "subgroup_value"]
MART_KEYS = {
    "topic_results": TOPIC_KEYS,
    "item_results": ITEM_KEYS,
    "topic_trends": ["school_year", "respondent_type", "reporting_level", "entity_id", "topic_id"],
    "participation": ["survey_id", "school_id"],
    "benchmarks": ["school_year", "respondent_type", "topic_id", "school_level"],
    "reliability": ["school_year", "respondent_type", "topic_id"],
}
MARTS = tuple(MART_KEYS)


def _say(line: str) -> None:
    print(f"[reference] {line}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Text as the models compare it


def question_key(text: pd.Series) -> pd.Series:
    """macro normalize_question_text: lowercase, punctuation out, whitespace collapsed."""
    text = text.str.lower().str.replace(r"[^\w\s]", "", regex=True)
    return text.str.replace(r"\s+", " ", regex=True).str.strip(" ")


def label_key(text: pd.Series) -> pd.Series:
    """macro normalize_option_label: lowercase, whitespace collapsed, punctuation kept."""
    return text.str.lower().str.replace(r"\s+", " ", regex=True).str.strip(" ")


def code_key(text: pd.Series) -> pd.Series:
    """macro code_match_key: lowercase, every whitespace character removed."""
    return text.str.replace(r"\s+", "", regex=True).str.lower()


def staged(text: pd.Series) -> pd.Series:
    """nullif(trim(x), ''): SQL trim removes spaces only."""
    text = text.str.strip(" ")
    return text.where(text != "")


def as_text(value):
    """A JSON scalar as the raw VARCHAR column holds it: strings as they are, other
    values as JSON text (4 -> '4', true -> 'true'); null stays null."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:  # NaN: a key the line did not have
        return None
    return json.dumps(value)


def as_integer(text: pd.Series) -> pd.Series:
    """try_cast(text as integer) for decimal text: rounded half away from zero; null
    when not a number or out of the integer range."""
    number = pd.to_numeric(text, errors="coerce").astype(float)
    rounded = np.sign(number) * np.floor(np.abs(number) + 0.5)
    return pd.Series(rounded, index=text.index).where(np.abs(rounded) < 2**31).astype("Int64")


# --------------------------------------------------------------------------------------
# 1-2. The extracts, in current state


def extract_paths(extracts: Path, table: str) -> list[Path]:
    folder = extracts / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if contract.FILE_NAME.match(p.name))


def read_changes(extracts: Path, table: str, columns: list[str],
                 chunk: int = READ_CHUNK) -> Iterator[pd.DataFrame]:
    """Every change line of the table's files, `_op`, `_seq` and `columns`, in frames of
    at most `chunk` lines."""
    loads, rows = json.loads, []
    names = ["_op", "_seq", *columns]
    for path in extract_paths(extracts, table):
        with gzip.open(path, "rb") as lines:
            for line in lines:
                if line.strip():
                    rows.append(loads(line))
                if len(rows) >= chunk:
                    yield pd.DataFrame.from_records(rows, columns=names)
                    rows = []
    if rows:
        yield pd.DataFrame.from_records(rows, columns=names)


def current_state(changes: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Per key, the change with the highest `_seq`; keys whose last change is a delete out."""
    latest = changes.sort_values("_seq", kind="stable").drop_duplicates(key, keep="last")
    return latest[latest._op != "d"].drop(columns=["_op", "_seq"]).reset_index(drop=True)


def read_table(extracts: Path, table: str, columns: list[str]) -> pd.DataFrame:
    """A small table in current state, `columns` only."""
    frames = list(read_changes(extracts, table, columns))
    changes = (pd.concat(frames, ignore_index=True) if frames
               else pd.DataFrame(columns=["_op", "_seq", *columns]))
    return current_state(changes, list(contract.TABLES[table].primary_key))


@dataclass
class Answers:
    """Current answers as integer codes: response (row of responses), question (row of
    questions), value (position in `values`, -1 null)."""

    response: np.ndarray
    question: np.ndarray
    value: np.ndarray
    values: list[str]
    lines: int


def read_answers(extracts: Path, responses: pd.Index, questions: pd.Index) -> Answers:
    """question_responses in current state, coded chunk by chunk. Changes to answers of
    responses or questions that do not exist (now) are dropped as they are read: an
    answer's key decides whether it counts, whatever its later changes say."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("response", "question", "value", "seq", "deleted")}
    vocabulary: dict[str, int] = {}
    lines = 0
    for frame in read_changes(extracts, "question_responses", ["response_id", "question_id", "value"]):
        lines += len(frame)
        response = responses.get_indexer(frame.response_id)
        question = questions.get_indexer(frame.question_id)
        keep = (response >= 0) & (question >= 0)
        codes, uniques = pd.factorize(frame.value[keep])
        texts = [as_text(u) for u in uniques]
        texts = [t.strip(" ") if t is not None else None for t in texts]
        mapped = np.array([vocabulary.setdefault(t, len(vocabulary)) if t else -1 for t in texts] + [-1])
        parts["response"].append(response[keep].astype(np.int32))
        parts["question"].append(question[keep].astype(np.int32))
        parts["value"].append(mapped[codes].astype(np.int32))  # codes -1 (null) -> the last: -1
        parts["seq"].append(frame._seq.to_numpy()[keep].astype(np.int64))
        parts["deleted"].append(frame._op.to_numpy()[keep] == "d")
    joined = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
    key = joined["response"].astype(np.int64) * max(len(questions), 1) + joined["question"]
    order = np.lexsort((joined["seq"], key))
    key = key[order]
    last = np.r_[key[1:] != key[:-1], True] if len(key) else np.zeros(0, bool)
    chosen = order[last]
    chosen = chosen[~joined["deleted"][chosen]]
    return Answers(joined["response"][chosen], joined["question"][chosen], joined["value"][chosen],
                   list(vocabulary), lines)


@dataclass
class Replica:
    """The replica in current state, staged as the staging models stage it."""

    districts: pd.DataFrame
    schools: pd.DataFrame
    students: pd.DataFrame
    surveys: pd.DataFrame
    questions: pd.DataFrame
    invitations: pd.DataFrame
    responses: pd.DataFrame
    answers: Answers
    lines: int = 0


def load(extracts: Path, progress: Callable[[str], None] = _say) -> Replica:
    started = time.perf_counter()

    def table(name: str, columns: list[str]) -> pd.DataFrame:
        frame = read_table(extracts, name, columns)
        progress(f"read {name}: {len(frame):,} current rows ({time.perf_counter() - started:.1f} s)")
        return frame

    districts = table("districts", ["district_id"])
    schools = table("schools", ["school_id", "district_id", "grades_served"])
    schools["grades_served"] = staged(schools.grades_served.str.replace(" ", "").str.upper())
    fields = {f: f for f in SCALAR_FIELDS} | {"race": "race"}
    students = table("students", ["student_id", "district_id", "school_id", *fields])
    for name in fields:
        students[name] = staged(students[name].map(as_text).astype(object))
    surveys = table("surveys", ["survey_id", "district_id", "respondent_type", "school_year"])
    surveys["respondent_type"] = surveys.respondent_type.str.strip(" ").str.lower()
    surveys["school_year"] = surveys.school_year.str.strip(" ")
    questions = table("survey_questions", ["question_id", "survey_id", "question_text", "response_options"])
    questions["question_text"] = questions.question_text.str.strip(" ")
    invitations = table("survey_invitations", ["invitation_id", "survey_id", "school_id"])
    responses = table("survey_responses", ["response_id", "survey_id", "school_id", "student_id", "submitted_at"])
    responses["is_complete"] = responses.submitted_at.notna()
    answers = read_answers(extracts, pd.Index(responses.response_id), pd.Index(questions.question_id))
    progress(f"read question_responses: {answers.lines:,} lines, {len(answers.response):,} current "
             f"answers ({time.perf_counter() - started:.1f} s)")
    lines = answers.lines  # the other tables' lines are not counted: they are few
    return Replica(districts, schools, students, surveys, questions, invitations, responses, answers, lines)


# --------------------------------------------------------------------------------------
# Seeds


@dataclass
class Seeds:
    items: pd.DataFrame
    crosswalk: pd.DataFrame
    non_substantive: pd.DataFrame
    codes: pd.DataFrame
    overrides: pd.DataFrame
    settings: dict = field(default_factory=dict)


def read_seeds(seeds: Path = SEEDS) -> Seeds:
    def csv(name: str) -> pd.DataFrame:  # dbt seeds load empty cells as null
        frame = pd.read_csv(seeds / name, dtype=str, keep_default_na=False)
        return frame.where(frame != "")

    items = csv("survey/canonical_items.csv")
    items["scale_points"] = items.scale_points.astype(int)
    items["favorable_threshold"] = items.favorable_threshold.astype(int)
    items["reverse_coded"] = items.reverse_coded.str.lower() == "true"
    from orchestrate.psychometrics import project_vars

    settings = project_vars()
    return Seeds(items, csv("survey/question_crosswalk.csv"), csv("survey/non_substantive_options.csv"),
                 csv("demographics/xwalk_demographic_codes.csv"),
                 csv("demographics/xwalk_district_demographic_overrides.csv"),
                 {"min_n": int(settings.get("min_reporting_n", 10)),
                  "benchmark_min_schools": int(settings.get("benchmark_min_schools", 10)),
                  "benchmark_min_districts": int(settings.get("benchmark_min_districts", 3))})


# --------------------------------------------------------------------------------------
# 3-4. Questions mapped, answers scored


def map_questions(replica: Replica, seeds: Seeds) -> pd.DataFrame:
    """questions with district, canonical item (null: unmapped), topic and scale."""
    q = replica.questions.merge(replica.surveys[["survey_id", "district_id"]], on="survey_id", how="left")
    q["text_key"] = question_key(q.question_text)
    items = seeds.items.assign(text_key=question_key(seeds.items.canonical_text))
    exact = items.drop_duplicates("text_key").set_index("text_key").canonical_item_id
    xwalk = seeds.crosswalk.assign(text_key=question_key(seeds.crosswalk.question_text),
                                   survey_id=staged(seeds.crosswalk.survey_id))
    for_survey = xwalk[xwalk.survey_id.notna()].drop_duplicates(["district_id", "survey_id", "text_key"])
    for_district = xwalk[xwalk.survey_id.isna()].drop_duplicates(["district_id", "text_key"])
    by_survey = q[["district_id", "survey_id", "text_key"]].merge(
        for_survey, on=["district_id", "survey_id", "text_key"], how="left").canonical_item_id
    by_district = q[["district_id", "text_key"]].merge(
        for_district[["district_id", "text_key", "canonical_item_id"]], on=["district_id", "text_key"],
        how="left").canonical_item_id
    crosswalked = by_survey.where(by_survey.notna(), by_district).where(q.district_id.notna())
    q["canonical_item_id"] = q.text_key.map(exact).fillna(crosswalked).where(
        lambda s: s.notna(), None)
    q["is_open_ended"] = q.response_options.isna()
    return q.merge(items.drop(columns=["text_key", "canonical_text"]), on="canonical_item_id", how="left")


def question_options(questions: pd.DataFrame, seeds: Seeds) -> pd.DataFrame:
    """One row per option: question (row of `questions`), position, value, label key and
    the reason the label is not substantive (null: substantive)."""
    listed = questions.response_options.map(lambda o: o if isinstance(o, list) else [])
    sizes = listed.map(len).to_numpy()
    flat = [o for options in listed for o in options]
    options = pd.DataFrame({
        "question": np.repeat(np.arange(len(questions)), sizes),
        "position": np.concatenate([np.arange(1, n + 1) for n in sizes]) if len(sizes) else [],
        "value": as_integer(pd.Series([as_text(o.get("value")) if isinstance(o, dict) else None for o in flat],
                                      dtype=object)),
        "label": pd.Series([o.get("label") if isinstance(o, dict) else None for o in flat], dtype=object),
    })
    options["label_key"] = label_key(options.label)
    reasons = seeds.non_substantive.assign(label_key=label_key(seeds.non_substantive.option_label))
    reasons = reasons.groupby("label_key").reason.min()
    options["reason"] = options.label_key.map(reasons)
    return options


def score_answers(replica: Replica, questions: pd.DataFrame, options: pd.DataFrame,
                  seeds: Seeds) -> tuple[pd.DataFrame, np.ndarray]:
    """The scoring of each distinct (question, answer text) among the current answers:
    the option it resolves to (by value, else by label), why it is not substantive (null:
    substantive), the scored value and whether it is favorable; and, per answer, its row
    in that table."""
    answers = replica.answers
    texts = pd.Series(answers.values, dtype=object)
    radix = len(texts) + 1
    answer_pair, pair_keys = pd.factorize(answers.question.astype(np.int64) * radix + (answers.value + 1))
    text = pair_keys % radix - 1  # -1: null
    pairs = pd.DataFrame({"question": pair_keys // radix})
    has_value = text >= 0
    pairs["as_int"] = as_integer(texts).reindex(text).to_numpy()
    pairs["label_key"] = label_key(texts).reindex(text).to_numpy()

    by_value = (options[options.value.notna()].sort_values("position", kind="stable")
                .drop_duplicates(["question", "value"]))
    by_label = (options[options.label_key.notna()].sort_values("position", kind="stable")
                .drop_duplicates(["question", "label_key"]))
    found_by_value = pairs.merge(by_value[["question", "value"]], left_on=["question", "as_int"],
                                 right_on=["question", "value"], how="left").value
    found_by_label = pairs.merge(by_label[["question", "label_key", "value"]], on=["question", "label_key"],
                                 how="left").value
    option = found_by_value.fillna(found_by_label).astype("Int64")
    option_reason = pairs.assign(value=option).merge(
        by_value[["question", "value", "reason"]], on=["question", "value"], how="left").reason

    q = questions.iloc[pairs.question.to_numpy()].reset_index(drop=True)
    no_option = option.isna().to_numpy()
    off_scale = ((option < 1) | (option > q.scale_points)).fillna(False).to_numpy(dtype=bool)
    non_substantive_labels = set(label_key(seeds.non_substantive.option_label))
    reason = np.select(
        [~has_value, q.is_open_ended.to_numpy(dtype=bool), q.canonical_item_id.isna().to_numpy(),
         option_reason.notna().to_numpy(), no_option & pairs.label_key.isin(non_substantive_labels).to_numpy(),
         no_option, off_scale],
        ["skipped", "open_text", "unmapped_question", option_reason.fillna("").to_numpy(dtype=object),
         "non_substantive_label", "not_an_option", "off_scale"],
        None)  # the first rule that applies wins
    pairs["non_substantive_reason"] = reason
    pairs["is_substantive"] = pd.isna(reason)
    value = option.astype(float).to_numpy()
    scale = q.scale_points.to_numpy(dtype=float)
    scored = np.where(q.reverse_coded.to_numpy() == True, 1 + scale - value, value)  # noqa: E712 (null: not reversed)
    pairs["scored_value"] = np.where(pairs.is_substantive, scored, np.nan)
    pairs["is_favorable"] = pairs.is_substantive & (pairs.scored_value >= q.favorable_threshold.to_numpy(dtype=float))
    pairs["canonical_item_id"] = q.canonical_item_id.to_numpy()
    return pairs, answer_pair


# --------------------------------------------------------------------------------------
# 5. Demographics


def demographic_crosswalk(replica: Replica, seeds: Seeds) -> pd.DataFrame:
    """int_demographic_crosswalk: per district, field and code key, the standard value
    (a district override, then the field's global row, then the global yes/no row)."""
    codes = seeds.codes
    global_rows = pd.concat(
        [codes[codes.field != "yes_no"].assign(priority=2)]
        + [codes[codes.field == "yes_no"].assign(field=flag, priority=3) for flag in FLAG_FIELDS],
        ignore_index=True)
    candidates = pd.concat([
        replica.districts[["district_id"]].merge(global_rows, how="cross"),
        seeds.overrides[["district_id", "field", "code", "standard_value"]].assign(priority=1),
    ], ignore_index=True)
    candidates["code_key"] = code_key(candidates.code)
    return (candidates.sort_values("priority", kind="stable")
            .drop_duplicates(["district_id", "field", "code_key"])[
                ["district_id", "field", "code_key", "standard_value"]])


def student_subgroups(replica: Replica, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """Per student, the subgroup value of each category (strings; Unknown when unknown)."""
    s = replica.students
    out = pd.DataFrame({"student_id": s.student_id})

    def mapped(field_name: str, codes: pd.Series, districts: pd.Series) -> pd.Series:
        frame = pd.DataFrame({"district_id": districts.to_numpy(), "field": field_name,
                              "code_key": code_key(codes).to_numpy()})
        return frame.merge(crosswalk, on=["district_id", "field", "code_key"], how="left").standard_value

    standard = {f: mapped(f, s[f], s.district_id).to_numpy() for f in SCALAR_FIELDS}

    def flag(values) -> pd.Series:
        return pd.Series(values).map({"true": "true", "false": "false"}).fillna("Unknown").to_numpy()

    out["gender"] = pd.Series(standard["gender"]).fillna("Unknown").to_numpy()
    out["grade_level"] = pd.Series(standard["grade_level"]).fillna("Unknown").to_numpy()
    out["english_learner"] = flag(standard["english_learner"])
    out["iep"] = flag(standard["iep"])
    lunch = pd.Series(standard["lunch_status"])
    out["econ_disadvantaged"] = np.where(lunch.isin(["Free", "Reduced"]), "true",
                                         np.where(lunch == "Paid", "false", "Unknown"))
    # race: split on , ; |, trimmed, known codes only; MENA counts as White (1997 standard)
    races = s[["student_id", "district_id", "race"]].dropna(subset=["race"])
    races = races.assign(code=races.race.str.replace(r"[;|]", ",", regex=True).str.split(",")).explode("code")
    races["code"] = races.code.str.strip(" ")
    races = races[races.code != ""]
    races = races.assign(standard=mapped("race", races.code, races.district_id).to_numpy()).dropna(subset=["standard"])
    races["federal"] = races.standard.replace({MENA: "White"})
    federal = races.drop_duplicates(["student_id", "federal"]).groupby("student_id").federal
    counts = federal.size().reindex(out.student_id).to_numpy()
    single = federal.first().reindex(out.student_id).to_numpy()
    hispanic = pd.Series(standard["hispanic_latino"]) == "true"
    out["race_ethnicity"] = np.where(hispanic, "Hispanic or Latino",
                                     np.where(counts > 1, "Two or more races",
                                              np.where(counts == 1, single, "Unknown")))
    return out


# --------------------------------------------------------------------------------------
# 6. Aggregation on integer codes


def group_sums(keys: dict[str, np.ndarray], sums: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sums of `sums` per distinct combination of the integer `keys` (-1: null, kept as a
    group of its own, as SQL's group by keeps nulls)."""
    combined = np.zeros(len(next(iter(keys.values()))), dtype=np.int64)
    radixes = [int(values.max(initial=-1)) + 2 for values in keys.values()]
    if np.prod(np.array(radixes, dtype=float)) >= 2**62:
        raise OverflowError(f"group_sums: {radixes} combinations do not fit one integer key")
    for values, radix in zip(keys.values(), radixes):
        combined = combined * radix + (values + 1)
    group, uniques = pd.factorize(combined)
    out = {}
    rest = uniques.astype(np.int64)
    for name, radix in zip(reversed(list(keys)), reversed(radixes)):
        out[name] = rest % radix - 1
        rest = rest // radix
    frame = pd.DataFrame({name: out[name] for name in keys})
    for name, values in sums.items():
        frame[name] = np.bincount(group, weights=values, minlength=len(uniques))
    return frame


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (null: -1) and the sorted vocabulary."""
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _decode(codes: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    out = np.empty(len(codes), dtype=object)
    known = codes >= 0
    out[known] = vocabulary[codes[known]]
    out[~known] = None
    return out


@dataclass
class Reference:
    """The six marts, and the per-response frames behind them (tests read those)."""

    marts: dict[str, pd.DataFrame]
    # with details only:
    answers: pd.DataFrame | None = None  # every answer in scope: ids, canonical item, scoring
    per_item: pd.DataFrame | None = None  # response x canonical item answered substantively
    per_topic: pd.DataFrame | None = None  # response x topic


@dataclass
class _ResponseCodes:
    """Per response (row of the responses frame): integer codes, -1 for null."""

    year: np.ndarray
    type: np.ndarray
    district: np.ndarray
    school: np.ndarray


def _results(per: pd.DataFrame, unit: str, responses: _ResponseCodes, subgroup_codes: dict[str, np.ndarray],
             sums: dict[str, str]) -> pd.DataFrame:
    """Sums per school year, respondent type, level, entity, `unit` and subgroup: each
    category over the responses it holds, schools first, districts as the sum of their
    schools (and of answers without a school)."""
    r = per.response.to_numpy()
    frames = []
    for category, values in subgroup_codes.items():
        value = values[r]
        rows = value >= 0
        keys = {"school_year": responses.year[r][rows], "respondent_type": responses.type[r][rows],
                "district_id": responses.district[r][rows], "school": responses.school[r][rows],
                unit: per[unit].to_numpy()[rows], "subgroup_value": value[rows]}
        values_summed = {name: per[column].to_numpy()[rows].astype(float) for name, column in sums.items()}
        schools = group_sums(keys, values_summed)
        district_keys = {k: schools[k].to_numpy() for k in keys if k != "school"}
        districts = group_sums(district_keys, {n: schools[n].to_numpy() for n in sums})
        schools = schools[schools.school >= 0].rename(columns={"school": "entity"}).assign(reporting_level="school")
        districts = districts[districts.district_id >= 0].assign(
            entity=lambda f: f.district_id, reporting_level="district")
        frames.append(pd.concat([schools, districts], ignore_index=True).assign(subgroup_category=category))
    return pd.concat(frames, ignore_index=True)


def compute(replica: Replica, seeds: Seeds | None = None, progress: Callable[[str], None] = _say,
            details: bool = False) -> Reference:
    """The six marts from the replica; with `details`, the per-answer, per-item and
    per-topic frames behind them too (with their ids, for tests)."""
    seeds = seeds or read_seeds()
    started = time.perf_counter()
    min_n = seeds.settings["min_n"]

    def step(what: str) -> None:
        progress(f"{what} ({time.perf_counter() - started:.1f} s)")

    questions = map_questions(replica, seeds)
    options = question_options(questions, seeds)
    pairs, answer_pair = score_answers(replica, questions, options, seeds)
    step(f"{len(pairs):,} distinct answers to questions scored")

    # responses with their survey's attributes, as integer codes into shared vocabularies
    responses = replica.responses.merge(
        replica.surveys[["survey_id", "district_id", "respondent_type", "school_year"]],
        on="survey_id", how="left")
    entity_codes, entities = _codes(pd.concat([responses.school_id, responses.district_id], ignore_index=True))
    year_codes, years = _codes(responses.school_year)
    type_codes, types = _codes(responses.respondent_type)
    codes = _ResponseCodes(year_codes, type_codes, entity_codes[len(responses):], entity_codes[:len(responses)])

    # per response and item: substantive answers of responses with a school year
    item_codes, item_names = _codes(seeds.items.canonical_item_id)
    topic_codes, topic_names = _codes(seeds.items.topic_id)
    item_topic = np.empty(len(item_names), dtype=np.int64)
    item_topic[item_codes] = topic_codes
    pair_item = pd.Index(item_names).get_indexer(pairs.canonical_item_id.fillna("\0"))
    a = replica.answers
    substantive = pairs.is_substantive.to_numpy()[answer_pair] & (year_codes[a.response] >= 0)
    scored = pairs.scored_value.to_numpy()[answer_pair][substantive]
    favorable = pairs.is_favorable.to_numpy()[answer_pair][substantive].astype(float)
    per_item = group_sums({"response": a.response[substantive].astype(np.int64),
                           "item": pair_item[answer_pair][substantive].astype(np.int64)},
                          {"score_sum": scored, "substantive": np.ones(len(scored)), "favorable": favorable})
    per_item["item_score"] = per_item.score_sum / per_item.substantive
    per_item["topic"] = item_topic[per_item["item"].to_numpy()]
    topic_items = np.bincount(item_topic, minlength=len(topic_names))
    per_topic = group_sums({"response": per_item.response.to_numpy(), "topic": per_item.topic.to_numpy()},
                           {"items_answered": np.ones(len(per_item)), "score_sum": per_item.item_score.to_numpy(),
                            "substantive": per_item.substantive.to_numpy(), "favorable": per_item.favorable.to_numpy()})
    complete = 2 * per_topic.items_answered >= topic_items[per_topic.topic.to_numpy()]
    per_topic["topic_score"] = np.where(complete, per_topic.score_sum / per_topic.items_answered, np.nan)
    per_topic["scored"] = complete.astype(float)
    per_topic["topic_score_sum"] = np.where(complete, per_topic.topic_score, 0.0)
    step(f"{len(per_item):,} response items, {len(per_topic):,} response topics")

    # subgroups: every response in (all, all); a response with a student in one value per category
    crosswalk = demographic_crosswalk(replica, seeds)
    students = student_subgroups(replica, crosswalk)
    linked = responses[["student_id"]].merge(students, on="student_id", how="left")
    identified = responses.student_id.notna().to_numpy()
    subgroup_codes = {"all": np.zeros(len(responses), dtype=np.int64)}
    subgroup_names = {"all": np.array(["all"], dtype=object)}
    for category in SUBGROUP_CATEGORIES:
        values = linked[category].fillna("Unknown").where(identified)
        subgroup_codes[category], subgroup_names[category] = _codes(values)
    step(f"{len(students):,} students' subgroups")

    per_topic["response_one"] = 1.0
    per_item["response_one"] = 1.0
    topics = _results(per_topic, "topic", codes, subgroup_codes,
                      {"respondents": "response_one", "scored_respondents": "scored",
                       "score_sum": "topic_score_sum", "favorable_answers": "favorable",
                       "substantive_answers": "substantive"})
    items = _results(per_item, "item", codes, subgroup_codes,
                     {"respondents": "response_one", "score_sum": "item_score",
                      "favorable_answers": "favorable", "substantive_answers": "substantive"})
    step(f"{len(topics):,} topic cells, {len(items):,} item cells")

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({
            "school_year": _decode(frame.school_year.to_numpy(), years),
            "respondent_type": _decode(frame.respondent_type.to_numpy(), types),
            "reporting_level": frame.reporting_level.to_numpy(),
            "entity_id": _decode(frame.entity.to_numpy(), entities),
            "district_id": _decode(frame.district_id.to_numpy(), entities),
            "subgroup_category": frame.subgroup_category.to_numpy(),
        })
        out["subgroup_value"] = None
        for category, names in subgroup_names.items():
            rows = (frame.subgroup_category == category).to_numpy()
            out.loc[rows, "subgroup_value"] = _decode(frame.subgroup_value.to_numpy()[rows], names)
        for column in ("respondents", "favorable_answers", "substantive_answers", "scored_respondents"):
            if column in frame:
                out[column] = frame[column].to_numpy().astype(np.int64)
        out["percent_favorable"] = 100.0 * frame.favorable_answers.to_numpy() / frame.substantive_answers.to_numpy()
        return out

    topic_cells = named(topics)
    topic_cells["topic_id"] = _decode(topics.topic.to_numpy(), topic_names)
    scored_n = topics.scored_respondents.to_numpy()
    topic_cells["topic_mean"] = np.where(scored_n > 0, topics.score_sum.to_numpy() / np.maximum(scored_n, 1), np.nan)
    item_cells = named(items)
    item_cells["canonical_item_id"] = _decode(items["item"].to_numpy(), item_names)
    item_cells["topic_id"] = _decode(item_topic[items["item"].to_numpy()], topic_names)
    item_cells["item_mean"] = items.score_sum.to_numpy() / items.respondents.to_numpy()

    cells = pd.concat([topic_cells.assign(kind="topic", item_id=""),
                       item_cells.assign(kind="item", item_id=item_cells.canonical_item_id)], ignore_index=True)
    cells["n"] = cells.respondents
    decided = suppress_cells(cells[["kind", "school_year", "respondent_type", "reporting_level", "entity_id",
                                    "district_id", "topic_id", "item_id", "subgroup_category", "subgroup_value",
                                    "n"]], min_n)
    step(f"suppression: {int(decided.is_suppressed.sum()):,} of {len(decided):,} cells suppressed")
    flags = decided[["is_suppressed", "suppression_reason"]]
    topic_results = _published(topic_cells, flags.iloc[:len(topic_cells)],
                               ["respondents", "scored_respondents", "topic_mean", "percent_favorable",
                                "favorable_answers", "substantive_answers"], TOPIC_KEYS)
    item_results = _published(item_cells, flags.iloc[len(topic_cells):],
                              ["respondents", "item_mean", "percent_favorable", "favorable_answers",
                               "substantive_answers"], ITEM_KEYS[:5] + ["topic_id"] + ITEM_KEYS[5:])

    marts = {
        "topic_results": topic_results,
        "item_results": item_results,
        "topic_trends": topic_trends(topic_results),
        "participation": participation(replica, responses),
        "benchmarks": benchmarks(topic_results, school_levels(replica, crosswalk), seeds.settings),
        "reliability": reliability(per_item, per_topic, topic_items, codes, years, types, topic_names, min_n),
    }
    step("marts")
    if not details:
        return Reference(marts)

    response_ids = replica.responses.response_id.to_numpy()
    per_item_named = pd.DataFrame({
        "response_id": response_ids[per_item.response.to_numpy()],
        "school_year": _decode(year_codes[per_item.response.to_numpy()], years),
        "respondent_type": _decode(type_codes[per_item.response.to_numpy()], types),
        "topic_id": _decode(per_item.topic.to_numpy(), topic_names),
        "canonical_item_id": _decode(per_item["item"].to_numpy(), item_names),
        "item_score": per_item.item_score.to_numpy(),
    })
    per_topic_named = pd.DataFrame({
        "response_id": response_ids[per_topic.response.to_numpy()],
        "topic_id": _decode(per_topic.topic.to_numpy(), topic_names),
        "topic_score": per_topic.topic_score.to_numpy(),
    })
    answers = pd.DataFrame({
        "response_id": pd.Categorical.from_codes(a.response, categories=pd.Index(response_ids)),
        "question_id": pd.Categorical.from_codes(a.question, categories=pd.Index(replica.questions.question_id)),
        "canonical_item_id": pairs.canonical_item_id.to_numpy()[answer_pair],
        "is_substantive": pairs.is_substantive.to_numpy()[answer_pair],
        "scored_value": pairs.scored_value.to_numpy()[answer_pair],
        "is_favorable": pairs.is_favorable.to_numpy()[answer_pair],
    })
    return Reference(marts, answers, per_item_named, per_topic_named)


# --------------------------------------------------------------------------------------
# 7. The marts


def _published(cells: pd.DataFrame, flags: pd.DataFrame, numbers: list[str], keys: list[str]) -> pd.DataFrame:
    """A results mart: its keys, is_suppressed, numbers (null where suppressed), reason,
    district_id."""
    out = cells[keys].copy()
    suppressed = flags.is_suppressed.to_numpy()
    out["is_suppressed"] = suppressed
    for column in numbers:
        out[column] = cells[column].astype(float).where(~suppressed)
    out["suppression_reason"] = flags.suppression_reason.to_numpy()
    out["district_id"] = cells.district_id.to_numpy()
    return out.reset_index(drop=True)


def topic_trends(topic_results: pd.DataFrame) -> pd.DataFrame:
    """Each year's `all` row beside last year's (2024-25 follows 2023-24)."""
    keys = ["respondent_type", "reporting_level", "entity_id", "topic_id"]
    shown = ["is_suppressed", "respondents", "topic_mean", "percent_favorable", "suppression_reason"]
    this = topic_results[topic_results.subgroup_category == "all"]
    this = this[["school_year", *keys, *shown, "district_id"]].assign(
        previous_school_year=(this.school_year.str[:4].astype(int) - 1).astype(str) + "-" + this.school_year.str[2:4])
    last = this[["school_year", *keys, *shown]].rename(
        columns={"school_year": "previous_school_year", **{c: f"previous_{c}" for c in shown}})
    out = this.merge(last, on=["previous_school_year", *keys], how="left")
    out["previous_is_suppressed"] = out.previous_is_suppressed.to_numpy() != False  # noqa: E712 (no last year: suppressed)
    out["percent_favorable_change"] = out.percent_favorable - out.previous_percent_favorable
    out["topic_mean_change"] = out.topic_mean - out.previous_topic_mean
    return out


def participation(replica: Replica, responses: pd.DataFrame) -> pd.DataFrame:
    """Per survey and school: invited, responded, completed and the rates. A null
    survey or school meets nothing on the other side (SQL's full outer join)."""
    keys = ["survey_id", "school_id"]
    invited = replica.invitations.groupby(keys, dropna=False).size().rename("invited").reset_index()
    responded = responses.groupby(keys, dropna=False).agg(
        responded=("response_id", "size"), completed=("is_complete", "sum")).reset_index()
    whole = [f[f[keys].notna().all(axis=1)] for f in (invited, responded)]
    nulls = [f[f[keys].isna().any(axis=1)] for f in (invited, responded)]
    both = pd.concat([whole[0].merge(whole[1], on=keys, how="outer"), *nulls], ignore_index=True)
    for column in ("invited", "responded", "completed"):
        both[column] = both[column].fillna(0).astype(np.int64)
    out = both.merge(replica.surveys[["survey_id", "district_id", "respondent_type", "school_year"]],
                     on="survey_id", how="inner")
    invited_n = out.invited.where(out.invited > 0)
    out["response_rate"] = out.responded / invited_n
    out["completion_rate"] = out.completed / invited_n
    return out


def school_levels(replica: Replica, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """dim_schools' school level: the lowest and highest grade served, mapped by the
    district's grade crosswalk."""
    s = replica.schools
    ends = s.grades_served.str.split("-")
    lowest = ends.str[0]
    highest = ends.str[1].where(lambda x: x.notna() & (x != ""), lowest)
    grades = crosswalk[crosswalk.field == "grade_level"].set_index(["district_id", "code_key"]).standard_value

    def number(codes: pd.Series) -> np.ndarray:
        index = pd.MultiIndex.from_arrays([s.district_id, code_key(codes)])
        grade = pd.Series(grades.reindex(index).to_numpy())
        numbers = {"PK": -1, "KG": 0, **{f"{g:02d}": g for g in range(1, 13)}}
        return grade.map(numbers).to_numpy(dtype=float)

    low, high = number(lowest), number(highest)
    unknown_span = np.isnan(low) | np.isnan(high) | (low > high)
    level = np.select(
        [s.grades_served.isna().to_numpy(), unknown_span, high <= 5, (low >= 6) & (high <= 8), low >= 9],
        ["unknown", "other", "elementary", "middle", "high"], "multi-level")
    return pd.DataFrame({"school_id": s.school_id, "district_id": s.district_id, "school_level": level})


def benchmarks(topic_results: pd.DataFrame, schools: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Percentiles of published school percent favorable, per school level and `all`."""
    t = topic_results
    t = t[(t.reporting_level == "school") & (t.subgroup_category == "all") & ~t.is_suppressed]
    t = t.rename(columns={"entity_id": "school_id"})[
        ["school_year", "respondent_type", "topic_id", "school_id", "percent_favorable"]].merge(schools, on="school_id")
    t = pd.concat([t, t.assign(school_level="all")], ignore_index=True)
    keys = ["school_year", "respondent_type", "topic_id", "school_level"]
    groups = t.groupby(keys, dropna=False)
    out = groups.agg(schools=("school_id", "nunique"), districts=("district_id", "nunique")).reset_index()
    out["is_published"] = ((out.schools >= settings["benchmark_min_schools"])
                           & (out.districts >= settings["benchmark_min_districts"]))
    for q in (10, 25, 50, 75, 90):
        values = groups.percent_favorable.quantile(q / 100).to_numpy()
        out[f"p{q}_percent_favorable"] = np.where(out.is_published, values, np.nan)
    return out


def reliability(per_item: pd.DataFrame, per_topic: pd.DataFrame, topic_items: np.ndarray,
                codes: _ResponseCodes, years: np.ndarray, types: np.ndarray, topic_names: np.ndarray,
                min_n: int) -> pd.DataFrame:
    """Cronbach's alpha over the respondents who answered every item of the topic."""
    complete = per_topic[per_topic.items_answered.to_numpy() == topic_items[per_topic.topic.to_numpy()]]
    complete = complete.assign(year=codes.year[complete.response.to_numpy()],
                               type=codes.type[complete.response.to_numpy()])
    listwise = per_item.merge(complete[["response", "topic", "year", "type"]], on=["response", "topic"])
    keys = ["year", "type", "topic"]
    variances = listwise.groupby([*keys, "item"]).item_score.var(ddof=1).rename("variance").reset_index()
    by_items = variances.groupby(keys).agg(items=("item", "size"),
                                           sum_variance=("variance", lambda v: v.sum(min_count=1)))
    by_totals = complete.groupby(keys).agg(complete_respondents=("score_sum", "size"),
                                           total_variance=("score_sum", lambda v: v.var(ddof=1)))
    out = by_items.join(by_totals, how="inner").reset_index()
    k, total = out["items"].to_numpy(dtype=float), out.total_variance.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((k > 1) & (total > 0), k / (k - 1) * (1 - out.sum_variance.to_numpy() / total), np.nan)
    suppressed = out.complete_respondents.to_numpy() < min_n
    return pd.DataFrame({
        "school_year": _decode(out.year.to_numpy(), years),
        "respondent_type": _decode(out.type.to_numpy(), types),
        "topic_id": _decode(out.topic.to_numpy(), topic_names),
        "items": out["items"].to_numpy(),
        "is_suppressed": suppressed,
        "complete_respondents": np.where(suppressed, np.nan, out.complete_respondents.to_numpy()),
        "cronbach_alpha": np.where(suppressed, np.nan, alpha),
    })


# --------------------------------------------------------------------------------------
# Agreement with the marts


def compare_frames(name: str, expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str],
                   tolerance: float = TOLERANCE) -> list[str]:
    """What differs between two versions of a mart: rows on one side only (by `keys`),
    numbers further apart than `tolerance` (null equals null), other values unequal.
    Every column of `expected` is compared; `actual` may have more."""
    problems = [f"{name}: no column {c} in the warehouse's mart" for c in expected if c not in actual]
    if problems:
        return problems
    for side, frame in (("reference", expected), ("warehouse", actual)):
        repeated = int(frame.duplicated(keys).sum())
        if repeated:
            problems.append(f"{name}: {repeated} repeated keys in the {side}'s rows")
    if problems:
        return problems
    merged = expected.merge(actual[list(expected.columns)], on=keys, how="outer",
                            suffixes=("_expected", "_actual"), indicator=True)
    alone = merged[merged._merge != "both"]
    if len(alone):
        where = alone._merge.map({"left_only": "reference only", "right_only": "warehouse only"})
        problems.append(f"{name}: {len(alone)} rows on one side only:\n"
                        + alone[keys].assign(side=where).head(10).to_string(index=False))
    merged = merged[merged._merge == "both"]
    for column in expected.columns:
        if column in keys:
            continue
        e, a = merged[f"{column}_expected"], merged[f"{column}_actual"]
        if pd.api.types.is_numeric_dtype(expected[column]) and not pd.api.types.is_bool_dtype(expected[column]):
            e_values = pd.to_numeric(e).astype(float).to_numpy()
            a_values = pd.to_numeric(a).astype(float).to_numpy()
            same = (np.isnan(e_values) & np.isnan(a_values)) | (np.abs(e_values - a_values) <= tolerance)
        else:
            same = (e.astype(object).where(e.notna(), "<null>").astype(str).to_numpy()
                    == a.astype(object).where(a.notna(), "<null>").astype(str).to_numpy())
        if not same.all():
            shown = merged.loc[~same, keys + [f"{column}_expected", f"{column}_actual"]].head(10)
            problems.append(f"{name}.{column}: {int((~same).sum())} rows differ:\n" + shown.to_string(index=False))
    return problems


def compare(marts: dict[str, pd.DataFrame], con) -> list[str]:
    """Problems found comparing the reference's marts with the warehouse's (empty: they agree)."""
    problems = []
    for mart, keys in MART_KEYS.items():
        actual = con.execute(f"select * from marts.{mart}").df()
        problems += compare_frames(mart, marts[mart], actual, keys)
    return problems


# --------------------------------------------------------------------------------------
# The script


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrate.reference_pandas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extracts", type=Path, required=True, help="folder of extracts (one folder per table)")
    parser.add_argument("--out", type=Path, help="where to write the marts (parquet) and timing.json")
    parser.add_argument("--check", action="store_true",
                        help="compare with the marts of the warehouse DBT_DUCKDB_PATH points at; exit 1 if they differ")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    progress = (lambda line: None) if args.quiet else _say
    if not (args.extracts / "question_responses").is_dir():
        print(f"error: {args.extracts} holds no question_responses folder: point --extracts at the folder "
              "holding one folder per table.", file=sys.stderr)
        return 2
    started, cpu = time.perf_counter(), cpu_seconds()
    replica = load(args.extracts, progress)
    loaded = time.perf_counter() - started
    reference = compute(replica, progress=progress)
    timing = {"seconds": time.perf_counter() - started, "read_seconds": loaded,
              "cpu_seconds": cpu_seconds() - cpu, "peak_rss_mb": peak_rss_mb(),
              "answer_lines": replica.lines,
              "rows": {mart: len(frame) for mart, frame in reference.marts.items()}}
    progress(f"six marts in {timing['seconds']:.1f} s ({timing['cpu_seconds']:.1f} CPU s, "
             f"peak {timing['peak_rss_mb']:,.0f} MB)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for mart, frame in reference.marts.items():
            frame.to_parquet(args.out / f"{mart}.parquet", index=False)
    status = 0
    if args.check:
        from orchestrate.warehouse import connect

        con = connect(read_only=True)
        try:
            problems = compare(reference.marts, con)
        finally:
            con.close()
        timing["agrees"] = not problems
        timing["problems"] = problems
        for problem in problems:
            print(problem, file=sys.stderr)
        print("the reference agrees with the warehouse's marts" if not problems else
              f"the reference disagrees with the warehouse's marts ({len(problems)} differences above)")
        status = 0 if not problems else 1
    if args.out:
        (args.out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
