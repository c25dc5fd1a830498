"""`python -m orchestrate psychometrics`: reliability and validity of every topic, written
to marts (also a step of `run`, after the build and checks).

Per school year x respondent type x topic, over the complete respondents `reliability`
uses (those who answered every item of the topic: int_response_items_listwise_filtered):

- topic_psychometrics: k, n, Cronbach's alpha with its 95% interval (Feldt), McDonald's
  omega (total) from a one-factor CFA, that CFA's fit (chi-square, df, CFI, TLI, RMSEA
  with its 90% interval, SRMR), and floor and ceiling shares.
- item_loadings: each item's loading, standardized loading and residual variance.
- topic_correlations: latent correlations between the topics of an instrument from a
  correlated-factors CFA (respondents complete on every topic), with its fit; pairs
  above 0.85 are flagged as not distinct.
- measurement_invariance: for gender and race/ethnicity, the configural, metric and
  scalar models over the groups with at least var('invariance_min_group_n') complete
  respondents, CFI, RMSEA and the change in CFI; a change below -0.01 is flagged.

Rows from fewer than var('min_reporting_n') respondents are suppressed (numbers null),
as in the other marts.

A unit (school year x respondent type) whose inputs are those of the last write is not
computed again: its rows are kept. Its inputs' fingerprint (its respondents' item scores,
gender and race/ethnicity, its topics, the two minimum sizes and this code) is stored
with the tables, in orchestrate.psychometrics_inputs, written after them; so a day's
files that touch the current school year only recompute that year's units. --recompute
(or `run --full-refresh`) computes every unit. The statistics are in orchestrate/sem.py; the tables are declared
(and every column described) in models/marts/survey/psychometrics.yml, source
`psychometrics`. Reads and writes through the target's connection (DuckDB or Snowflake).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR, orchestrate_schema_name

if TYPE_CHECKING:
    from orchestrate.worker import Worker

SOURCE = "psychometrics"
# An item whose residual variance is estimated at (about) zero: a Heywood case, the
# one-factor solution is improper (common with few respondents).
IMPROPER_BELOW = 0.001  # standardized residual variance
NOT_DISTINCT_ABOVE = 0.85  # latent correlation above which two topics are not distinct
NONINVARIANT_CFI_CHANGE = -0.01  # Cheung & Rensvold (2002); Chen (2007)
INVARIANCE_CATEGORIES = {"gender": "gender", "race_ethnicity": "race_ethnicity"}  # category: respondents_wide column
NOT_A_GROUP = ("Unknown",)

# Each published table: its columns and their SQL types, in order (described in
# models/marts/survey/psychometrics.yml; a test keeps the two the same).
TABLES: dict[str, list[tuple[str, str]]] = {
    "topic_psychometrics": [
        ("school_year", "varchar"), ("respondent_type", "varchar"), ("topic_id", "varchar"),
        ("items", "integer"), ("is_suppressed", "boolean"), ("complete_respondents", "integer"),
        ("cronbach_alpha", "double"), ("alpha_ci_lower", "double"), ("alpha_ci_upper", "double"),
        ("omega_total", "double"), ("chi_square", "double"), ("df", "integer"),
        ("chi_square_baseline", "double"), ("df_baseline", "integer"), ("cfi", "double"),
        ("tli", "double"), ("rmsea", "double"), ("rmsea_ci_lower", "double"),
        ("rmsea_ci_upper", "double"), ("srmr", "double"), ("is_improper_solution", "boolean"),
        ("floor_share", "double"), ("ceiling_share", "double"),
    ],
    "item_loadings": [
        ("school_year", "varchar"), ("respondent_type", "varchar"), ("topic_id", "varchar"),
        ("canonical_item_id", "varchar"), ("is_suppressed", "boolean"),
        ("complete_respondents", "integer"), ("loading", "double"),
        ("standardized_loading", "double"), ("residual_variance", "double"),
        ("standardized_residual_variance", "double"),
    ],
    "topic_correlations": [
        ("school_year", "varchar"), ("respondent_type", "varchar"), ("topic_id", "varchar"),
        ("other_topic_id", "varchar"), ("is_suppressed", "boolean"),
        ("complete_respondents", "integer"), ("latent_correlation", "double"),
        ("is_not_distinct", "boolean"), ("chi_square", "double"), ("df", "integer"),
        ("cfi", "double"), ("tli", "double"), ("rmsea", "double"), ("srmr", "double"),
    ],
    "measurement_invariance": [
        ("school_year", "varchar"), ("respondent_type", "varchar"), ("topic_id", "varchar"),
        ("subgroup_category", "varchar"), ("model", "varchar"), ("is_suppressed", "boolean"),
        ("groups_compared", "varchar"), ("group_count", "integer"),
        ("complete_respondents", "integer"), ("smallest_group_respondents", "integer"),
        ("chi_square", "double"), ("df", "integer"), ("cfi", "double"), ("rmsea", "double"),
        ("cfi_change", "double"), ("rmsea_change", "double"), ("is_noninvariant", "boolean"),
    ],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=os.environ.get("DBT_TARGET", "dev"),
                        help="dbt target from profiles.yml: dev (DuckDB, default) or prod (Snowflake)")
    parser.add_argument("--recompute", action="store_true",
                        help="compute every unit, also those whose inputs have not changed")
    parser.add_argument("--min-group-n", type=int, default=None,
                        help="complete respondents a group needs to enter the invariance models "
                             "(default: var invariance_min_group_n in dbt_project.yml)")


def main(args: argparse.Namespace) -> int:
    from orchestrate import dbt
    from orchestrate.warehouse import open_warehouse

    relations = load_relations(args.target)
    warehouse = open_warehouse(dbt.adapter_type(args.target))
    try:
        summary = compute_and_write(warehouse, relations, min_group_n=args.min_group_n,
                                    recompute=args.recompute)
    finally:
        warehouse.close()
    print(f"psychometrics: {summary}")
    for name in TABLES:
        print(f"  {relations.source(SOURCE, name)}")
    return 0


def load_relations(target: str | None = None):
    """Relation names from dbt's manifest (the target's folder, of its last build or parse)."""
    from orchestrate import checks, dbt

    path = dbt.target_path(target) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no dbt manifest in {path.parent}: the warehouse has not been built "
                        "with this target folder. Run `python -m orchestrate run` first.") from None
    return checks.Relations(manifest)


def project_vars() -> dict:
    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8")).get("vars", {})


# --------------------------------------------------------------------------------------
# The step


def _say(line: str) -> None:
    print(line, flush=True)


def compute_and_write(warehouse, relations, min_group_n: int | None = None,
                      progress: Callable[[str], None] = _say, recompute: bool = False,
                      worker: Worker | None = None) -> str:
    """Compute every table from the warehouse's marts and write them back; a summary line.
    Units whose inputs have not changed since the last write keep their rows (unless
    `recompute`). With the run's `worker` (orchestrate/worker.py), the models are fitted in
    its process, which imported scipy and semopy during the build; should that process
    have failed (or a unit's fit raised there), here."""
    from orchestrate.checks import MissingRelation

    settings = project_vars()
    min_n = int(settings.get("min_reporting_n", 10))
    min_group_n = int(min_group_n if min_group_n is not None else settings.get("invariance_min_group_n", 100))
    try:
        names = {
            "listwise": relations.ref("int_response_items_listwise_filtered"),
            "respondents": relations.ref("respondents_wide"),
            "items": relations.ref("canonical_items"),
            "topics": relations.ref("topics"),
            **{table: relations.source(SOURCE, table) for table in TABLES},
        }
    except MissingRelation as exc:
        raise UserError(f"{exc}: the dbt manifest is older than this code. Run `python -m "
                        "orchestrate run` (or `dbt parse`) to refresh it.") from None
    missing = [names[k] for k in ("listwise", "respondents", "items", "topics") if not warehouse.exists(names[k])]
    if missing:
        raise UserError(f"{', '.join(missing)} does not exist in the warehouse: build it first "
                        "(`python -m orchestrate run`).")
    started = time.perf_counter()
    instruments = read_instruments(warehouse, names)
    digests = input_digests(warehouse, names)
    units = list(digests)
    stored = {} if recompute else stored_fingerprints(warehouse, names)
    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    counts = {"topics": 0, "invariance": 0}
    fingerprints = {unit: fingerprint(digests[unit], instruments.get(unit[1], {}), min_n, min_group_n)
                    for unit in units}
    kept = [unit for unit in units if stored.get(unit) == fingerprints[unit]]
    responses: dict[str, pd.DataFrame] = {}
    fitted_there = 0  # units the worker's process fitted
    for number, (school_year, respondent_type) in enumerate(units, start=1):
        unit_started = time.perf_counter()
        unit = (school_year, respondent_type)
        if unit in kept:
            progress(f"  [psychometrics {number}/{len(units)}] {school_year} {respondent_type}: "
                     f"{digests[unit]['respondents']:,} respondents, inputs unchanged: rows kept")
            continue
        topics = instruments.get(respondent_type, {})
        if respondent_type not in responses:  # one read per instrument, of its changed years
            years = [y for (y, t) in units if t == respondent_type and (y, t) not in kept]
            responses = {respondent_type: read_responses(warehouse, names, respondent_type, topics, years)}
        everyone = responses[respondent_type]
        frame = everyone[everyone["school_year"] == school_year].drop(columns=["school_year"])
        result = _analyse_there(worker, frame, topics, min_n, min_group_n)
        fitted_there += result is not None
        if result is None:
            result = fit_unit(frame, topics, min_n, min_group_n)
        key = {"school_year": school_year, "respondent_type": respondent_type}
        for name, rows in result.items():
            tables[name].extend({**key, **row} for row in rows)
        counts["topics"] += len(result["topic_psychometrics"])
        tested = sum(1 for r in result["measurement_invariance"] if not r["is_suppressed"])
        counts["invariance"] += tested
        progress(f"  [psychometrics {number}/{len(units)}] {school_year} {respondent_type}: "
                 f"{len(frame):,} respondents, {len(result['topic_psychometrics'])} topics, "
                 f"{tested} invariance models ({time.perf_counter() - unit_started:.1f}s)")
    frames = {name: to_frame(name, rows) for name, rows in tables.items()}
    if kept:
        frames = {name: pd.concat([frame, kept_rows(warehouse, names[name], name, kept)], ignore_index=True)
                  for name, frame in frames.items()}
    # published aggregates, suppressed like the results marts: granted as topic_results is
    roles = relations.grants.get("topic_results", {}).get("select", [])
    write_tables(warehouse, {names[name]: frame for name, frame in frames.items()}, roles)
    store_fingerprints(warehouse, fingerprints)  # after the tables: they describe what was written
    computed = len(units) - len(kept)
    where = ""
    if worker is not None and computed:
        where = (", fitted in the run's second process" if fitted_there == computed else
                 f", {fitted_there} of {computed} units fitted in the run's second process")
    return (f"{computed} of {len(units)} school year x respondent type units computed "
            f"({len(kept)} unchanged, rows kept): {counts['topics']} topics, "
            f"{counts['invariance']} invariance models (min group n {min_group_n}){where}, "
            f"4 tables written in {time.perf_counter() - started:.1f}s")


def fit_unit(frame: pd.DataFrame, topics: dict, min_n: int, min_group_n: int) -> dict:
    """analyse_instrument on one BLAS thread, in the run's process or the worker's: small
    matrices only, where BLAS threads cost far more than they save (100x on 2 busy cores).
    scipy is imported first: it loads its own BLAS, which a limit set before would miss."""
    from orchestrate import sem  # noqa: F401

    with threadpool_limits(1, user_api="blas"):
        return analyse_instrument(frame, topics, min_n=min_n, min_group_n=min_group_n)


def _analyse_there(worker: Worker | None, frame: pd.DataFrame, topics: dict, min_n: int,
                   min_group_n: int) -> dict | None:
    """analyse_instrument in the worker's process; None when there is no worker, it has
    failed, or the unit's fit raised there (computed here again, the error is then this
    process's, with its traceback)."""
    from orchestrate.worker import WorkError

    if worker is None:
        return None
    try:
        return worker.call("analyse", frame, topics, min_n, min_group_n)
    except WorkError:
        return None


def run_step(warehouse, relations, progress: Callable[[str], None] = _say,
             recompute: bool = False, worker: Worker | None = None) -> tuple[str, str]:
    """For `run`: (status, summary)."""
    return "passed", compute_and_write(warehouse, relations, progress=progress, recompute=recompute,
                                       worker=worker)


# --------------------------------------------------------------------------------------
# Units whose inputs have not changed


def _code_version() -> str:
    """This module's and sem.py's source: a change to the statistics recomputes every unit
    (sem.py read, not imported: its imports are the worker's)."""
    digest = hashlib.sha256()
    for module in (Path(__file__), Path(__file__).with_name("sem.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def input_digests(warehouse, names: dict) -> dict[tuple[str, str], dict]:
    """Per school year and respondent type (the units, in the order they are computed):
    its respondents and a digest of what its rows are computed from, summed in the
    warehouse so that a unit whose inputs have not changed is never read: every item score
    of its responses (int_response_items_listwise_filtered) and each response's gender and
    race/ethnicity (respondents_wide)."""
    rows = warehouse.rows(f"""
        with listwise as (
            select response_id, school_year, respondent_type, canonical_item_id, item_score
            from {names['listwise']}
        ),
        answers as (
            select school_year, respondent_type, count(*) as answers,
                   sum(hash(response_id, canonical_item_id, item_score)) as answers_digest
            from listwise
            group by school_year, respondent_type
        ),
        responses as (
            select distinct response_id, school_year, respondent_type
            from listwise
        ),
        respondents as (
            select responses.school_year, responses.respondent_type, count(*) as respondents,
                   sum(hash(responses.response_id, wide.gender, wide.race_ethnicity)) as respondents_digest
            from responses
            left join {names['respondents']} as wide
                on responses.response_id = wide.response_id
            group by responses.school_year, responses.respondent_type
        )
        select answers.school_year, answers.respondent_type, respondents.respondents,
               answers.answers, cast(answers.answers_digest as varchar),
               cast(respondents.respondents_digest as varchar)
        from answers
        inner join respondents
            on answers.school_year is not distinct from respondents.school_year
            and answers.respondent_type = respondents.respondent_type
        order by answers.respondent_type, answers.school_year""")
    return {(year, kind): {"respondents": int(n), "answers": int(answers), "answers_digest": a,
                           "respondents_digest": r}
            for year, kind, n, answers, a, r in rows}


def fingerprint(digest: dict, topics: dict[str, Topic], min_n: int, min_group_n: int) -> str:
    """What a unit's rows are computed from: its inputs' digest (input_digests), its topics
    and items, the minimum sizes, the code."""
    settings = {"inputs": digest, "min_n": min_n, "min_group_n": min_group_n,
                "topics": {t: [topic.items, topic.scale_points] for t, topic in sorted(topics.items())},
                "code": _code_version()}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def fingerprints_table() -> str:
    return f"{orchestrate_schema_name()}.psychometrics_inputs"


def stored_fingerprints(warehouse, names: dict) -> dict[tuple[str, str], str]:
    """The fingerprints of the last write, if it and every table it wrote are there."""
    if not all(warehouse.exists(r) for r in (fingerprints_table(), *(names[t] for t in TABLES))):
        return {}
    return {(year, kind): value for year, kind, value in warehouse.rows(
        f"select school_year, respondent_type, fingerprint from {fingerprints_table()}")}


def store_fingerprints(warehouse, fingerprints: dict[tuple[str, str], str]) -> None:
    table = fingerprints_table()
    warehouse.execute(f"create schema if not exists {orchestrate_schema_name()}")
    warehouse.execute(f"create or replace table {table} "
                      "(school_year varchar, respondent_type varchar, fingerprint varchar)")
    for (year, kind), value in fingerprints.items():
        warehouse.execute(f"insert into {table} values (?, ?, ?)", [year, kind, value])


def kept_rows(warehouse, relation: str, name: str, units: list[tuple[str, str]]) -> pd.DataFrame:
    """A table's rows of the kept units, as the last write left them."""
    stored = warehouse.df(f"select * from {relation}")
    stored.columns = [c.lower() for c in stored.columns]
    keys = pd.MultiIndex.from_frame(stored[["school_year", "respondent_type"]])
    rows = stored[keys.isin(units)]
    return to_frame(name, rows.to_dict("records"))


# --------------------------------------------------------------------------------------
# Reading


@dataclass
class Topic:
    topic_id: str
    items: list[str]
    scale_points: list[int]


def read_instruments(warehouse, names: dict) -> dict[str, dict[str, Topic]]:
    """respondent type -> topic -> its items (the item bank: seeds topics, canonical_items)."""
    rows = warehouse.rows(
        f"select topics.respondent_type, items.topic_id, items.canonical_item_id, items.scale_points "
        f"from {names['items']} as items inner join {names['topics']} as topics "
        "on items.topic_id = topics.topic_id order by 1, 2, 3")
    out: dict[str, dict[str, Topic]] = {}
    for respondent_type, topic_id, item, scale_points in rows:
        topic = out.setdefault(respondent_type, {}).setdefault(topic_id, Topic(topic_id, [], []))
        topic.items.append(item)
        topic.scale_points.append(int(scale_points))
    return out


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def read_responses(warehouse, names: dict, respondent_type: str, topics: dict[str, Topic],
                   school_years: list[str | None]) -> pd.DataFrame:
    """One row per response of the instrument in these school years with a complete topic:
    its school year, one column per item (null where its topic is not complete), gender and
    race_ethnicity (null when not linked to a student)."""
    items = [item for topic in topics.values() for item in topic.items]
    if not items:
        return pd.DataFrame(columns=["school_year", "gender", "race_ethnicity"])
    years = " or ".join("school_year is null" if y is None else f"school_year = {_lit(y)}"
                        for y in school_years) or "false"
    pivot = ",\n".join(f"max(case when canonical_item_id = {_lit(item)} then item_score end) as i{n}"
                       for n, item in enumerate(items))
    frame = warehouse.df(f"""
        with listwise as (
            select response_id, school_year, canonical_item_id, item_score
            from {names['listwise']}
            where respondent_type = {_lit(respondent_type)} and ({years})
        ),
        wide as (
            select response_id, school_year, {pivot}
            from listwise
            group by response_id, school_year
        )
        select wide.*, respondents.gender, respondents.race_ethnicity
        from wide left join {names['respondents']} as respondents
            on wide.response_id = respondents.response_id
        order by wide.response_id""")
    frame = frame.rename(columns={f"i{n}": item for n, item in enumerate(items)})
    return frame.drop(columns=["response_id"])


# --------------------------------------------------------------------------------------
# Computing (plain DataFrames in, rows out: tests call this directly)


def analyse_instrument(frame: pd.DataFrame, topics: dict[str, Topic], min_n: int,
                       min_group_n: int) -> dict[str, list[dict]]:
    """Every table's rows for one school year and respondent type (without those keys)."""
    out: dict[str, list[dict]] = {name: [] for name in TABLES}
    present = {}
    for topic_id, topic in topics.items():
        complete = frame[topic.items].dropna().astype(float) if len(frame) else frame
        if len(complete) == 0:
            continue
        present[topic_id] = topic
        row, loadings = topic_statistics(complete, topic, min_n)
        out["topic_psychometrics"].append({"topic_id": topic_id, **row})
        out["item_loadings"].extend({"topic_id": topic_id, **r} for r in loadings)
        for category, column in INVARIANCE_CATEGORIES.items():
            rows = invariance_rows(frame.loc[complete.index], topic.items, column, min_group_n)
            out["measurement_invariance"].extend(
                {"topic_id": topic_id, "subgroup_category": category, **r} for r in rows)
    if len(present) >= 2:
        out["topic_correlations"] = correlation_rows(frame, present, min_n)
    return out


def _number(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def topic_statistics(complete: pd.DataFrame, topic: Topic, min_n: int) -> tuple[dict, list[dict]]:
    """topic_psychometrics' row and item_loadings' rows of one topic (complete rows only)."""
    from orchestrate import sem

    n, k = complete.shape
    suppressed = n < min_n
    row: dict = {"items": k, "is_suppressed": suppressed, "complete_respondents": None if suppressed else n}
    numbers = [c for c, t in TABLES["topic_psychometrics"] if t in ("double", "integer", "boolean")
               and c not in ("items", "complete_respondents", "is_suppressed")]
    row.update({c: None for c in numbers})
    loadings = [{"canonical_item_id": item, "is_suppressed": suppressed,
                 "complete_respondents": row["complete_respondents"], "loading": None,
                 "standardized_loading": None, "residual_variance": None,
                 "standardized_residual_variance": None} for item in topic.items]
    if suppressed:
        return row, loadings
    values = complete.to_numpy()
    alpha = sem.cronbach_alpha(values)
    lower, upper = sem.feldt_interval(alpha, n, k)
    totals = values.sum(axis=1)
    row.update(cronbach_alpha=_number(alpha), alpha_ci_lower=_number(lower), alpha_ci_upper=_number(upper),
               floor_share=float(np.mean(totals <= k)),  # every item at the scale's lowest point, 1
               ceiling_share=float(np.mean(totals >= sum(topic.scale_points))))
    model = sem.fit_cfa(complete, {topic.topic_id: topic.items})
    if model is None:
        return row, loadings
    fit = model.fit
    row.update(omega_total=_number(sem.omega_total(model.loadings["loading"], model.loadings["residual_variance"])),
               chi_square=_number(fit.chi2), df=fit.df, chi_square_baseline=_number(fit.chi2_baseline),
               df_baseline=fit.df_baseline, cfi=_number(fit.cfi), tli=_number(fit.tli),
               rmsea=_number(fit.rmsea), rmsea_ci_lower=_number(fit.rmsea_lower),
               rmsea_ci_upper=_number(fit.rmsea_upper), srmr=_number(fit.srmr),
               is_improper_solution=bool((model.loadings["standardized_residual_variance"] < IMPROPER_BELOW).any()))
    by_item = model.loadings.set_index("item")
    for entry in loadings:
        estimate = by_item.loc[entry["canonical_item_id"]]
        for column in ("loading", "standardized_loading", "residual_variance", "standardized_residual_variance"):
            entry[column] = _number(estimate[column])
    return row, loadings


def correlation_rows(frame: pd.DataFrame, topics: dict[str, Topic], min_n: int) -> list[dict]:
    """topic_correlations: one correlated-factors CFA over the respondents complete on
    every topic; a row per pair of topics (each pair once)."""
    from orchestrate import sem

    items = [item for topic in topics.values() for item in topic.items]
    complete = frame[items].dropna().astype(float)
    n = len(complete)
    suppressed = n < min_n
    model = None if suppressed else sem.fit_cfa(complete, {t: topic.items for t, topic in topics.items()})
    rows = []
    ids = sorted(topics)
    for a, topic_id in enumerate(ids):
        for other in ids[a + 1:]:
            row = {"topic_id": topic_id, "other_topic_id": other, "is_suppressed": suppressed,
                   "complete_respondents": None if suppressed else n, "latent_correlation": None,
                   "is_not_distinct": None, "chi_square": None, "df": None, "cfi": None,
                   "tli": None, "rmsea": None, "srmr": None}
            if model is not None:
                correlation = float(model.factor_correlations.loc[topic_id, other])
                fit = model.fit
                row.update(latent_correlation=correlation,
                           is_not_distinct=abs(correlation) > NOT_DISTINCT_ABOVE,
                           chi_square=_number(fit.chi2), df=fit.df, cfi=_number(fit.cfi),
                           tli=_number(fit.tli), rmsea=_number(fit.rmsea), srmr=_number(fit.srmr))
            rows.append(row)
    return rows


def invariance_rows(complete: pd.DataFrame, items: list[str], group_column: str,
                    min_group_n: int) -> list[dict]:
    """measurement_invariance's rows of one topic and subgroup category: the configural,
    metric and scalar one-factor models over the groups (values of `group_column`, not
    null or Unknown) with at least min_group_n complete respondents. No rows when no
    respondent has a known value (e.g. staff); suppressed rows when fewer than two groups
    are large enough."""
    from orchestrate import sem

    known = complete[complete[group_column].notna() & ~complete[group_column].isin(NOT_A_GROUP)]
    if known.empty:
        return []
    sizes = known[group_column].value_counts()
    large = sorted(str(g) for g, size in sizes.items() if size >= min_group_n)
    blank = {"is_suppressed": True, "groups_compared": None, "group_count": None,
             "complete_respondents": None, "smallest_group_respondents": None,
             "chi_square": None, "df": None, "cfi": None, "rmsea": None,
             "cfi_change": None, "rmsea_change": None, "is_noninvariant": None}
    if len(large) < 2:
        return [{"model": level, **blank} for level in sem.LEVELS]
    # the largest group first: the reference group of the scalar model's latent means
    large.sort(key=lambda g: (-sizes[g], g))
    groups = [sem.GroupMoments.of(g, known.loc[known[group_column] == g, items].to_numpy(dtype=float))
              for g in large]
    models = sem.measurement_invariance(groups, [list(range(len(items)))])
    rows, previous = [], None
    for model in models:
        fit = model.fit
        row = {"model": model.level, **blank, "is_suppressed": False,
               "groups_compared": ", ".join(sorted(large)), "group_count": len(large),
               "complete_respondents": int(sum(g.n for g in groups)),
               "smallest_group_respondents": int(min(g.n for g in groups)),
               "chi_square": _number(fit.chi2), "df": fit.df, "cfi": _number(fit.cfi),
               "rmsea": _number(fit.rmsea)}
        if not fit.converged:
            row.update(chi_square=None, cfi=None, rmsea=None)
        if previous is not None and row["cfi"] is not None and previous["cfi"] is not None:
            row["cfi_change"] = row["cfi"] - previous["cfi"]
            row["is_noninvariant"] = row["cfi_change"] < NONINVARIANT_CFI_CHANGE
            if row["rmsea"] is not None and previous["rmsea"] is not None:
                row["rmsea_change"] = row["rmsea"] - previous["rmsea"]
        rows.append(row)
        previous = row
    return rows


# --------------------------------------------------------------------------------------
# Writing


def to_frame(name: str, rows: list[dict]) -> pd.DataFrame:
    columns = [c for c, _ in TABLES[name]]
    frame = pd.DataFrame(rows, columns=columns)
    for column, sql_type in TABLES[name]:
        if sql_type == "integer":
            frame[column] = frame[column].astype("Int64")
        elif sql_type == "double":
            frame[column] = frame[column].astype("float64")
        elif sql_type == "boolean":
            frame[column] = frame[column].astype("boolean")
        else:
            frame[column] = frame[column].astype("object")
    return frame


def write_tables(warehouse, frames: dict[str, pd.DataFrame], roles: list[str] = ()) -> None:
    """Replace each table with its rows: on DuckDB in one transaction from the DataFrames;
    on Snowflake by create or replace, select grants to `roles`, and inserts of bound rows."""
    by_name = {relation: TABLES[_table_name(relation)] for relation in frames}
    schema = _schema_of(next(iter(frames)))
    warehouse.execute(f"create schema if not exists {schema}")
    if warehouse.kind == "duckdb":
        con = warehouse.con
        con.execute("begin transaction")
        try:
            for relation, frame in frames.items():
                columns = ", ".join(f"cast({c} as {t}) as {c}" for c, t in by_name[relation])
                con.register("psychometrics_rows", frame)
                con.execute(f"create or replace table {relation} as select {columns} from psychometrics_rows")
                con.unregister("psychometrics_rows")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        return
    for relation, frame in frames.items():
        columns = by_name[relation]
        warehouse.execute(f"create or replace table {relation} ("
                          + ", ".join(f"{c} {t}" for c, t in columns) + ")")
        for role in roles:
            warehouse.execute(f"grant select on table {relation} to role {role}")
        if frame.empty:
            continue
        values = [[None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row]
                  for row in frame.itertuples(index=False)]
        placeholders = ", ".join(["?"] * len(columns))  # the connection binds qmark parameters
        with warehouse.con.cursor() as cursor:
            for start in range(0, len(values), 1000):
                cursor.executemany(f"insert into {relation} ({', '.join(c for c, _ in columns)}) "
                                   f"values ({placeholders})", values[start:start + 1000])


def _table_name(relation: str) -> str:
    return relation.replace('"', "").split(".")[-1].lower()


def _schema_of(relation: str) -> str:
    return relation.rsplit(".", 1)[0]
