"""Suggest canonical items for unmapped questions: `python -m orchestrate suggest-mappings`.

Reads the built warehouse (marts.dim_questions, the item bank seeds) and writes a review
file, by default reports/mapping_suggestions.csv: one row per unmapped wording of a
district, with the three canonical items it most likely measures and their rapidfuzz
similarity. Nothing is ever mapped automatically. A researcher reviews the file, fills
in `canonical_item_id`, `reviewed_by` and `reviewed_on` for each wording that really is a
canonical item (client-only questions such as "How do you usually get to school?" stay
unmapped), and adds those rows — the file's first six columns are the crosswalk's — to
seeds/survey/question_crosswalk.csv in a pull request. The next `dbt build` maps the
questions and re-scores their old answers.

How candidates are ranked, for each unmapped question of a survey:
- Only items that could be mapped at all: same respondent type as the survey, same number
  of scale points as the question's own options (a mismatch is refused by the
  assert_mapped_questions_match_item_scale test), and not already mapped to another
  question of the same survey.
- similarity: rapidfuzz token_set_ratio (0-100) of the normalized wordings.
- Survey context adds to the rank (not to the similarity reported): items of the topics
  whose mapped questions on this survey show the same options (+30); on a form that keeps
  the item bank's order (its mapped questions appear in bank order), items that fit
  between the question's mapped neighbours (+20), and +20 more for the item in the same
  slot when the gap holds as many questions as such items.
- The first suggestion is the best one-to-one matching of the survey's unmapped questions
  to its candidate items (each item is on a form once); the other two are the next best
  by rank. Open-ended questions get no suggestion: no item can take free text.
A wording asked in several surveys of the district (one per year) takes the suggestions
from its latest survey.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from scipy.optimize import linear_sum_assignment

from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR, connect, duckdb_path
from orchestrate.warehouse import schema_name as schema

DEFAULT_OUT = Path("reports/mapping_suggestions.csv")
SUGGESTIONS = 3
SAME_OPTIONS_BONUS = 30.0
BETWEEN_NEIGHBOURS_BONUS = 20.0
SAME_SLOT_BONUS = 20.0
CROSSWALK_COLUMNS = ["district_id", "survey_id", "question_text", "canonical_item_id", "reviewed_by", "reviewed_on"]


def normalize_text(text: str) -> str:
    """The warehouse's matching key (macro normalize_question_text), in Python."""
    text = re.sub(r"[^\w\s]", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def load(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every question (with its scale labels) and every canonical item."""
    marts, intermediate, seeds = schema("marts"), schema("intermediate"), schema("seeds")
    try:
        questions = con.execute(f"""
            with labels as (
                select question_id, string_agg(option_label_key, '|' order by option_value) as scale_labels
                from {intermediate}.int_question_options_parsed
                where non_substantive_reason is null
                group by question_id
            )
            select q.question_id, q.survey_id, q.district_id, q.respondent_type, q.school_year,
                   q.question_position, q.question_text, q.question_text_key, q.is_open_ended,
                   q.canonical_item_id, q.mapping_method, q.option_scale_points, labels.scale_labels
            from {marts}.dim_questions as q
            left join labels using (question_id)
        """).df()
        items = con.execute(f"""
            select i.canonical_item_id, i.topic_id, i.canonical_text, i.scale_points, t.respondent_type
            from {seeds}.canonical_items as i
            join {seeds}.topics as t using (topic_id)
            order by i.topic_id, i.canonical_item_id
        """).df()
    except Exception as exc:  # duckdb.CatalogException and friends
        raise UserError(
            f"could not read the built warehouse ({exc}). Build it first: "
            "`python -m orchestrate run` (or `dbt build`), with DBT_DUCKDB_PATH pointing at it."
        ) from exc
    items["text_key"] = items.canonical_text.map(normalize_text)
    return questions, items


def _in_bank_order(mapped: pd.DataFrame, topic_of: dict[str, str]) -> bool:
    """Whether the survey's mapped questions (sorted by position) appear in item-bank order:
    each topic in one block, items by id within a topic."""
    topic_rank: dict[str, int] = {}
    keys = []
    for item in mapped.canonical_item_id:
        topic = topic_of[item]
        if topic not in topic_rank:
            topic_rank[topic] = len(topic_rank)
        keys.append((topic_rank[topic], item))
    return len(keys) >= 2 and all(a < b for a, b in zip(keys, keys[1:]))


def suggest_for_survey(survey: pd.DataFrame, items: pd.DataFrame) -> list[dict]:
    """Ranked suggestions for each unmapped question of one survey."""
    topic_of = dict(zip(items.canonical_item_id, items.topic_id))
    survey = survey.sort_values("question_position")
    mapped = survey[survey.canonical_item_id.notna()]
    unmapped = survey[survey.canonical_item_id.isna()].reset_index(drop=True)
    if unmapped.empty:
        return []
    respondent_type = survey.respondent_type.iloc[0]
    candidates = items[
        (items.respondent_type == respondent_type) & ~items.canonical_item_id.isin(set(mapped.canonical_item_id))
    ].reset_index(drop=True)
    rows = [{"question": q, "ranked": []} for q in unmapped.itertuples()]
    if candidates.empty:
        return rows

    similarity = process.cdist(
        list(unmapped.question_text_key), list(candidates.text_key), scorer=fuzz.token_set_ratio
    ).astype(float)
    rank = similarity.copy()
    allowed = np.ones_like(rank, dtype=bool)

    topics_by_labels = (
        mapped.assign(topic_id=mapped.canonical_item_id.map(topic_of))
        .groupby("scale_labels").topic_id.apply(set).to_dict()
    )
    ordered = _in_bank_order(mapped, topic_of)
    cand_topic = candidates.topic_id.to_numpy()
    cand_item = candidates.canonical_item_id.to_numpy()

    # Between mapped neighbours on an order-keeping form: the items that fit each gap.
    fits: dict[int, np.ndarray] = {}
    slot: dict[int, int] = {}
    if ordered:
        mapped_pos = mapped.question_position.to_numpy()
        mapped_item = mapped.canonical_item_id.to_numpy()
        gaps: dict[tuple, list[int]] = {}
        for i, q in enumerate(unmapped.itertuples()):
            before = np.nonzero(mapped_pos < q.question_position)[0]
            after = np.nonzero(mapped_pos > q.question_position)[0]
            prev_item = mapped_item[before[-1]] if len(before) else None
            next_item = mapped_item[after[0]] if len(after) else None
            fit = np.zeros(len(candidates), dtype=bool)
            if prev_item is not None:
                fit |= (cand_topic == topic_of[prev_item]) & (cand_item > prev_item)
            if next_item is not None:
                fit |= (cand_topic == topic_of[next_item]) & (cand_item < next_item)
            fits[i] = fit
            gaps.setdefault((prev_item, next_item), []).append(i)
        for (prev_item, _), members in gaps.items():
            fit_items = np.nonzero(fits[members[0]])[0]
            if len(fit_items) == len(members):
                # the previous neighbour's topic first, then the next one's; by id within a topic
                prev_topic = topic_of[prev_item] if prev_item is not None else None
                order = sorted(fit_items, key=lambda c: (cand_topic[c] != prev_topic, cand_item[c]))
                for i, c in zip(members, order):
                    slot[i] = c

    for i, q in enumerate(unmapped.itertuples()):
        if q.is_open_ended:
            allowed[i, :] = False
            continue
        allowed[i] &= candidates.scale_points.to_numpy() == q.option_scale_points
        if q.scale_labels in topics_by_labels:
            rank[i, np.isin(cand_topic, list(topics_by_labels[q.scale_labels]))] += SAME_OPTIONS_BONUS
        if i in fits:
            rank[i, fits[i]] += BETWEEN_NEIGHBOURS_BONUS
        if i in slot:
            rank[i, slot[i]] += SAME_SLOT_BONUS

    # Each item is on a form once: the best one-to-one matching decides the first suggestion.
    cost = np.where(allowed, -rank, 1e6)
    matched = {r: c for r, c in zip(*linear_sum_assignment(cost)) if allowed[r, c]}
    for i, row in enumerate(rows):
        order = [c for c in np.argsort(-rank[i], kind="stable") if allowed[i, c]]
        if i in matched:
            order = [matched[i]] + [c for c in order if c != matched[i]]
        row["ranked"] = [
            (cand_item[c], candidates.canonical_text[c], round(float(similarity[i, c]), 1))
            for c in order[:SUGGESTIONS]
        ]
    return rows


def _note(question, ranked: list) -> str:
    """Why a question has no suggestion."""
    if ranked:
        return ""
    if question.is_open_ended:
        return "open-ended: no canonical item takes free text; leave unmapped"
    return (f"no unused canonical item for {question.respondent_type} surveys has "
            f"{question.option_scale_points} scale points; leave unmapped")


def suggest(questions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per unmapped wording of a district, with up to three suggestions."""
    per_question = []
    for _, survey in questions.groupby("survey_id", sort=True):
        for row in suggest_for_survey(survey, items):
            q = row["question"]
            out = {
                "district_id": q.district_id,
                "school_year": q.school_year,
                "survey_id": q.survey_id,
                "question_id": q.question_id,
                "question_text": q.question_text,
                "question_text_key": q.question_text_key,
                "respondent_type": q.respondent_type,
                "is_open_ended": bool(q.is_open_ended),
                "note": _note(q, row["ranked"]),
            }
            for n in range(SUGGESTIONS):
                item, text, score = row["ranked"][n] if n < len(row["ranked"]) else ("", "", None)
                out[f"suggestion_{n + 1}_item"] = item
                out[f"suggestion_{n + 1}_text"] = text
                out[f"suggestion_{n + 1}_similarity"] = score
            per_question.append(out)
    columns = CROSSWALK_COLUMNS + [
        "respondent_type", "is_open_ended", "questions", "surveys", "note",
        *[f"suggestion_{n}_{part}" for n in range(1, SUGGESTIONS + 1) for part in ("item", "text", "similarity")],
    ]
    if not per_question:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(per_question)
    key = ["district_id", "respondent_type", "question_text_key"]
    df = df.sort_values(key + ["school_year", "survey_id"])
    latest = df.groupby(key, sort=True).tail(1).set_index(key)
    grouped = df.groupby(key, sort=True)
    latest["questions"] = grouped.question_id.count()
    latest["surveys"] = grouped.survey_id.apply(lambda s: " ".join(sorted(set(s))))
    out = latest.reset_index()
    # The crosswalk's own columns: empty survey_id applies the row to every survey of the district.
    out["survey_id"] = ""
    out["canonical_item_id"] = ""
    out["reviewed_by"] = ""
    out["reviewed_on"] = ""
    return out[columns].sort_values(["district_id", "respondent_type", "question_text"]).reset_index(drop=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"review file to write (default {DEFAULT_OUT})")


def main(args: argparse.Namespace) -> int:
    path = duckdb_path()
    if not path.exists():
        raise UserError(f"{path}: no warehouse there. Build it first (`python -m orchestrate run`) "
                        "or point DBT_DUCKDB_PATH at it.")
    con = connect(path, read_only=True)
    try:
        questions, items = load(con)
    finally:
        con.close()
    suggestions = suggest(questions, items)
    out = args.out if args.out.is_absolute() else PROJECT_DIR / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    suggestions.to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    closed = int((~suggestions.is_open_ended).sum()) if len(suggestions) else 0
    print(
        f"{len(suggestions)} unmapped wordings ({closed} closed, {len(suggestions) - closed} open-ended) "
        f"-> {out}\nReview it: for each wording that measures a canonical item, fill in "
        "canonical_item_id, reviewed_by and reviewed_on, and add those rows (first six columns) to "
        "seeds/survey/question_crosswalk.csv in a pull request. Nothing was mapped automatically.",
        file=sys.stderr,
    )
    return 0
