"""Data-quality checks after `dbt build`: expectation suites, shifts, reconciliation.

Expectation suites are files in orchestrate/expectations/ (one JSON file per suite, in
great-expectations' own suite format plus a `query` saying which rows to validate; see
expectations/README.md). A suite's query is SQL with dbt-style `{{ ref('model') }}`,
`{{ source('replica', 'table') }}` and `{{ orchestrate('table') }}` placeholders, resolved
from dbt's manifest, so the same file works on DuckDB and on Snowflake.

- DuckDB: the query's rows are validated as a pandas DataFrame (great-expectations'
  SQLAlchemy path through duckdb-engine is broken upstream).
- Snowflake: the query is a great-expectations SQL query asset on a Snowflake datasource
  (needs snowflake-sqlalchemy; settings from the same environment variables as profiles.yml).

In a run, great-expectations validates in the run's second process (orchestrate/worker.py),
started first thing: its import, about 5 s, then overlaps the run's ingest and build.

Reconciliation is plain SQL, the files -> raw accounting: every line of every file is
loaded or quarantined, every loaded row is in its raw table, every quarantined line is kept.

Where each kind of check lives (ARCHITECTURE.md): invariants (keys, ranges, vocabularies,
counts between layers) are dbt tests; expectation suites hold what dbt does not do well
(shifts against earlier runs, thresholds that change); reconciliation, the files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrate.errors import UserError
from orchestrate.status import worst
from orchestrate.warehouse import orchestrate_schema_name

if TYPE_CHECKING:
    from orchestrate.worker import Worker

SUITES_DIR = Path(__file__).resolve().parent / "expectations"

# The previous run's topic results, kept to measure shifts (orchestrate schema, not marts).
SNAPSHOTS = {"topic_results_previous": "topic_results"}

# Raw table -> the mart that holds its current rows one-to-one (None: no such mart).
MART_OF = {
    "districts": "dim_districts",
    "schools": "dim_schools",
    "students": "dim_students",
    "surveys": "dim_surveys",
    "survey_questions": "dim_questions",
    "survey_invitations": None,
    "survey_responses": "fct_survey_responses",
    "question_responses": "fct_question_responses",
}
# Staging views not counted by the reconciliation (what is said instead).
NOT_COUNTED_IN_STAGING = {
    "question_responses": "not counted here (the costliest view): the dbt test "
                          "assert_fct_question_responses_holds_the_current_answers compares "
                          "the current answers with the mart",
}

SEVERITIES = ("critical", "warning", "info")


class MissingRelation(Exception):
    """A suite's query names a model, source or table that does not exist (yet)."""


# --------------------------------------------------------------------------------------
# Suites


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    query: str
    expectations: list[dict]
    id_columns: list[str] = field(default_factory=list)
    skip_note: str = ""  # said when the suite's relations do not exist (e.g. first run)


def load_suites(folder: Path = SUITES_DIR) -> list[Suite]:
    """Every suite file, checked: each expectation must be one great-expectations knows."""
    suites = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        meta = data.get("meta", {})
        if "query" not in meta:
            raise UserError(f"{path}: meta.query is missing: say which rows the suite validates")
        for n, exp in enumerate(data.get("expectations", []), start=1):
            severity = exp.get("severity", "critical")
            if severity not in SEVERITIES:
                raise UserError(f"{path}: expectation {n}: severity must be one of {SEVERITIES}")
        query = meta["query"]
        suites.append(
            Suite(
                name=data.get("name", path.stem),
                path=path,
                description=meta.get("description", ""),
                query="\n".join(query) if isinstance(query, list) else query,
                expectations=data.get("expectations", []),
                id_columns=meta.get("id_columns", []),
                skip_note=meta.get("skip_note", ""),
            )
        )
    return suites


def build_gx_suite(suite: Suite):
    """The suite as a great-expectations ExpectationSuite; an unknown or malformed
    expectation raises (gx itself would only log it and drop it)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for n, exp in enumerate(suite.expectations, start=1):
        try:
            expectations.append(ExpectationConfiguration(**exp).to_domain_obj())
        except Exception as exc:  # gx raises several unrelated types here
            raise UserError(f"{suite.path}: expectation {n} ({exp.get('type')}): {exc}") from exc
    return gx.ExpectationSuite(name=suite.name, expectations=expectations)


def _gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # gx sets some of its loggers to INFO when imported
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


# --------------------------------------------------------------------------------------
# Relations: names in suite queries -> relations in the warehouse, from dbt's manifest


class Relations:
    PLACEHOLDER = re.compile(r"\{\{\s*(ref|source|orchestrate)\(([^)]*)\)\s*\}\}")

    def __init__(self, manifest: dict, orchestrate_schema: str | None = None):
        self.models: dict[str, str] = {}
        self.grants: dict[str, dict] = {}  # model -> its grants config, as dbt applies it
        self.sources: dict[tuple[str, str], str] = {}
        for node in manifest.get("nodes", {}).values():
            if node.get("resource_type") in ("model", "seed", "snapshot") and node.get(
                "relation_name"
            ):
                self.models[node["name"]] = node["relation_name"]
                self.grants[node["name"]] = (node.get("config") or {}).get("grants") or {}
        for src in manifest.get("sources", {}).values():
            self.sources[(src["source_name"], src["name"])] = src["relation_name"]
        self.orchestrate_schema = orchestrate_schema or orchestrate_schema_name()

    def ref(self, name: str) -> str:
        if name not in self.models:
            raise MissingRelation(f"model {name!r} is not in the dbt project")
        return self.models[name]

    def source(self, source_name: str, name: str) -> str:
        if (source_name, name) not in self.sources:
            raise MissingRelation(f"source {source_name}.{name} is not in the dbt project")
        return self.sources[(source_name, name)]

    def orchestrate(self, name: str) -> str:
        return f"{self.orchestrate_schema}.{name}"

    def render(self, sql: str) -> str:
        def replace(match: re.Match) -> str:
            args = [a.strip().strip("'\"") for a in match[2].split(",")]
            return getattr(self, match[1])(*args)

        return self.PLACEHOLDER.sub(replace, sql)

    def relations_in(self, sql: str) -> list[str]:
        return [self.render(m[0]) for m in self.PLACEHOLDER.finditer(sql)]


# --------------------------------------------------------------------------------------
# Validating a suite's rows on a warehouse (orchestrate/warehouse.py's connections)


def _validate(context, suite: Suite, rows) -> list[dict]:
    """The suite's results, in the suite file's order, one dict per expectation
    (_expectation_result). `rows`: DuckDB, the query's rows as a pandas DataFrame
    (great-expectations' SQLAlchemy path through duckdb-engine is broken upstream);
    Snowflake, a SnowflakeQuery (a SQL query asset). A malformed expectation raises
    UserError; a query that fails raises what great-expectations raised."""
    gx_suite = context.suites.add(build_gx_suite(suite))
    result_format = {
        "result_format": "SUMMARY",
        "unexpected_index_column_names": suite.id_columns,
        "partial_unexpected_count": 10,
    }
    if isinstance(rows, SnowflakeQuery):
        datasource = context.data_sources.add_or_update_snowflake(
            name="warehouse", connection_string=rows.connection)
        asset = datasource.add_query_asset(name=suite.name, query=rows.sql)
        batch = asset.add_batch_definition_whole_table("all").get_batch()
    else:
        datasource = context.data_sources.add_or_update_pandas("warehouse")
        asset = datasource.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": rows})
    validation = batch.validate(gx_suite, result_format=result_format)
    # gx does not keep the suite's order: match results to the file by expectation id
    position = {e.id: n for n, e in enumerate(gx_suite.expectations)}
    return [_expectation_result(suite.expectations[position[r.expectation_config.id]], r)
            for r in sorted(validation.results, key=lambda r: position[r.expectation_config.id])]


@dataclass
class SnowflakeQuery:
    """A suite's rows on Snowflake: its query and great-expectations' connection to it."""
    sql: str
    connection: dict


def _rows(warehouse, sql: str):
    if warehouse.kind == "snowflake":
        return SnowflakeQuery(sql, warehouse.connection_details())
    return warehouse.df(sql)


# --------------------------------------------------------------------------------------
# Expectations


def run_expectations(
    warehouse, relations: Relations, suites: list[Suite] | None = None,
    worker: "Worker | None" = None,
) -> list[dict]:
    """Validate every suite; one result dict per suite (see report.py for its use). With
    the run's `worker` (orchestrate/worker.py), great-expectations validates in its
    process; should that process have failed, here."""
    from orchestrate.worker import WorkError

    suites = load_suites() if suites is None else suites
    context = None  # great-expectations is slow to import: only when a suite validates
    out = []
    for suite in suites:
        entry: dict[str, Any] = {
            "suite": suite.name,
            "file": _display_path(suite.path),
            "description": suite.description,
            "status": "passed",
            "results": [],
        }
        out.append(entry)
        try:
            sql = relations.render(suite.query)
            missing = _missing_relations(warehouse, relations, suite)
        except MissingRelation as exc:
            entry.update(status="skipped", note=str(exc))
            continue
        if missing:
            entry.update(
                status="skipped",
                note=suite.skip_note or f"{', '.join(missing)} does not exist",
            )
            continue
        try:
            rows = _rows(warehouse, sql)
            results = worker.call("validate", suite, rows) if worker else None
            entry["validated_in"] = "the run's second process" if results is not None else "the run's process"
            if results is None:
                context = context or _gx_context()
                results = _validate(context, suite, rows)
        except UserError:  # a malformed expectation: the suite file needs fixing
            raise
        except Exception as exc:  # a broken query: the suite errs, the others still run
            entry.update(status="error", note=str(exc) if isinstance(exc, WorkError)
                         else f"{type(exc).__name__}: {exc}")
            continue
        entry["results"] = results
        entry["status"] = worst(r["outcome"] for r in entry["results"] if r["outcome"] != "info")
    return out


def will_validate(warehouse, relations: Relations, suites: list[Suite] | None = None) -> bool:
    """Whether some suite has every relation it reads, as the warehouse is now: then
    run_expectations will validate it (and import great-expectations)."""
    for suite in load_suites() if suites is None else suites:
        try:
            if not _missing_relations(warehouse, relations, suite):
                return True
        except MissingRelation:
            continue
    return False


def _missing_relations(warehouse, relations: Relations, suite: Suite) -> list[str]:
    return [r for r in relations.relations_in(suite.query) if not warehouse.exists(r)]


def summarize_expectations(suites: list[dict]) -> tuple[str, str]:
    """The checks step's (status, summary): the worst outcome wins; a suite that could not
    run is an error."""
    counts: dict[str, int] = {}
    for suite in suites:
        for r in suite["results"]:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    skipped = [s["suite"] for s in suites if s["status"] == "skipped"]
    erred = [s["suite"] for s in suites if s["status"] == "error" and not s["results"]]
    parts = [f"{n} {k}" for k, n in sorted(counts.items())]
    if skipped:
        parts.append(f"{len(skipped)} skipped ({', '.join(skipped)})")
    summary = f"{len(suites)} {'suite' if len(suites) == 1 else 'suites'}: " + ", ".join(parts)
    status = worst([k for k in counts if k != "info"] + (["error"] if erred else []))
    return status, summary


def describe(result: dict) -> str:
    """An expectation's result in one line."""
    kwargs = {k: v for k, v in result["kwargs"].items() if k != "batch_id"}
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    count = result.get("unexpected_count")
    tail = f": {count} unexpected rows" if count else ""
    return f"{result['expectation']}({args}){tail}"


def _expectation_result(configured: dict, result) -> dict:
    severity = configured.get("severity", "critical")
    raised = bool(result.exception_info and result.exception_info.get("raised_exception"))
    if raised:
        outcome = "error"
    elif result.success:
        outcome = "passed"
    else:
        outcome = {"critical": "failed", "warning": "warning", "info": "info"}[severity]
    details = result.result or {}
    sample = details.get("partial_unexpected_index_list") or details.get(
        "partial_unexpected_list"
    )
    return {
        "expectation": configured["type"],
        "kwargs": configured.get("kwargs", {}),
        "severity": severity,
        "outcome": outcome,
        "why": configured.get("meta", {}).get("why", configured.get("description", "")),
        "element_count": details.get("element_count"),
        "unexpected_count": details.get("unexpected_count"),
        "observed_value": details.get("observed_value"),
        "sample": to_jsonable(sample or [])[:10],
        "exception": (result.exception_info or {}).get("exception_message") if raised else None,
    }


def topic_results_against_previous(warehouse, relations: Relations) -> dict | None:
    """Percent favorable per topic (district rows, all students, every year pooled by
    favorable over substantive answers) now and in the previous passing run's snapshot,
    for the report's chart; None before a snapshot exists. Read before this run saves its
    own snapshot."""
    try:
        current = relations.ref("topic_results")
    except MissingRelation:
        return None
    previous = relations.orchestrate("topic_results_previous")
    if not (warehouse.exists(current) and warehouse.exists(previous)):
        return None

    def per_topic(relation: str) -> dict[tuple, float]:
        return {(t, r): pf for t, r, pf in warehouse.rows(
            "select topic_id, respondent_type, 100.0 * sum(favorable_answers) / nullif(sum(substantive_answers), 0) "
            f"from {relation} where reporting_level = 'district' and subgroup_category = 'all' "
            "and not is_suppressed group by 1, 2 order by 2, 1")}

    now, before = per_topic(current), per_topic(previous)
    run_id = warehouse.rows(f"select max(snapshot_run_id) from {previous}")[0][0]
    return {"previous_run": run_id, "topics": [
        {"topic_id": t, "respondent_type": r, "current": now[(t, r)], "previous": before.get((t, r))}
        for (t, r) in now]}


def save_snapshots(warehouse, relations: Relations, run_id: str) -> list[str]:
    """Keep this run's topic results as the baseline for the next run's shift check."""
    saved = []
    for snapshot, model in SNAPSHOTS.items():
        try:
            source = relations.ref(model)
        except MissingRelation:
            continue
        if not warehouse.exists(source):
            continue
        warehouse.execute(f"create schema if not exists {relations.orchestrate_schema}")
        warehouse.execute(
            f"create or replace table {relations.orchestrate(snapshot)} as "
            f"select cast(? as varchar) as snapshot_run_id, * from {source}", [run_id])
        saved.append(relations.orchestrate(snapshot))
    return saved


# --------------------------------------------------------------------------------------
# Stored failures of configuration tests (unmapped codes and questions)

UNMAPPED_PREFIXES = ("cfg_unmapped_", "unmapped_")


def unmapped_failures(warehouse, manifest: dict, run_results: dict | None) -> list[dict]:
    """Every cfg_unmapped_* / unmapped_* test, with its stored failing rows."""
    statuses = {r["unique_id"]: r for r in (run_results or {}).get("results", [])}
    out = []
    for uid, node in sorted(manifest.get("nodes", {}).items()):
        if node.get("resource_type") != "test":
            continue
        name = node.get("name", "")
        generic = (node.get("test_metadata") or {}).get("name", "")
        if not (name.startswith(UNMAPPED_PREFIXES) or generic.startswith(UNMAPPED_PREFIXES)):
            continue
        result = statuses.get(uid, {})
        entry = {
            "test": name,
            "description": node.get("description", ""),
            "file": node.get("original_file_path"),
            "status": result.get("status", "not run"),
            "failures": result.get("failures"),
            "stored_in": None,
            "columns": [],
            "rows": [],
        }
        # store_failures set in a singular test's yml properties leaves relation_name empty
        relation = node.get("relation_name") or (
            f"{node['database']}.{node['schema']}.{node.get('alias') or name}"
            if node.get("schema") else None
        )
        entry["stored_in"] = relation
        if relation and warehouse.exists(relation):
            frame = warehouse.df(f"select * from {relation} limit 200")
            entry["columns"] = list(frame.columns)
            entry["rows"] = to_jsonable(frame.values.tolist())
            entry["stored_rows"] = warehouse.scalar(f"select count(*) from {relation}")
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------
# Reconciliation: raw -> staging -> marts


def reconcile(warehouse, relations: Relations) -> dict:
    """The files -> raw accounting (the ledger against the raw tables and the quarantine),
    and, to show where the rows go, counts per table on to staging and the marts. Counts
    between layers are checked by dbt tests (same_row_count, and for answers
    assert_fct_question_responses_holds_the_current_answers: the staging view of
    question_responses, the costliest to compute, is not counted here)."""
    ledger = relations.source("replica", "ingest_ledger")
    quarantine = relations.source("replica", "quarantined_lines")
    if not warehouse.exists(ledger):
        return {"status": "skipped", "note": f"{ledger} does not exist: nothing ingested yet",
                "tables": [], "checks": []}

    per_file = {
        row[0]: row[1:]
        for row in warehouse.rows(
            f"select table_name, count(*), sum(line_count), sum(rows_loaded), "
            f"sum(lines_quarantined) from {ledger} group by table_name"
        )
    }
    tables = []
    checks = []
    for table, mart in MART_OF.items():
        files, lines, loaded, quarantined = per_file.get(table, (0, 0, 0, 0))
        raw_rows = _count(warehouse, relations.source("replica", table))
        costly = table in NOT_COUNTED_IN_STAGING
        tables.append({
            "table": table,
            "files": files,
            "lines": lines,
            "rows_loaded": loaded,
            "lines_quarantined": quarantined,
            "raw_rows": raw_rows,
            "current_rows": None if costly else _count(warehouse, _ref_or_none(relations, f"stg_replica__{table}")),
            "current_note": NOT_COUNTED_IN_STAGING.get(table),
            "mart": mart,
            "mart_rows": _count(warehouse, _ref_or_none(relations, mart)) if mart else None,
        })
        checks.append(_check(
            f"{table}: every loaded row is in raw.{table}",
            raw_rows == loaded,
            f"ledger says {loaded} rows loaded, raw.{table} has {raw_rows}",
        ))

    totals = {key: sum(t[key] for t in tables) for key in ("lines", "rows_loaded", "lines_quarantined")}
    checks = _total_checks(totals, quarantine, _count(warehouse, quarantine)) + checks
    return {"status": worst(c["status"] for c in checks), "totals": totals, "tables": tables, "checks": checks}


def _total_checks(totals: dict, quarantine: str, quarantine_rows: int | None) -> list[dict]:
    lines, loaded, quarantined = totals["lines"], totals["rows_loaded"], totals["lines_quarantined"]
    return [
        _check("every line of every file is loaded or quarantined", lines == loaded + quarantined,
               f"{lines} lines = {loaded} loaded + {quarantined} quarantined"),
        _check("every quarantined line is kept with its reason", quarantine_rows == quarantined,
               f"ledger counts {quarantined} quarantined lines, {quarantine} holds {quarantine_rows}"),
    ]


def summarize_reconciliation(rec: dict) -> str:
    if rec["status"] == "skipped":
        return rec.get("note", "")
    failed = [c for c in rec["checks"] if c["status"] == "failed"]
    return f"{len(rec['checks']) - len(failed)} of {len(rec['checks'])} checks passed"


def reconciliation_lines(rec: dict) -> list[str]:
    """Totals raw -> staging -> marts, one line per table, as printed and reported."""
    if rec["status"] == "skipped":
        return [f"reconciliation: {rec.get('note', 'skipped')}"]
    lines = ["reconciliation: lines in files -> loaded (+ quarantined) -> raw changes -> "
             "current rows (staging) -> mart rows"]
    for t in rec["tables"]:
        mart = f"{t['mart']} {_n(t['mart_rows'])}" if t["mart"] else "no row-level mart"
        lines.append(
            f"  {t['table']:<20} {_n(t['lines']):>9} -> {_n(t['rows_loaded']):>9} "
            f"(+{_n(t['lines_quarantined'])}) -> {_n(t['raw_rows']):>9} -> "
            f"{_n(t['current_rows']):>9} -> {mart}"
        )
    for c in rec["checks"]:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[c["status"]]
        lines.append(f"  [{mark}] {c['check']}" + (f": {c['detail']}" if c["status"] != "passed" else ""))
    return lines


def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"check": name, "status": "passed" if passed else "failed", "detail": detail}


def _ref_or_none(relations: Relations, name: str) -> str | None:
    try:
        return relations.ref(name)
    except MissingRelation:
        return None


def _count(warehouse, relation: str | None) -> int | None:
    if relation is None or not warehouse.exists(relation):
        return None
    return warehouse.scalar(f"select count(*) from {relation}")


def quarantined_lines(warehouse, relations: Relations, limit: int = 50) -> dict:
    """Quarantined lines by file and reason, and the first few with their text."""
    relation = relations.source("replica", "quarantined_lines")
    if not warehouse.exists(relation):
        return {"total": 0, "by_file": [], "sample": []}
    by_file = warehouse.rows(
        f"select source_file, reason, count(*) as lines, min(line_number) as first_line "
        f"from {relation} group by 1, 2 order by 1, 2"
    )
    sample = warehouse.rows(
        f"select source_file, line_number, reason, left(line, 200) from {relation} "
        f"order by source_file, line_number limit {int(limit)}"
    )
    return {
        "table": relation,
        "total": sum(r[2] for r in by_file),
        "by_file": [
            {"file": f, "reason": r, "lines": n, "first_line": first} for f, r, n, first in by_file
        ],
        "sample": [
            {"file": f, "line_number": n, "reason": r, "line": text} for f, n, r, text in sample
        ],
    }


# --------------------------------------------------------------------------------------
# Suppression: the cost of protecting small groups (issue 11)

# Results marts and whether they suppress (participation publishes counts of who was
# asked and who answered, no answers and no subgroups: nothing in it is suppressed).
RESULTS_MARTS = {"topic_results": True, "item_results": True, "topic_trends": True, "participation": False}


def suppression_shares(warehouse, relations: Relations) -> list[dict]:
    """Per results mart: its cells (rows), and how many are published, suppressed as
    primary (fewer than min_reporting_n respondents) and suppressed as complementary
    (so that no subtraction gives a primary one back), by reason, with shares."""
    out = []
    for mart, suppresses in RESULTS_MARTS.items():
        relation = _ref_or_none(relations, mart)
        if relation is None or not warehouse.exists(relation):
            continue
        if not suppresses:
            cells = _count(warehouse, relation)
            out.append({"mart": mart, "cells": cells, "published": cells, "primary": 0,
                        "complementary": 0, "by_reason": {}, "note": "not suppressed: no answers, no subgroups"})
            continue
        by_reason = {reason: count for reason, count in warehouse.rows(
            f"select coalesce(suppression_reason, 'published'), count(*) from {relation} group by 1")}
        cells = sum(by_reason.values())
        entry = {
            "mart": mart,
            "cells": cells,
            "published": by_reason.pop("published", 0),
            "primary": by_reason.get("primary", 0),
            "complementary": sum(n for reason, n in by_reason.items() if reason.startswith("complementary")),
            "by_reason": dict(sorted(by_reason.items())),
        }
        for key in ("published", "primary", "complementary"):
            entry[f"{key}_share"] = entry[key] / cells if cells else None
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------


def to_jsonable(value):
    """numpy / pandas / dates -> plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return None if value != value else value.isoformat()  # NaT is a datetime too
    if hasattr(value, "item"):  # numpy scalar
        return to_jsonable(value.item())
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(SUITES_DIR.parent.parent))
    except ValueError:
        return str(path)
