"""`python -m orchestrate run` and `retry`: the whole job, its report, and what failures lose (issue 5).

One uninterrupted run over the sample extracts (the `reference` fixture) is both the end
to end test and the yardstick: the other scenarios copy its warehouse file (raw tables and
ingest ledger included) instead of ingesting again, and must end with the same marts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import PROJECT_DIR, run_cli, warehouse_env

STEPS = ["ingest", "dbt build", "checks", "reconciliation", "psychometrics", "report"]


@dataclass
class Warehouse:
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {**warehouse_env(self.folder), "ORCHESTRATE_REPORTS_DIR": str(self.folder / "reports")}

    @property
    def db(self) -> Path:
        return self.folder / "warehouse.duckdb"

    def run(self, *args: str):
        return run_cli(*args, env=self.env)

    def latest_report(self) -> dict:
        return json.loads((self.folder / "reports" / "latest" / "report.json").read_text())

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def execute(self, *statements: str) -> None:
        con = duckdb.connect(str(self.db))
        try:
            for sql in statements:
                con.execute(sql)
        finally:
            con.close()


def marts(db: Path, exclude: dict[str, list[str]] | None = None) -> dict[str, tuple]:
    """Row count and order-independent content hash of every table and view in schema marts, like
    conftest.table_fingerprints, with floating-point columns quantized to 1e-6: DuckDB sums
    doubles in parallel, so two builds of the same data differ by ~1e-15 in means, alphas
    and correlations. The grid is offset (+0.2718…) so that exact decimal ties such as
    3.7765625 (a mean over 1,280 answers) do not sit on a rounding boundary.
    `exclude` leaves out columns by table."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' "
            "order by table_name, ordinal_position"
        ).fetchall()
        by_table: dict[str, list[str]] = {}
        for table, column, data_type in columns:
            if column in (exclude or {}).get(table, []):
                continue
            expr = (f'floor("{column}" * 1e6 + 0.2718281828)' if data_type in ("DOUBLE", "FLOAT")
                    else f'"{column}"')
            by_table.setdefault(table, []).append(f'{expr} as "{column}"')
        return {
            f"marts.{table}": con.execute(
                f"select count(*), sum(hash(t)) from (select {', '.join(cols)} from marts.\"{table}\") as t"
            ).fetchone()
            for table, cols in by_table.items()
        }
    finally:
        con.close()


def copy_of(reference: Warehouse, folder: Path, raw_only: bool = False) -> Warehouse:
    """The reference warehouse file in a new folder; with raw_only, as if only ingested."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(reference.db, folder / "warehouse.duckdb")
    copy = Warehouse(folder)
    if raw_only:
        schemas = [s for (s,) in copy.query(
            "select distinct schema_name from information_schema.schemata "
            "where catalog_name = current_database() and schema_name not in ('raw', 'main')"
        )]
        copy.execute(*[f'drop schema "{s}" cascade' for s in schemas], "checkpoint")
    return copy


def start_run(w: Warehouse, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """`run` in the background; its output lines collect in the returned list as they come."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "run", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **w.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def pump():
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for(lines: list[str], predicate, proc: subprocess.Popen, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        while seen < len(lines):
            if predicate(lines[seen]):
                return lines[seen]
            seen += 1
        if proc.poll() is not None and seen >= len(lines):
            time.sleep(0.5)  # let the pump drain
            if seen >= len(lines):
                raise AssertionError("run ended before the expected line:\n" + "".join(lines[-40:]))
        time.sleep(0.1)
    raise AssertionError("timed out waiting; last output:\n" + "".join(lines[-40:]))


def dbt_progress(line: str) -> tuple[int, int] | None:
    """(done, total) from a live progress line `  [dbt 12/190] success model …`."""
    if "[dbt " not in line:
        return None
    done, total = line.split("[dbt ", 1)[1].split("]", 1)[0].split("/")
    return int(done), int(total) if total.isdigit() else 0


def stop_during_build(w: Warehouse, sig: signal.Signals, part: int) -> tuple[int, list[str]]:
    """`run` in the background, sent `sig` once 1/part of dbt's nodes have finished (models
    half built, marts pending); its exit code and its output lines."""
    proc, lines = start_run(w)
    wait_for(lines, lambda line: (p := dbt_progress(line)) is not None and p[0] * part >= p[1], proc)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=300)
    time.sleep(0.5)  # let the pump drain
    return code, lines


def test_every_expectation_suite_file_is_valid_great_expectations(tmp_path):
    from orchestrate import checks
    from orchestrate.errors import UserError

    suites = checks.load_suites()
    assert {"topic_results_shift"} <= {s.name for s in suites}
    for suite in suites:
        assert len(checks.build_gx_suite(suite).expectations) == len(suite.expectations), suite.name

    (tmp_path / "broken.json").write_text(json.dumps({
        "name": "broken",
        "meta": {"query": "select 1 as x"},
        "expectations": [{"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "x"}}],
    }))
    [broken] = checks.load_suites(tmp_path)
    with pytest.raises(UserError, match="broken.json: expectation 1"):
        checks.build_gx_suite(broken)


def test_the_runs_second_process_gives_the_results_the_runs_own_process_gives(tmp_path):
    """The worker (orchestrate/worker.py: great-expectations, scipy and semopy imported in a
    process started with the run) validates a suite and fits a unit's psychometric models
    as the run's own process does; when that process has died, the run's process does the
    work, with the same results; a malformed expectation is an error naming its file
    either way; a unit whose fit raises there is fitted here again."""
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from orchestrate import checks, psychometrics, worker
    from orchestrate.errors import UserError
    from orchestrate.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(duckdb.connect())
    warehouse.execute("create table main.scores as select range as id, range * 1.5 as x from range(40)")
    relations = checks.Relations({"nodes": {"model.p.scores": {
        "resource_type": "model", "name": "scores", "relation_name": "main.scores"}}})
    (tmp_path / "scores.json").write_text(json.dumps({
        "name": "scores",
        "meta": {"query": "select id, x from {{ ref('scores') }}", "id_columns": ["id"]},
        "expectations": [
            {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": "x", "min_value": 0, "max_value": 50}, "severity": "warning"},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        ],
    }))
    suites = checks.load_suites(tmp_path)
    assert checks.will_validate(warehouse, relations, suites)
    assert not checks.will_validate(warehouse, checks.Relations({"nodes": {}}), suites)

    # one unit of psychometrics: four items of one factor, two groups for invariance
    rng = np.random.default_rng(7)
    items = ["i1", "i2", "i3", "i4"]
    latent = rng.normal(size=(400, 1))
    frame = pd.DataFrame(np.clip(np.round(3 + latent + rng.normal(size=(400, 4))), 1, 5), columns=items)
    frame["gender"] = rng.choice(["Female", "Male"], 400)
    frame["race_ethnicity"] = rng.choice(["Asian", "White"], 400)
    topics = {"t1": psychometrics.Topic("t1", items, [5] * 4)}
    with threadpool_limits(1, user_api="blas"):  # as both processes fit
        fitted_here = psychometrics.analyse_instrument(frame, topics, min_n=10, min_group_n=100)
    assert fitted_here["topic_psychometrics"][0]["cfi"] is not None
    assert len(fitted_here["measurement_invariance"]) == 6

    second = worker.start(validate=True, analyse=True)
    try:
        [there] = checks.run_expectations(warehouse, relations, suites, worker=second)
        assert second.alive and there["validated_in"] == "the run's second process"
        [here] = checks.run_expectations(warehouse, relations, suites)
        assert here["validated_in"] == "the run's process"
        assert there["results"] == here["results"] and there["status"] == here["status"] == "warning"
        between, not_null = here["results"]
        # x = 1.5 id: ids 34..39 are above 50
        assert (between["outcome"], between["unexpected_count"], between["element_count"]) == ("warning", 6, 40)
        assert [row["id"] for row in between["sample"]] == [34, 35, 36, 37, 38, 39]
        assert not_null["outcome"] == "passed"

        fitted_there = psychometrics._analyse_there(second, frame, topics, 10, 100)
        for table, rows in fitted_here.items():  # a refit agrees to the optimizer's last bits
            assert [{c: pytest.approx(v, rel=1e-9, abs=1e-12) if isinstance(v, float) else v
                     for c, v in row.items()} for row in rows] == fitted_there[table], table
        # a fit that raises there (an item missing from the frame) is left to this process
        missing = {"t1": psychometrics.Topic("t1", [*items, "i5"], [5] * 5)}
        assert psychometrics._analyse_there(second, frame, missing, 10, 100) is None
        with pytest.raises(worker.WorkError, match="KeyError"):
            second.call("analyse", frame, missing, 10, 100)

        (tmp_path / "broken.json").write_text(json.dumps({
            "name": "broken",
            "meta": {"query": "select * from {{ ref('scores') }}"},
            "expectations": [{"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "x"}}],
        }))
        broken = checks.load_suites(tmp_path)
        with pytest.raises(UserError, match="broken.json: expectation 1"):
            checks.run_expectations(warehouse, relations, broken, worker=second)
        assert second.alive and second.answered == {"validate": 2, "analyse": 3}  # errors are not the process's
        # a request that cannot be pickled is done here, and the process stays
        assert second.call("analyse", lambda: None) is None and second.alive
        # work it cannot do is not asked again
        assert second.call("nothing of the kind") is None and second.unavailable == {"nothing of the kind"}
        assert second.alive and second.answered == {"validate": 2, "analyse": 3}

        second.proc.kill()
        second.proc.wait()
        [after] = checks.run_expectations(warehouse, relations, suites, worker=second)
        assert not second.alive and after["validated_in"] == "the run's process"
        assert after["results"] == here["results"]
        assert psychometrics._analyse_there(second, frame, topics, 10, 100) is None
    finally:
        second.close()

    # a run that ends before its checks ends the process at once, even mid-import
    early = worker.start(validate=True, analyse=True)
    early.close()
    assert early.proc.returncode == -signal.SIGKILL and not early.alive  # not left to finish importing


def test_the_runs_own_process_imports_none_of_the_workers_libraries():
    """What the worker imports during the build (great-expectations, scipy, semopy) is
    not imported by the run's own modules, nor by psychometrics' fingerprint of its code."""
    code = ("import sys; from orchestrate import run, checks, psychometrics, report, bench; "
            "psychometrics._code_version(); "
            "print(sorted(m for m in ('great_expectations', 'scipy', 'semopy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_DIR)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_extracts) -> Warehouse:
    """One uninterrupted `run` over every sample extract."""
    w = Warehouse(tmp_path_factory.mktemp("reference"))
    proc = w.run("run", "--extracts", str(sample_extracts))
    w.proc = proc
    return w


def test_run_end_to_end_passes_and_reports_every_step(reference):
    proc = reference.proc
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    out = proc.stdout

    # live progress: files ingested and dbt nodes as they finish
    assert "[ingest " in proc.stderr
    assert sum(1 for line in out.splitlines() if dbt_progress(line)) > 50

    # the ending says how it went, where the results are and where the report is
    tail = out.strip().splitlines()[-4:]
    assert any(line.startswith("PASSED") for line in tail)
    assert f"DuckDB file {reference.db}, schema marts" in out
    assert "import duckdb" in out and "marts.topic_results" in out
    assert tail[-1].startswith("Report: ")

    report_dir = reference.folder / "reports" / "latest"
    html = (report_dir / "report.html").read_text()
    report = reference.latest_report()
    assert tail[-1].startswith(f"Report: {reference.folder / 'reports' / report['run_id'] / 'report.html'}")
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["status"] in ("passed", "warning") for s in report["steps"]), report["steps"]
    for step in STEPS:
        assert f"<td>{step}</td>" in html
    assert report["status"] == "passed" and report["exit_code"] == 0
    assert report["ingest"]["files_loaded"] > 0 and report["ingest"]["rows_loaded"] > 0

    # dbt results come from run_results.json; every model built
    assert report["dbt"]["counts"].get("error", 0) == 0 and report["dbt"]["counts"].get("fail", 0) == 0
    built = {r["name"] for r in report["dbt"]["results"] if r["resource_type"] == "model"}
    assert {"topic_results", "fct_question_responses", "dim_students"} <= built
    # unit tests check code, not data: the first run leaves them to CI (make test, pr-check)
    assert "--exclude-resource-type unit_test" in report["dbt"]["command"]
    assert not [r for r in report["dbt"]["results"] if r["resource_type"] == "unit_test"]
    assert (reference.folder / "reports" / report["run_id"] / "dbt" / "run_results.json").exists()

    # invariants are dbt tests: counts between layers, ranges, suppressed rows without numbers
    tests = {r["name"]: r["status"] for r in report["dbt"]["results"] if r["resource_type"] == "test"}
    assert tests["assert_fct_question_responses_holds_the_current_answers"] == "pass"
    assert tests["same_row_count_dim_surveys_ref_stg_replica__surveys_"] == "pass"
    assert tests["between_topic_results_percent_favorable__100__0"] == "pass"
    # expectations: the shift check waits for a previous run
    suites = {s["suite"]: s for s in report["expectations"]}
    assert suites["topic_results_shift"]["status"] == "skipped"
    assert "validated_in" not in suites["topic_results_shift"]
    # the psychometric models were fitted in the run's second process (orchestrate/worker.py)
    psychometrics = next(s for s in report["steps"] if s["name"] == "psychometrics")
    assert "units computed" in psychometrics["summary"]
    assert ", fitted in the run's second process," in psychometrics["summary"], psychometrics["summary"]
    assert "Expectations" in html and "topic_results" in html

    # reconciliation: raw -> staging -> marts, every line accounted for
    rec = report["reconciliation"]
    assert rec["status"] == "passed"
    assert rec["totals"]["lines"] == rec["totals"]["rows_loaded"] + rec["totals"]["lines_quarantined"]
    qr = next(t for t in rec["tables"] if t["table"] == "question_responses")
    assert qr["mart_rows"] <= qr["raw_rows"] and qr["current_rows"] is None  # a dbt test compares them
    assert "reconciliation: lines in files" in out

    # unmapped codes from the stored failures of the cfg_unmapped_* tests
    assert any(t["test"].startswith("cfg_unmapped_") for t in report["unmapped"])
    assert "Unmapped codes and questions" in html and "Quarantined lines" in html

    # run history and the baseline for the next run's shift check, outside marts
    history = reference.query("select run_id, status, rows_loaded, ended_at from orchestrate.run_history")
    assert history == [(report["run_id"], "passed", report["ingest"]["rows_loaded"], history[0][3])]
    assert history[0][3] is not None
    assert reference.query("select count(*) > 0 from orchestrate.topic_results_previous") == [(True,)]


def test_source_freshness_passes_right_after_a_run(reference):
    """Freshness is by the ingest ledger's load time, so a warehouse just loaded from the
    sample (whose changes happened in 2023-25) is fresh, and `dbt source freshness` says so."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "source", "freshness",
         "--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR, env={**os.environ, **reference.env}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    sources = json.loads((Path(reference.env["DBT_TARGET_PATH"]) / "sources.json").read_text())
    assert len(sources["results"]) == 8
    assert {r["status"] for r in sources["results"]} == {"pass"}


def test_a_broken_invariant_fails_the_run_and_the_report_names_it(reference, tmp_path):
    w = copy_of(reference, tmp_path / "tampered")
    w.execute(
        "update marts.topic_results set percent_favorable = 150 "
        "where rowid = (select min(rowid) from marts.topic_results where not is_suppressed)"
    )
    # the invariants are dbt tests: run them without rebuilding topic_results
    proc = w.run("run", "--select", "test_name:between")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
    assert "FAILED" in tail and "between_topic_results_percent_favorable__100__0 (1 failing rows)" in tail
    assert "Report: " in tail

    report = w.latest_report()
    assert report["status"] == "failed" and report["exit_code"] == 1
    [failed] = [r for r in report["dbt"]["results"] if r["status"] == "fail"]
    assert failed["file"] == "models/marts/survey/topic_results.yml" and failed["failures"] == 1
    html = (w.folder / "reports" / "latest" / "report.html").read_text()
    assert "between_topic_results_percent_favorable__100__0" in html and "FAILED" in html
    # a failing run does not become the baseline for shifts
    assert w.query("select snapshot_run_id from orchestrate.topic_results_previous") [0][0] != report["run_id"]

    # retry: the failed test runs again, with what dbt skipped after it, nothing else
    w.execute("update marts.topic_results set percent_favorable = 50 where percent_favorable = 150")
    proc = w.run("retry")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    retried = w.latest_report()
    assert retried["retry_of"] == report["run_id"]
    before = {r["name"]: r["status"] for r in report["dbt"]["results"]}
    rerun = [r["name"] for r in retried["dbt"]["results"]]
    assert "between_topic_results_percent_favorable__100__0" in rerun
    assert {before[name] for name in rerun} <= {"fail", "skipped"}, rerun


def test_a_shift_against_the_previous_run_warns_and_the_badge_says_so(reference, tmp_path):
    """Expectations hold what dbt does not do well: a topic result that moved by more than
    15 points since the last passing run warns; the run passes with warnings, and the
    report's badge says so."""
    w = copy_of(reference, tmp_path / "shifted")
    # with the newest manifest, as a warehouse built before has it: from it the run knows,
    # as it starts, that the shift check will validate, and starts great-expectations' process
    (w.folder / "target").mkdir()
    shutil.copy2(reference.folder / "target" / "manifest.json", w.folder / "target" / "manifest.json")
    w.execute(
        "update marts.topic_results set percent_favorable = case when percent_favorable > 50 "
        "then percent_favorable - 40 else percent_favorable + 40 end "
        "where rowid = (select min(rowid) from marts.topic_results "
        "where not is_suppressed and subgroup_category = 'all')"
    )
    proc = w.run("run", "--select", "stg_replica__districts")  # leaves topic_results as it is
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "PASSED with warnings in checks" in proc.stdout
    report = w.latest_report()
    suite = next(s for s in report["expectations"] if s["suite"] == "topic_results_shift")
    assert suite["status"] == "warning"
    # great-expectations was imported in the run's second process, started with the run
    assert suite["validated_in"] == "the run's second process"
    warned = [r for r in suite["results"] if r["outcome"] == "warning"]
    assert [(r["kwargs"]["column"], r["unexpected_count"]) for r in warned] == [("percent_favorable_shift", 1)]
    assert report["status"] == "passed" and "checks" in report["warned"]
    html = (w.folder / "reports" / "latest" / "report.html").read_text()
    assert "<span class='badge warning'>PASSED WITH WARNINGS</span>" in html


def test_the_fact_table_test_finds_answers_missing_and_extra(reference, tmp_path):
    """The test computes current answers from the change log (max_by over _seq): an answer
    lost from the fact, one that is not an answer at all, and one whose last change is a
    delete the build did not see are each a failing row; an answer deleted once and changed
    again later is current, and is not."""
    w = copy_of(reference, tmp_path / "unreconciled")
    fact = "intermediate.int_question_responses_scored"
    w.execute(
        # an earlier change of an answer in the fact made a delete: a later change follows it
        f"create table main.resurrected as "
        f"select log.response_id, log.question_id, min(log._seq) as first_seq "
        f"from raw.question_responses as log inner join {fact} as answer using (response_id, question_id) "
        f"where answer.rowid not in ((select min(rowid) from {fact}), (select max(rowid) from {fact})) "
        f"group by all having count(*) >= 2 and max_by(log._op, log._seq) <> 'd' "
        f"order by all limit 1",
        "update raw.question_responses set _op = 'd' where _seq = (select first_seq from main.resurrected)",
        # the last change of the fact's last answer made a delete, past the build (the
        # ledger's counts stay right)
        "update raw.question_responses set _op = 'd' where _seq = ("
        "    select max(changes._seq) from raw.question_responses as changes "
        f"    inner join (select response_id, question_id from {fact} "
        f"                where rowid = (select max(rowid) from {fact})) "
        "        as answer using (response_id, question_id))",
        # fct_question_responses is a view of the scoring model's table
        f"delete from {fact} where rowid = (select min(rowid) from {fact})",
        f"insert into {fact} (response_id, question_id, is_substantive, is_deleted) "
        "values ('r_nowhere', 'q_nowhere', false, false)",
    )
    assert w.query("select count(*) from raw.question_responses "
                   "where _op = 'd' and _seq = (select first_seq from main.resurrected)") == [(1,)]
    proc = w.run("run", "--select", "assert_fct_question_responses_holds_the_current_answers")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = w.latest_report()
    assert report["failed_checks"] == ["dbt test assert_fct_question_responses_holds_the_current_answers "
                                       "(3 failing rows)"]
    assert report["reconciliation"]["status"] == "passed"  # files -> raw is still right


def test_a_warehouse_held_by_another_program_gives_a_message_not_a_traceback(reference, tmp_path):
    w = copy_of(reference, tmp_path / "held")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(w.db)!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = w.run("run")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert "in use by another process" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert "ERROR" in proc.stdout and "Report: " in proc.stdout.strip().splitlines()[-1]


def interval_day(path: Path) -> str:
    return path.name.split("__")[1][:8]


def test_loading_day_by_day_with_a_run_after_each_gives_the_same_marts(reference, sample_extracts, tmp_path):
    files = sorted(p for p in sample_extracts.glob("*/*.ndjson.gz"))
    days = sorted({interval_day(p) for p in files})
    # three deliveries: half the days, then a quarter and a quarter. The cuts fall inside
    # school years, so each later delivery adds responses to a year already built, and the
    # last one has no districts file.
    cut = [days[len(days) * quarter // 4 - 1] for quarter in (2, 3, 4)]
    batches = len(cut)

    w = Warehouse(tmp_path / "daily")
    delivered = tmp_path / "delivered"
    exits = []
    for last_day in cut:
        for path in files:
            if interval_day(path) <= last_day:
                target = delivered / path.parent.name / path.name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
        proc = w.run("run", "--extracts", str(delivered))
        assert proc.returncode in (0, 1), proc.stdout[-4000:] + proc.stderr[-2000:]
        exits.append(proc.returncode)
    assert exits[-1] == 0, proc.stdout[-4000:]

    # fct_question_responses.ingested_through is the ingest ledger's load time (the
    # incremental model's high-water mark): it differs between any two warehouses.
    load_times = {"fct_question_responses": ["ingested_through"]}
    daily, single = marts(w.db, exclude=load_times), marts(reference.db, exclude=load_times)
    assert daily == single
    assert len(w.query("select * from orchestrate.run_history")) == batches

    # after the first, each run built only what the new files change (same marts as above)
    scopes = [s for (s,) in w.query("select build_scope from orchestrate.run_history order by started_at")]
    assert scopes[0].startswith("everything"), scopes
    assert all(s.startswith("only what changed since run") and "question_responses" in s
               for s in scopes[1:]), scopes
    # the project's files are those of the kept build: dbt is not asked what changed in it
    assert all("(project files as in that build)" in s for s in scopes[1:]), scopes
    changed = w.latest_report()["dbt"]
    assert "--exclude-resource-type unit_test" in changed["command"]
    assert "source:replica.question_responses+" in changed["command"]
    built = {r["name"] for r in changed["results"]}
    assert "fct_question_responses" in built and "topic_results" in built
    assert "districts" not in scopes[-1], scopes[-1]
    assert "dim_districts" not in built  # nothing new upstream of it

    # no new files, same project: nothing to build, the checks still run
    proc = w.run("run", "--extracts", str(delivered))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    steps = {s["name"]: s for s in w.latest_report()["steps"]}
    assert steps["dbt build"]["status"] == "skipped"
    assert steps["dbt build"]["summary"].startswith("nothing to build: no new files")
    assert steps["checks"]["status"] in ("passed", "warning")
    assert marts(w.db, exclude=load_times) == single


def test_the_environment_fingerprint_follows_what_state_modified_cannot_see(monkeypatch):
    """dbt's state:modified sees files, not the environment variables a macro reads when it
    runs: a new STUDENT_KEY_SALT changes every student key, so it must force a full build."""
    from orchestrate.scope import environment_fingerprint

    monkeypatch.setenv("STUDENT_KEY_SALT", "one")
    first = environment_fingerprint()
    assert environment_fingerprint() == first
    monkeypatch.setenv("STUDENT_KEY_SALT", "two")  # read by a macro: the keys change
    assert environment_fingerprint() != first
    monkeypatch.setenv("STUDENT_KEY_SALT", "one")
    monkeypatch.setenv("SOME_UNRELATED_VARIABLE", "x")
    assert environment_fingerprint() == first


def project_copy(folder: Path) -> Path:
    """The dbt project's files (not the orchestrator, data or artifacts) in a folder."""
    for name in ("dbt_project.yml", "profiles.yml", "models", "seeds", "macros", "snapshots", "tests/dbt"):
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def test_the_test_suites_dbt_build_runs_every_unit_test(built_warehouse):
    """`run` leaves unit tests to CI: `make test`'s plain `dbt build` (the built_warehouse
    fixture) runs every one of them on DuckDB, and each passes (test_snowflake does the
    same on the emulator)."""
    target = Path(built_warehouse.env["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert set(ran) == set(manifest["unit_tests"]) and len(ran) >= 10
    assert set(ran.values()) == {"pass"}


def test_a_comment_in_one_model_rebuilds_that_model_and_what_is_downstream(reference, tmp_path):
    """state:modified+ against the last passing build: a comment-only edit of one model
    rebuilds that model and what depends on it, nothing else (issue 13)."""
    w = copy_of(reference, tmp_path / "comment")
    shutil.copytree(reference.folder / "target" / "production-state", w.folder / "target" / "production-state")
    project = project_copy(tmp_path / "project")
    model = project / "models" / "intermediate" / "results" / "int_topic_results_aggregated.sql"
    text = model.read_text()
    assert "\nwith\n" in text
    model.write_text(text.replace("\nwith\n", "\nwith\n-- a comment, nothing else\n", 1))

    proc = run_cli("run", env={**w.env, "ORCHESTRATE_PROJECT_DIR": str(project)})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    report = w.latest_report()
    assert "int_topic_results_aggregated" in report["build_scope"], report["build_scope"]
    assert "state:modified+" in report["dbt"]["command"]

    manifest = json.loads((w.folder / "target" / "manifest.json").read_text())
    [edited] = [uid for uid, n in manifest["nodes"].items() if n["name"] == "int_topic_results_aggregated"]
    downstream, todo = set(), [edited]
    while todo:  # the model and everything that depends on it, from dbt's child map
        for child in manifest["child_map"][todo.pop()]:
            if child not in downstream:
                downstream.add(child)
                todo.append(child)
    built = {r["unique_id"] for r in report["dbt"]["results"]}
    models = {uid for uid in built if uid.startswith("model.")}
    assert models == {edited} | {uid for uid in downstream if uid.startswith("model.")}
    unit_tests = {uid for uid, n in manifest["unit_tests"].items()
                  if n["model"] in {manifest["nodes"][m]["name"] for m in models}}
    assert unit_tests, "a model the edit reaches has unit tests"
    # a project change runs the unit tests of the models it reaches (a first run does not)
    assert built == {edited} | downstream | unit_tests
    assert len(models) < len([n for n in manifest["nodes"].values() if n["resource_type"] == "model"]) / 3
    assert {"topic_results", "benchmarks"} <= {manifest["nodes"][uid]["name"] for uid in models}


def test_a_changed_environment_fingerprint_builds_everything_with_every_unit_test(reference, tmp_path):
    """What state:modified cannot see (here STUDENT_KEY_SALT, read by a macro when it runs)
    rebuilds everything, and, as what the code does may have changed with it, every unit
    test runs too and passes."""
    w = copy_of(reference, tmp_path / "salt")
    shutil.copytree(reference.folder / "target" / "production-state", w.folder / "target" / "production-state")
    salt = os.environ.get("STUDENT_KEY_SALT", "") + "-rotated"

    proc = run_cli("run", env={**w.env, "STUDENT_KEY_SALT": salt})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    report = w.latest_report()
    assert report["build_scope"].startswith("everything (environment variables"), report["build_scope"]
    assert "unit_test" not in report["dbt"]["command"]
    manifest = json.loads((w.folder / "target" / "manifest.json").read_text())
    ran = {r["unique_id"]: r["status"] for r in report["dbt"]["results"]}
    assert set(manifest["unit_tests"]) <= set(ran), set(manifest["unit_tests"]) - set(ran)
    assert {ran[uid] for uid in manifest["unit_tests"]} == {"pass"}


def test_a_null_in_a_contracted_marts_not_null_column_fails_its_build_and_readers_keep_their_rows(
        reference, tmp_path):
    """A contracted mart's columns that must not be null are `not_null` constraints, not
    `not_null` tests: DuckDB refuses the rows when the model writes them, so the build
    fails naming the model and the column, and readers keep the table they had (a test
    would have failed only after the table with the null was published)."""
    w = copy_of(reference, tmp_path / "null_name")
    before = w.query("select count(*), sum(hash(district_id, district_name)) from marts.dim_districts")
    # a later change of a district without its name (written past the ingester)
    w.execute(
        "insert into raw.districts (_op, _ts, _seq, district_id, name, state, nces_lea_id, locale) "
        "select 'u', now()::timestamp, 999999999, district_id, null, state, nces_lea_id, locale "
        "from raw.districts order by _seq limit 1"
    )
    proc = w.run("run", "--select", "dim_districts")
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-2000:]
    errors = [r for r in w.latest_report()["dbt"]["results"] if r["status"] == "error"]
    assert [e["name"] for e in errors] == ["dim_districts"], errors
    assert "NOT NULL constraint failed" in errors[0]["message"] and "district_name" in errors[0]["message"], errors
    assert w.query("select count(*), sum(hash(district_id, district_name)) from marts.dim_districts") == before


def test_retry_reruns_only_the_failed_and_skipped_dbt_nodes(reference, tmp_path):
    w = copy_of(reference, tmp_path / "retry")
    # a school row without its key (written past the ingester): staging's not_null test
    # fails and dbt skips everything built from schools
    w.execute(
        "insert into raw.schools (_op, _ts, _seq, school_id, district_id, name) "
        "values ('c', now()::timestamp, 999999999, null, 'd_nowhere', 'Keyless School')"
    )
    proc = w.run("run", "--select", "stg_replica__schools+")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "not_null_stg_replica__schools_school_id" in proc.stdout
    failed_run = w.latest_report()
    failed_tests = [r for r in failed_run["dbt"]["results"] if r["status"] == "fail"]
    assert [(t["name"], t["failures"]) for t in failed_tests] == [("not_null_stg_replica__schools_school_id", 1)]
    assert failed_tests[0]["file"].endswith("stg_replica__schools.yml")
    skipped = {r["name"] for r in failed_run["dbt"]["results"] if r["status"] == "skipped"}
    assert {"dim_schools", "benchmarks"} <= skipped

    w.execute("delete from raw.schools where school_id is null")
    proc = w.run("retry")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    retried = w.latest_report()
    assert retried["retry_of"] == failed_run["run_id"]
    assert retried["dbt"]["command"].startswith("dbt retry --state")
    rerun = {r["name"] for r in retried["dbt"]["results"]}
    assert "not_null_stg_replica__schools_school_id" in rerun and {"dim_schools", "benchmarks"} <= rerun
    assert "stg_replica__schools" not in rerun  # it built fine the first time
    assert marts(w.db) == marts(reference.db)


# --------------------------------------------------------------------------------------
# Issue 12: warehouses side by side, interrupted runs, what a current answer is


def test_two_warehouses_built_one_after_the_other_from_one_checkout(reference, tmp_path, monkeypatch):
    """dbt's artifacts belong to one warehouse: with DBT_TARGET_PATH unset, each DuckDB file
    has its own folder under target/ (two files of one name in two folders too). Warehouse
    alpha, a copy of the reference with the reference's dbt folder as its own, finds its
    last passing build there: nothing to build. Beta (beta.duckdb), run right after from
    the same checkout, finds no build of its own and builds everything: it never reads
    alpha's manifest."""
    from orchestrate import dbt as orchestrate_dbt

    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    named_alike = []
    for folder in ("one", "two"):
        monkeypatch.setenv("DBT_DUCKDB_PATH", str(tmp_path / folder / "warehouse.duckdb"))
        named_alike.append(orchestrate_dbt.target_path())
    assert named_alike[0] != named_alike[1] and named_alike[0].name.startswith("warehouse-")

    base_env = {k: v for k, v in os.environ.items() if k != "DBT_TARGET_PATH"}
    targets, reports = [], []
    try:
        for name in ("alpha", "beta"):
            w = copy_of(reference, tmp_path / name, raw_only=name == "beta")
            db = w.db
            if name == "beta":  # alpha keeps the file name its copied manifest's relations name
                db = w.db.rename(w.folder / "beta.duckdb")
            env = {**base_env, **w.env, "DBT_DUCKDB_PATH": str(db)}
            del env["DBT_TARGET_PATH"]
            monkeypatch.setenv("DBT_DUCKDB_PATH", str(db))
            targets.append(orchestrate_dbt.target_path())
            if name == "alpha":
                shutil.copytree(reference.folder / "target", targets[-1])
                kept = (targets[-1] / "production-state" / "build.json").read_text()
            proc = subprocess.run([sys.executable, "-m", "orchestrate", "run"], cwd=PROJECT_DIR, env=env,
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
            assert marts(db) == marts(reference.db)
            reports.append(w.latest_report())
            assert (targets[-1] / "runs" / reports[-1]["run_id"]).is_dir()  # its run folder is there
        assert targets[0] != targets[1]
        assert all(t.parent == PROJECT_DIR / "target" for t in targets), targets
        assert targets[1].name.startswith("beta-")
        alpha, beta = (r["build_scope"] for r in reports)
        assert alpha.startswith("nothing to build"), alpha
        assert (targets[0] / "production-state" / "build.json").read_text() == kept
        assert beta.startswith(f"everything (no passing build kept in {targets[1] / 'production-state'}"), beta
        assert (targets[1] / "manifest.json").exists()
        assert json.loads((targets[1] / "production-state" / "build.json").read_text())["run_id"] == \
            reports[1]["run_id"]
    finally:
        for target in targets:
            if target.parent == PROJECT_DIR / "target":  # never the whole folder
                shutil.rmtree(target, ignore_errors=True)


def test_interrupted_runs_are_recorded_a_second_run_is_refused_and_the_next_run_finishes(
        reference, tmp_path):
    """One warehouse, three runs stopped and one refused, then one that finishes the work
    (one test, so that the suite builds the warehouse from raw once, not three times):
    - Ctrl-C (SIGINT), then SIGTERM, a quarter into dbt build: exit 2, no traceback, the
      report and the history say interrupted, and the next run says it finishes it;
    - kill -9 a third into dbt build leaves no chance to say anything: the next run finds
      the run still `running` and finishes it;
    - while that last run holds the warehouse a second is refused (exit 2, a message, no
      record), and the first is unharmed: it passes with the marts of one uninterrupted run."""
    w = copy_of(reference, tmp_path / "interrupted", raw_only=True)
    stopped = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        code, lines = stop_during_build(w, sig, part=4)
        assert code == 2, "".join(lines[-40:])
        out = "".join(lines)
        assert not any(line.startswith(("== checks", "== reconciliation")) for line in lines), out[-4000:]
        assert "Traceback" not in out, out[-4000:]
        assert f"interrupted by {sig.name} during dbt build" in out
        report = w.latest_report()
        assert report["status"] == "interrupted" and report["exit_code"] == 2
        if stopped:
            assert f"finishing interrupted run {stopped[-1]}" in out
        stopped.append(report["run_id"])
        tail = out.strip().splitlines()
        assert any(line.startswith("INTERRUPTED") for line in tail[-6:]), tail[-6:]

    history = w.query("select run_id, status, steps from orchestrate.run_history order by started_at")
    assert [(r, s) for r, s, _ in history] == [(stopped[0], "interrupted"), (stopped[1], "interrupted")]
    assert all(json.loads(steps)["dbt build"] == "interrupted" and json.loads(steps)["checks"] == "not run"
               for _, _, steps in history)

    _, lines = stop_during_build(w, signal.SIGKILL, part=3)
    assert not any(line.startswith("== dbt build:") for line in lines), "the kill came too late"
    assert f"finishing interrupted run {stopped[-1]}" in "".join(lines)
    (killed,) = w.query("select run_id from orchestrate.run_history order by started_at desc limit 1")[0]
    assert killed not in stopped

    last, lines = start_run(w)
    wait_for(lines, lambda line: line.startswith("== dbt build"), last)  # it holds the lock
    second = w.run("run")
    assert second.returncode == 2
    assert "another run is already using this warehouse" in second.stderr
    assert "Traceback" not in second.stderr
    assert last.poll() is None, "the first run should still be going"

    assert last.wait(timeout=900) == 0, "".join(lines[-60:])
    time.sleep(0.5)  # let the pump drain
    assert f"finishing interrupted run {killed}" in "".join(lines)
    assert marts(w.db) == marts(reference.db)
    # the killed run is recorded as interrupted; the refused one left no record
    assert w.query("select run_id, status from orchestrate.run_history order by started_at") == [
        (stopped[0], "interrupted"), (stopped[1], "interrupted"), (killed, "interrupted"),
        (w.latest_report()["run_id"], "passed")]


def test_a_run_whose_extracts_include_answers_of_deleted_responses_passes(reference, tmp_path):
    """The platform deleted a response but not its answers: the answers stay in the change
    log and in staging, are not current (fct_question_responses leaves them out), and the
    dbt test of the fact table agrees."""
    from conftest import change, write_extract

    w = copy_of(reference, tmp_path / "deleted")
    response_id, answers = w.query(
        "select response_id, count(*) from marts.fct_question_responses group by 1 order by 1 limit 1")[0]
    (next_seq,) = w.query("select max(_seq) + 1 from raw.survey_responses")[0]
    (day,) = w.query("select max(interval_end) from raw.ingest_ledger")[0]
    delivered = tmp_path / "delivered"
    write_extract(delivered, "survey_responses", day,
                  [change("d", next_seq, f"{day:%Y-%m-%d}T10:00:00Z", response_id=response_id)])

    proc = w.run("run", "--extracts", str(delivered))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert w.query(f"select count(*) from marts.fct_question_responses where response_id = '{response_id}'") == [(0,)]
    assert w.query("select count(*) from staging.stg_replica__question_responses "
                   f"where response_id = '{response_id}'") == [(answers,)]
    report = w.latest_report()
    assert report["reconciliation"]["status"] == "passed"
    tests = {r["name"]: r["status"] for r in report["dbt"]["results"]}
    assert tests["assert_fct_question_responses_holds_the_current_answers"] == "pass"


def test_the_run_report_names_unknown_folders_stray_files_and_files_waiting(reference, tmp_path):
    w = copy_of(reference, tmp_path / "stray")
    delivered = tmp_path / "delivered"
    (delivered / "districts").mkdir(parents=True)
    waiting = delivered / "districts" / "districts__20300101T000000Z__20300102T000000Z__0000.ndjson.gz.tmp"
    waiting.write_bytes(b"\x1f\x8b")
    (delivered / "grades").mkdir()
    (delivered / "notes.txt").write_text("by hand\n")

    proc = w.run("run", "--extracts", str(delivered), "--select", "stg_replica__districts")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    report = w.latest_report()
    ingest = report["ingest"]
    assert any("grades" in line for line in ingest["warnings"]), ingest
    assert any("notes.txt" in line for line in ingest["warnings"]), ingest
    assert ingest["waiting"] == [str(waiting)]
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["ingest"]["status"] == "warning"
    html = (w.folder / "reports" / "latest" / "report.html").read_text()
    assert "grades" in html and "notes.txt" in html and waiting.name in html


def test_a_passing_run_keeps_production_state_that_pr_check_compares_with(reference, tmp_path):
    """A passing run keeps its manifest (from a full parse) as production's dbt state in the
    warehouse's dbt folder; pr-check finds it by default, and with the project unchanged it
    has nothing to build: no node differs from what production was built from."""
    assert reference.proc.returncode == 0
    state = Path(reference.env["DBT_TARGET_PATH"]) / "production-state"
    manifest = json.loads((state / "manifest.json").read_text())
    assert "model.survey_warehouse.topic_results" in manifest["nodes"]
    proc = reference.run("pr-check", "--out", str(tmp_path / "pr-check"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert f"against production state {state}" in proc.stdout
    assert "Nothing to build" in proc.stdout
