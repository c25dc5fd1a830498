"""`python -m orchestrate run`: the whole warehouse job, then a report.

Steps: ingest new extracts (with --extracts) -> `dbt build` -> data-quality checks
(expectation suites in orchestrate/expectations/) -> reconciliation (raw -> staging ->
marts) -> psychometrics (reliability and validity tables in marts:
orchestrate/psychometrics.py) -> report (reports/<run_id>/report.html and report.json;
reports/latest).
Every run is recorded in orchestrate.run_history in the warehouse.

Exit status: 0 everything passed (warnings allowed); 1 data-quality checks failed
(expectations, dbt tests of error severity, reconciliation); 2 an error stopped a step.

Build scope: when the project (models, seeds, macros, tests, dbt_project.yml and the
environment variables they read) is unchanged since the last passing build, a run builds
only what new data changes: the models and tests downstream of the raw tables that
received files since that build (unit tests, which check code, not data, are left out);
with no new files it builds nothing. Otherwise, or with --full-refresh or --select, dbt
builds what is asked. Checks always cover every mart.

Only one run at a time per warehouse: a second one exits at once with status 2 and the
first is unharmed. Ctrl-C (SIGINT) or SIGTERM stops a run where it is: no later step runs,
the run is recorded as interrupted (exit 2), and the next run finishes it. `python -m
orchestrate retry` re-runs what failed last time.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrate import checks, dbt, report
from orchestrate.errors import UserError, explain
from orchestrate.warehouse import PROJECT_DIR, duckdb_path

HISTORY_TABLE = "run_history"
HISTORY_BUILD_COLUMNS = {"build_scope": "varchar", "build_fingerprint": "varchar",
                         "built_through": "timestamp"}
# What decides what dbt builds (with the environment variables these files read).
PROJECT_INPUTS = ("dbt_project.yml", "models", "seeds", "macros", "tests/dbt", "snapshots")
STEPS = ("ingest", "dbt build", "checks", "reconciliation", "psychometrics", "report")


class RunRefused(UserError):
    """Another run holds this warehouse."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=os.environ.get("DBT_TARGET", "dev"),
                        help="dbt target from profiles.yml: dev (DuckDB, default) or prod (Snowflake)")
    parser.add_argument("--extracts", type=Path, help="folder of extracts to ingest first (DuckDB only)")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    parser.add_argument("--select", nargs="+", default=[], metavar="SELECTOR",
                        help="dbt node selection for the build (checks always cover every mart)")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="where reports go (default: $ORCHESTRATE_REPORTS_DIR or ./reports)")


def main(args: argparse.Namespace) -> int:
    options = {
        "target": args.target,
        "extracts": str(args.extracts.resolve()) if args.extracts else None,
        "full_refresh": args.full_refresh,
        "select": list(args.select),
    }
    return execute(options, reports_dir=args.reports_dir)


# --------------------------------------------------------------------------------------
# One run


@dataclass
class Step:
    name: str
    status: str = "not run"  # passed, warning, failed, error, skipped, not run
    seconds: float | None = None
    summary: str = ""
    started: float = 0.0  # perf_counter when it began; not reported


@dataclass
class Run:
    run_id: str
    command: str
    options: dict
    target_type: str
    started_at: datetime
    retry_of: str | None = None
    steps: dict[str, Step] = field(default_factory=lambda: {name: Step(name) for name in STEPS})
    ingest: dict | None = None
    dbt: dict | None = None
    expectations: list[dict] = field(default_factory=list)
    reconciliation: dict | None = None
    unmapped: list[dict] = field(default_factory=list)
    quarantined: dict | None = None
    suppression: list[dict] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    ended_at: datetime | None = None
    scope: dict = field(default_factory=lambda: {"kind": "all", "why": ""})
    interrupted: str = ""  # "interrupted by SIGINT during dbt build" when a signal stopped it

    @property
    def failed_checks(self) -> list[str]:
        """One line per data-quality failure (not errors)."""
        out = []
        for r in (self.dbt or {}).get("results", []):
            if r["status"] == "fail":
                out.append(f"dbt test {r['name']} ({r['failures']} failing rows)")
        for suite in self.expectations:
            for r in suite["results"]:
                if r["outcome"] == "failed":
                    out.append(f"expectation {suite['suite']}: {_describe(r)}")
        for c in (self.reconciliation or {}).get("checks", []):
            if c["status"] == "failed":
                out.append(f"reconciliation: {c['check']} ({c['detail']})")
        return out

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        if any(s.status == "error" for s in self.steps.values()) or self.errors:
            return "error"
        if self.failed_checks:
            return "failed"
        return "passed"

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "error": 2, "interrupted": 2}[self.status]


def _describe(result: dict) -> str:
    kwargs = {k: v for k, v in result["kwargs"].items() if k != "batch_id"}
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    count = result.get("unexpected_count")
    tail = f": {count} unexpected rows" if count else ""
    return f"{result['expectation']}({args}){tail}"


def execute(options: dict, reports_dir: Path | None = None, command: str = "run",
            retry_of: dict | None = None, lock=None) -> int:
    """Run the steps under the warehouse's run lock (taken here unless the caller holds
    it: `lock`); return the exit status."""
    reports_dir = (reports_dir or Path(os.environ.get("ORCHESTRATE_REPORTS_DIR", PROJECT_DIR / "reports"))).resolve()
    target_type = adapter_type(options["target"])
    if options.get("extracts") and target_type != "duckdb":
        raise UserError(
            f"--extracts loads files into the local DuckDB warehouse only; target "
            f"{options['target']!r} is {target_type}, whose raw tables are loaded from the stage "
            "(dbt run-operation load_raw_from_stage). Drop --extracts or use --target dev."
        )
    started = datetime.now(timezone.utc)
    run = Run(
        run_id=started.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex(),
        command=command,
        options=options,
        target_type=target_type,
        started_at=started,
        retry_of=retry_of["run_id"] if retry_of else None,
    )
    if lock is None:
        lock = acquire_lock(lock_path(options["target"], target_type), f"{command} {run.run_id}")
    else:
        _describe_holder(lock, f"{command} {run.run_id}")
    try:
        try:
            return _execute(run, reports_dir, retry_of)
        except KeyboardInterrupt as exc:  # SIGINT or SIGTERM (errors.Interrupted)
            signal_name = str(exc) or "SIGINT"
            exc.__traceback__ = None  # let the interrupted steps' connections go
        return _stop_interrupted(run, reports_dir, signal_name)
    finally:
        lock.close()  # releases the lock (the OS releases it too if the process dies)


def _stop_interrupted(run: Run, reports_dir: Path, signal_name: str) -> int:
    """After SIGINT or SIGTERM: no later step runs on a half-built warehouse; the run is
    recorded as interrupted and reported, and the next run finishes it (it builds
    everything changed since the last passing build)."""
    report_dir = reports_dir / run.run_id
    step = next((s.name for s in run.steps.values() if s.status == "interrupted"), None)
    run.interrupted = f"interrupted by {signal_name} " + (f"during {step}" if step else "between steps")
    print(f"{run.interrupted}: stopping here; no later step runs", flush=True)
    run.ended_at = datetime.now(timezone.utc)
    release_duckdb()  # dbt may still hold the DuckDB file
    warehouse = None
    try:
        warehouse = open_warehouse(run.target_type)
        _history_update(warehouse, run, report_dir)
    except Exception as exc:
        print(f"warning: could not record the run in {HISTORY_TABLE}: {exc}", file=sys.stderr)
    finally:
        if warehouse is not None:
            warehouse.close()
    try:
        report.write(_report_data(run, report_dir), report_dir, reports_dir)
    except Exception as exc:
        print(f"warning: could not write the report: {exc}", file=sys.stderr)
    _print_ending(run, report_dir)
    return run.exit_code


def _execute(run: Run, reports_dir: Path, retry_of: dict | None) -> int:
    report_dir = reports_dir / run.run_id
    options = run.options
    what = "retry of run " + run.retry_of if run.retry_of else "run"
    print(f"{what} {run.run_id}: target {options['target']} ({run.target_type}), "
          f"{where_results_are(run)[0]}", flush=True)

    warehouse = None
    history_ok = False
    try:
        warehouse = open_warehouse(run.target_type)
        history_ok = _history_start(warehouse, run, report_dir)
        run.history = _history_recent(warehouse)
    except UserError as exc:  # WarehouseBusy: the message says what to do
        _record_error(run, "ingest" if options.get("extracts") else "dbt build", exc)

    plan = retry_plan(retry_of) if retry_of else {"ingest": True, "build": "build"}

    # 1. ingest
    if warehouse is not None and options.get("extracts") and plan["ingest"]:
        with _step(run, "ingest") as step:
            from orchestrate.ingest import ingest

            result = ingest(Path(options["extracts"]), warehouse.con, progress=True)
            run.ingest = {
                "extracts": options["extracts"],
                "files_loaded": len(result.loaded),
                "files_skipped": len(result.skipped),
                "rows_loaded": result.rows_loaded,
                "lines_quarantined": result.lines_quarantined,
                "files": [f.__dict__ for f in result.loaded],
                "waiting": result.waiting,
                "warnings": result.warnings,
            }
            step.summary = (f"{len(result.loaded)} new files, {result.rows_loaded} rows loaded, "
                            f"{result.lines_quarantined} lines quarantined, "
                            f"{len(result.skipped)} files already loaded"
                            + (f", {len(result.waiting)} files waiting" if result.waiting else "")
                            + (f", {len(result.warnings)} warnings" if result.warnings else ""))
            if result.lines_quarantined or result.waiting or result.warnings:
                step.status = "warning"
    elif warehouse is not None:
        run.steps["ingest"].status = "skipped"
        run.steps["ingest"].summary = ("no --extracts given" if not options.get("extracts")
                                       else f"ingest passed in run {run.retry_of}")
    if history_ok:
        _history_update(warehouse, run)

    # 2. dbt build (the DuckDB file is dbt's while it builds)
    if warehouse is not None and run.steps["ingest"].status not in ("error",):
        if plan["build"] == "build":
            run.scope = build_scope(warehouse, run)
            print(f"build scope: {run.scope['why']}", flush=True)
        warehouse.close()
        warehouse = None
        if plan["build"] is None:
            run.steps["dbt build"].status = "skipped"
            run.steps["dbt build"].summary = f"dbt build passed in run {run.retry_of}"
        elif run.scope["kind"] == "nothing":
            run.steps["dbt build"].status = "skipped"
            run.steps["dbt build"].summary = run.scope["why"]
        else:
            with _step(run, "dbt build") as step:
                run.dbt = dbt_build(run, report_dir, retry_state=plan.get("state"))
                step.status, step.summary = run.dbt["status"], run.dbt["summary"]
        try:
            warehouse = open_warehouse(run.target_type)
        except UserError as exc:
            _record_error(run, "checks", exc)

    # 3-4. checks and reconciliation, on whatever the build left
    target_path = dbt.target_path(options["target"])
    manifest = _read_json(target_path / "manifest.json")
    relations = None
    if warehouse is not None and run.steps["ingest"].status != "error":
        if manifest is None:
            _record_error(run, "checks", UserError(
                f"no dbt manifest in {target_path}: dbt could not parse the project; "
                "see the dbt build step"))
        else:
            relations = checks.Relations(manifest, checks.orchestrate_schema_name())
            with _step(run, "checks") as step:
                print("checks: validating expectation suites…", flush=True)
                run.expectations = checks.run_expectations(warehouse, relations)
                step.status, step.summary = _summarize_expectations(run.expectations)
                print(f"checks: {step.summary}", flush=True)
            with _step(run, "reconciliation") as step:
                run.reconciliation = checks.reconcile(warehouse, relations)
                step.status = run.reconciliation["status"]
                step.summary = _summarize_reconciliation(run.reconciliation)
                for line in reconciliation_lines(run.reconciliation):
                    print(line, flush=True)
            if run.status == "passed":
                try:
                    run.snapshots = checks.save_snapshots(warehouse, relations, run.run_id)
                except Exception as exc:
                    _record_error(run, "checks", exc)
            # psychometrics: reliability and validity tables in marts (orchestrate/psychometrics.py)
            if run.steps["dbt build"].status == "error":
                run.steps["psychometrics"].status = "skipped"
                run.steps["psychometrics"].summary = "the dbt build did not finish"
            else:
                with _step(run, "psychometrics") as step:
                    from orchestrate import psychometrics

                    step.status, step.summary = psychometrics.run_step(warehouse, relations)

    # 5. report and history
    with _step(run, "report") as step:
        step.summary = str(report_dir)
        if relations is not None:
            try:
                run.unmapped = checks.unmapped_failures(
                    warehouse, manifest, (run.dbt or {}).get("run_results"))
                run.quarantined = checks.quarantined_lines(warehouse, relations)
                run.suppression = checks.suppression_shares(warehouse, relations)
            except Exception as exc:  # the report goes on without them
                step.status = "warning"
                step.summary = f"unmapped codes or quarantined lines not listed: {exc}"
                print(f"warning: {step.summary}", file=sys.stderr)
        if run.dbt:
            run.dbt.pop("run_results", None)  # kept in report_dir/dbt/run_results.json
        run.ended_at = datetime.now(timezone.utc)
        step.seconds = round(time.perf_counter() - step.started, 2)
        report.write(_report_data(run, report_dir), report_dir, reports_dir)
    run.ended_at = datetime.now(timezone.utc)
    if history_ok and warehouse is not None:
        try:
            _history_update(warehouse, run, report_dir)
        except Exception as exc:
            print(f"warning: could not record the run in {HISTORY_TABLE}: {exc}", file=sys.stderr)
    if warehouse is not None:
        warehouse.close()
    # production's dbt state, for pr-check to compare a change with (not after --select:
    # what was not selected may be older than the project)
    if run.status == "passed" and run.scope["kind"] != "selected":
        try:
            from orchestrate.pr_check import keep_production_state

            kept = keep_production_state(options["target"], run.scope.get("fingerprint") or project_fingerprint(),
                                         full_parse_manifest=bool((run.dbt or {}).get("full_parse")))
            if kept:
                print(f"production state for pr-check kept in {kept}", flush=True)
        except Exception as exc:
            print(f"warning: production's dbt state not kept for pr-check: {exc}", file=sys.stderr)

    _print_ending(run, report_dir)
    return run.exit_code


class _step:
    """Time a step, print its start and end, and turn an exception into a step error."""

    def __init__(self, run: Run, name: str):
        self.run, self.step = run, run.steps[name]

    def __enter__(self) -> Step:
        self.started = self.step.started = time.perf_counter()
        self.step.status = "passed"
        print(f"== {self.step.name}", flush=True)
        return self.step

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.step.seconds = round(time.perf_counter() - self.started, 2)
        if exc is not None:
            if isinstance(exc, KeyboardInterrupt):  # execute() stops the run
                self.step.status = "interrupted"
                self.step.summary = f"interrupted by {exc or 'SIGINT'}"
                print(f"== {self.step.name}: {self.step.summary} after {self.step.seconds:.1f}s", flush=True)
                return False
            _record_error(self.run, self.step.name, exc)
        print(f"== {self.step.name}: {self.step.status} in {self.step.seconds:.1f}s"
              + (f" — {self.step.summary}" if self.step.summary else ""), flush=True)
        return True


def _record_error(run: Run, step_name: str, exc: BaseException) -> None:
    step = run.steps[step_name]
    step.status = "error"
    exc = explain(exc) or exc  # a full disk, read-only folder, missing permission
    user_error = isinstance(exc, UserError)
    message = str(exc) if user_error else f"{type(exc).__name__}: {exc}"
    step.summary = message.splitlines()[0] if message else type(exc).__name__
    entry = {"step": step_name, "message": message}
    if not user_error:
        entry["traceback"] = "".join(traceback.format_exception(exc))
        traceback.print_exception(exc, file=sys.stderr)
    run.errors.append(entry)
    print(f"error in {step_name}: {message}", file=sys.stderr, flush=True)


def _summarize_expectations(suites: list[dict]) -> tuple[str, str]:
    counts: dict[str, int] = {}
    for suite in suites:
        for r in suite["results"]:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    skipped = [s["suite"] for s in suites if s["status"] == "skipped"]
    erred = [s["suite"] for s in suites if s["status"] == "error" and not s["results"]]
    parts = [f"{n} {k}" for k, n in sorted(counts.items())]
    if skipped:
        parts.append(f"{len(skipped)} suites skipped")
    summary = f"{len(suites)} suites: " + ", ".join(parts)
    if erred or counts.get("error"):
        return "error", summary
    if counts.get("failed"):
        return "failed", summary
    if counts.get("warning"):
        return "warning", summary
    return "passed", summary


def _summarize_reconciliation(rec: dict) -> str:
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
            + (f" ({_n(t['not_current'])} more in staging are not current: their response or "
               "question was deleted)" if t.get("not_current") else "")
        )
    for c in rec["checks"]:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[c["status"]]
        lines.append(f"  [{mark}] {c['check']}" + (f": {c['detail']}" if c["status"] != "passed" else ""))
    return lines


def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


# --------------------------------------------------------------------------------------
# dbt


class Progress:
    """dbt event callback: one line per node as it finishes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.total: int | None = None

    def __call__(self, event) -> None:
        name = event.info.name
        if name == "LogStartLine" and self.total is None:
            self.total = event.data.total
        elif name == "NodeFinished":
            node, result = event.data.node_info, event.data.run_result
            status = result.status or node.node_status
            failures = f", {result.num_failures} failing rows" if result.num_failures else ""
            with self.lock:
                self.done += 1
                print(f"  [dbt {self.done}/{self.total or '?'}] {status:<7} "
                      f"{node.resource_type} {node.node_name} ({result.execution_time:.1f}s{failures})",
                      flush=True)


def dbt_build(run: Run, report_dir: Path, retry_state: Path | None = None) -> dict:
    """`dbt build` (or `dbt retry`) in process; results from run_results.json."""
    options = run.options
    if retry_state is not None:
        args = ["retry", "--state", str(retry_state)]
    else:
        args = ["build"]
        if options.get("full_refresh"):
            args.append("--full-refresh")
        if options.get("select"):
            args += ["--select", *options["select"]]
        elif run.scope["kind"] == "changed":
            args += ["--select", *(f"source:replica.{t}+" for t in run.scope["tables"]),
                     "--exclude-resource-type", "unit_test"]
    # A parse in full when the project changed since the production state pr-check compares
    # with was kept, so that this build's manifest can be kept (orchestrate/pr_check.py).
    from orchestrate.pr_check import state_is_current

    full_parse = retry_state is None and not state_is_current(
        options["target"], run.scope.get("fingerprint") or project_fingerprint())
    if full_parse:
        args.append("--no-partial-parse")
    args.append("--quiet")  # our callback prints progress; errors still print
    print(f"dbt {' '.join(args)}", flush=True)
    run_results_path = dbt.target_path(options["target"]) / "run_results.json"
    before = run_results_path.stat().st_mtime_ns if run_results_path.exists() else None
    try:
        res = dbt.invoke(args, target=options["target"], callbacks=[Progress()])
    finally:
        release_duckdb()
    if isinstance(res.exception, KeyboardInterrupt):  # dbt cancelled its queries and stopped
        raise res.exception
    run_results = _read_json(run_results_path)
    fresh = run_results_path.exists() and run_results_path.stat().st_mtime_ns != before
    if not fresh:
        run_results = None
    if run_results is not None:
        state_dir = report_dir / "dbt"
        state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_results_path, state_dir / "run_results.json")
    summary = summarize_dbt(run_results, _read_json(run_results_path.with_name("manifest.json")))
    summary["command"] = "dbt " + " ".join(args)
    summary["scope"] = run.scope["why"] if retry_state is None else f"retry of run {run.retry_of}"
    summary["run_results"] = run_results
    summary["state"] = str(report_dir / "dbt") if run_results is not None else None
    summary["full_parse"] = full_parse
    if res.exception is not None:
        message = str(res.exception)
        if "lock" in message.lower() and "duckdb" in message.lower() or "Could not set lock" in message:
            message = (f"{duckdb_path()} is in use by another process (DuckDB allows one writer "
                       "per file). Close the program holding it (a notebook, a SQL client), then "
                       f"run again. dbt said: {message}")
        summary.update(status="error", summary=f"dbt could not run: {message}")
        raise UserError(summary["summary"])
    return summary


def summarize_dbt(run_results: dict | None, manifest: dict | None) -> dict:
    nodes = (manifest or {}).get("nodes", {})
    results = []
    counts: dict[str, int] = {}
    for r in (run_results or {}).get("results", []):
        node = nodes.get(r["unique_id"], {})
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        results.append({
            "unique_id": r["unique_id"],
            "name": node.get("name", r["unique_id"].split(".")[-1]),
            "resource_type": node.get("resource_type", r["unique_id"].split(".")[0]),
            "status": r["status"],
            "seconds": round(r.get("execution_time") or 0, 2),
            "failures": r.get("failures"),
            "message": r.get("message"),
            "file": node.get("original_file_path"),
            "relation": node.get("relation_name"),
            "severity": (node.get("config") or {}).get("severity"),
            "stored_failures": node.get("relation_name") if node.get("resource_type") == "test" else None,
            "tested": [n.split(".")[-1] for n in (node.get("depends_on") or {}).get("nodes", [])],
        })
    if run_results is None:
        status = "error"
    elif counts.get("error"):
        status = "error"
    elif counts.get("fail"):
        status = "failed"
    elif counts.get("warn"):
        status = "warning"
    else:
        status = "passed"
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no nodes selected"
    return {"status": status, "summary": summary, "counts": counts, "results": results,
            "elapsed": (run_results or {}).get("elapsed_time")}


def release_duckdb() -> None:
    """dbt-duckdb keeps the database open after a dbt command; close it so this process
    (and others) can open the file with our own settings."""
    connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if connections is None:
        return
    manager = connections.DuckDBConnectionManager
    with manager._LOCK:
        if manager._ENV is not None:
            try:
                manager._ENV.close()
            except Exception:
                pass
            manager._ENV = None


# --------------------------------------------------------------------------------------
# Build scope


def project_fingerprint() -> str:
    """A hash of everything that decides what dbt builds: the project's files and the
    values of the environment variables they read (STUDENT_KEY_SALT, ...)."""
    digest = hashlib.sha256()
    env_names: set[str] = set()
    for name in PROJECT_INPUTS:
        root = PROJECT_DIR / name
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            data = path.read_bytes()
            digest.update(f"{path.relative_to(PROJECT_DIR)}\0".encode() + data + b"\0")
            env_names.update(re.findall(r"env_var\(\s*['\"](\w+)['\"]", data.decode("utf-8", "replace")))
    for name in sorted(env_names):
        digest.update(f"{name}={os.environ.get(name, '')}\0".encode())
    return digest.hexdigest()


def ledger_high_water(warehouse, manifest: dict | None,
                      target_type: str) -> tuple[str | None, datetime | None]:
    """The ingest ledger's relation and its latest load time (None, None without one).
    Read before the build: a file loaded later (a separate `ingest`) is not built yet."""
    if manifest is not None:
        try:
            ledger = checks.Relations(manifest).source("replica", "ingest_ledger")
        except checks.MissingRelation:
            return None, None
    elif target_type == "duckdb":  # before dbt's first parse: the ingester's own name for it
        from orchestrate.ingest import LEDGER as ledger
    else:
        return None, None
    if not warehouse.exists(ledger):
        return None, None
    return ledger, warehouse.rows(f"select max(loaded_at) from {ledger}")[0][0]


def build_scope(warehouse, run: Run) -> dict:
    """What this run's `dbt build` covers: kind all (what was asked: everything, or
    --select), changed (only downstream of the raw tables with files loaded since the
    last passing build of this same project) or nothing (no such files)."""
    options = run.options
    scope = {"kind": "all", "fingerprint": project_fingerprint(), "built_through": None}
    if options.get("select"):
        return {**scope, "kind": "selected", "why": "--select " + " ".join(options["select"])}
    target_path = dbt.target_path(options["target"])
    manifest = _read_json(target_path / "manifest.json")
    ledger, scope["built_through"] = ledger_high_water(warehouse, manifest, run.target_type)
    if ledger is None:
        return {**scope, "why": "everything (no ingest ledger yet)"}
    if manifest is None:
        return {**scope, "why": f"everything (no dbt manifest in {target_path} yet)"}
    if options.get("full_refresh"):
        return {**scope, "why": "everything, incremental models from scratch (--full-refresh)"}
    table = f"{checks.orchestrate_schema_name()}.{HISTORY_TABLE}"
    baseline = warehouse.rows(
        f"select run_id, built_through from {table} where target = {_lit(options['target'])} "
        f"and build_fingerprint = {_lit(scope['fingerprint'])} and built_through is not null "
        "order by started_at desc limit 1")
    if not baseline:
        return {**scope, "why": "everything (the project changed since the last passing build, "
                                "or none passed yet)"}
    since_run, built_through = baseline[0]
    tables = [t for (t,) in warehouse.rows(
        f"select distinct table_name from {ledger} where loaded_at > {_lit(built_through)} "
        "order by table_name")]
    if not tables:
        return {**scope, "kind": "nothing",
                "why": f"nothing to build: no new files and the project is unchanged since "
                       f"run {since_run}, whose build passed; the marts are current "
                       "(--full-refresh rebuilds everything)"}
    return {**scope, "kind": "changed", "tables": tables, "since_run": since_run,
            "why": f"only what changed since run {since_run} (project unchanged): the models "
                   f"and tests downstream of {', '.join(tables)}"}


# --------------------------------------------------------------------------------------
# Retry


def retry_plan(last: dict) -> dict:
    """What a retry of `last` (a run_history row) re-runs."""
    steps = last.get("steps") or {}
    ingest_again = steps.get("ingest") not in ("passed", "warning", "skipped")
    build_status = steps.get("dbt build")
    state = Path(last["dbt_state"]) if last.get("dbt_state") else None
    if build_status in ("passed", "warning"):
        build = None  # nothing to rebuild: checks and report run again
    elif build_status in ("failed", "error") and state and (state / "run_results.json").exists():
        build = "retry"
    else:
        build = "build"  # never got to run, or was killed: build what was asked
    return {"ingest": ingest_again, "build": build, "state": state if build == "retry" else None}


def last_run(target: str) -> dict | None:
    """The most recent run_history row of the target's warehouse."""
    warehouse = open_warehouse(adapter_type(target))
    try:
        schema = checks.orchestrate_schema_name()
        if not warehouse.exists(f"{schema}.{HISTORY_TABLE}"):
            return None
        frame = warehouse.df(
            f"select * from {schema}.{HISTORY_TABLE} where target = '{_esc(target)}' "
            "order by started_at desc limit 1"
        )
    finally:
        warehouse.close()
    if frame.empty:
        return None
    row = checks.to_jsonable(frame.iloc[0].to_dict())
    if row["status"] == "running":  # the caller holds the run lock: that run was killed
        row["status"] = "interrupted"
    row["options"] = json.loads(row["options"] or "{}")
    row["steps"] = json.loads(row["steps"] or "{}")
    return row


# --------------------------------------------------------------------------------------
# Warehouse, lock and history


adapter_type = dbt.adapter_type  # retry.py reads it here


def open_warehouse(target_type: str):
    if target_type == "duckdb":
        from orchestrate.warehouse import connect

        return checks.DuckDBWarehouse(connect())
    if target_type == "snowflake":
        return checks.SnowflakeWarehouse()
    raise UserError(f"no checks for adapter {target_type!r} (duckdb and snowflake are supported)")


def lock_path(target: str, target_type: str) -> Path:
    if target_type == "duckdb":
        db = duckdb_path()
        return db.with_name(db.name + ".run.lock")
    return dbt.target_path(target) / f"orchestrate-{target}.run.lock"


def acquire_lock(path: Path, holder: str):
    """Hold an exclusive lock for the whole run; refuse at once if another run has it.
    The OS releases it when the file is closed or the process dies, even by kill -9."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunRefused(
            f"another run is already using this warehouse ({holder}); lock file {path}. "
            "Nothing was done and that run is unharmed: wait for it to finish, then look at "
            "its report (reports/latest) or run again."
        ) from None
    _describe_holder(handle, holder)
    return handle


def _describe_holder(handle, holder: str) -> None:
    """Say in the lock file who holds it, for the message another run prints."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{holder}, pid {os.getpid()}, since "
                 f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
    handle.flush()


def _esc(value: str) -> str:
    return value.replace("'", "''")


def _lit(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):  # aware: stored in UTC; naive (read back): as it is
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return f"cast('{value:%Y-%m-%d %H:%M:%S.%f}' as timestamp)"
    return f"'{_esc(str(value))}'"


def _history_start(warehouse, run: Run, report_dir: Path) -> bool:
    schema = checks.orchestrate_schema_name()
    table = f"{schema}.{HISTORY_TABLE}"
    warehouse.execute(f"create schema if not exists {schema}")
    warehouse.execute(
        f"""create table if not exists {table} (
          run_id varchar primary key,
          command varchar not null,
          retry_of varchar,
          target varchar not null,
          options varchar,
          started_at timestamp not null,
          ended_at timestamp,
          status varchar not null,
          exit_code integer,
          steps varchar,
          files_loaded bigint,
          rows_loaded bigint,
          lines_quarantined bigint,
          dbt_state varchar,
          report_path varchar
        )"""
    )
    # Added after the first release: warehouses created before have the table without them.
    for column, column_type in HISTORY_BUILD_COLUMNS.items():
        warehouse.execute(f"alter table {table} add column if not exists {column} {column_type}")
    previous = warehouse.rows(
        f"select run_id, status from {table} where target = {_lit(run.options['target'])} "
        "order by started_at desc limit 1")
    if previous and previous[0][1] in ("running", "interrupted"):
        how = "killed" if previous[0][1] == "running" else "stopped by a signal"
        print(f"run {previous[0][0]} was interrupted ({how}): the warehouse may be half built; "
              "a run without --select finishes it" if run.options.get("select") else
              f"finishing interrupted run {previous[0][0]} ({how}): the warehouse may be half "
              "built; this run builds everything changed since the last passing build", flush=True)
    # We hold the run lock: a run still marked running was killed.
    warehouse.execute(f"update {table} set status = 'interrupted' where status = 'running'")
    warehouse.execute(
        f"insert into {table} (run_id, command, retry_of, target, options, started_at, status, "
        f"steps, report_path) values ({_lit(run.run_id)}, {_lit(run.command)}, "
        f"{_lit(run.retry_of)}, {_lit(run.options['target'])}, {_lit(json.dumps(run.options))}, "
        f"{_lit(run.started_at)}, 'running', '{{}}', {_lit(str(report_dir / 'report.html'))})"
    )
    return True


def _history_update(warehouse, run: Run, report_dir: Path | None = None) -> None:
    table = f"{checks.orchestrate_schema_name()}.{HISTORY_TABLE}"
    ingest = run.ingest or {}
    sets = {
        "steps": json.dumps({s.name: s.status for s in run.steps.values()}),
        "files_loaded": ingest.get("files_loaded"),
        "rows_loaded": ingest.get("rows_loaded"),
        "lines_quarantined": ingest.get("lines_quarantined"),
        "dbt_state": (run.dbt or {}).get("state"),
    }
    if report_dir is not None:  # the end of the run
        sets.update(status=run.status, exit_code=run.exit_code, ended_at=run.ended_at,
                    build_scope=run.scope["why"])
        if run.steps["dbt build"].status in ("passed", "warning") and run.scope["kind"] in ("all", "changed"):
            # the marts are current as of these files: the next run builds from here
            sets.update(build_fingerprint=run.scope.get("fingerprint"),
                        built_through=run.scope.get("built_through"))
    assignments = ", ".join(f"{k} = {_lit(v)}" for k, v in sets.items())
    warehouse.execute(f"update {table} set {assignments} where run_id = {_lit(run.run_id)}")


def _history_recent(warehouse, limit: int = 10) -> list[dict]:
    table = f"{checks.orchestrate_schema_name()}.{HISTORY_TABLE}"
    frame = warehouse.df(
        f"select run_id, command, status, started_at, ended_at, files_loaded, rows_loaded, "
        f"report_path from {table} order by started_at desc limit {limit + 1}"
    )
    return checks.to_jsonable(frame.to_dict(orient="records"))


# --------------------------------------------------------------------------------------
# Endings


def where_results_are(run: Run) -> list[str]:
    if run.target_type == "duckdb":
        db = duckdb_path()
        return [
            f"DuckDB file {db}, schema marts",
            f"""query: {sys.executable} -c "import duckdb; print(duckdb.connect('{db}', read_only=True).sql('select * from marts.topic_results limit 10'))\"""",
        ]
    database = os.environ.get("SNOWFLAKE_DATABASE", "<database>")
    prefix = os.environ.get("DBT_SCHEMA_PREFIX", "").strip()
    return [f"Snowflake database {database}, schema {prefix + '_' if prefix else ''}marts",
            f"query: select * from {database}.{prefix + '_' if prefix else ''}marts.topic_results limit 10"]


def _report_data(run: Run, report_dir: Path) -> dict:
    where = where_results_are(run)
    return {
        "run_id": run.run_id,
        "command": run.command,
        "retry_of": run.retry_of,
        "options": run.options,
        "target_type": run.target_type,
        "status": run.status,
        "exit_code": run.exit_code,
        "started_at": run.started_at.isoformat(),
        "ended_at": (run.ended_at or datetime.now(timezone.utc)).isoformat(),
        "seconds": round(((run.ended_at or datetime.now(timezone.utc)) - run.started_at).total_seconds(), 1),
        "results": {"where": where[0], "query": where[1]},
        "report": {"html": str(report_dir / "report.html"), "json": str(report_dir / "report.json")},
        "steps": [{"name": s.name, "status": s.status, "seconds": s.seconds, "summary": s.summary}
                  for s in run.steps.values()],
        "failed_checks": run.failed_checks,
        "errors": run.errors,
        "ingest": run.ingest,
        "dbt": run.dbt,
        "expectations": run.expectations,
        "reconciliation": run.reconciliation,
        "reconciliation_lines": reconciliation_lines(run.reconciliation) if run.reconciliation else [],
        "unmapped": run.unmapped,
        "quarantined": run.quarantined,
        "suppression": run.suppression,
        "snapshots_saved": run.snapshots,
        "history": run.history,
    }


def _print_ending(run: Run, report_dir: Path) -> None:
    seconds = ((run.ended_at or datetime.now(timezone.utc)) - run.started_at).total_seconds()
    print()
    for line in where_results_are(run):
        print(f"Results: {line}" if not line.startswith("query") else f"  {line}")
    if run.status == "passed":
        warnings = [s.name for s in run.steps.values() if s.status == "warning"]
        note = f" with warnings in {', '.join(warnings)}" if warnings else ""
        print(f"PASSED{note}: run {run.run_id} in {seconds:.0f}s (exit 0).")
    elif run.status == "failed":
        failed = run.failed_checks
        print(f"FAILED: {len(failed)} data-quality checks failed in run {run.run_id} (exit 1):")
        for line in failed[:10]:
            print(f"  - {line}")
        if len(failed) > 10:
            print(f"  … and {len(failed) - 10} more in the report")
    elif run.status == "interrupted":
        print(f"INTERRUPTED: run {run.run_id} {run.interrupted} (exit 2); no later step ran. "
              "The next `run` finishes it.")
    else:
        print(f"ERROR: run {run.run_id} stopped (exit 2):")
        for e in run.errors:
            print(f"  - in {e['step']}: {e['message'].splitlines()[0] if e['message'] else ''}")
        for r in (run.dbt or {}).get("results", []):
            if r["status"] == "error":
                print(f"  - dbt {r['resource_type']} {r['name']} ({r['file']}): "
                      f"{(r['message'] or '').splitlines()[0] if r['message'] else ''}")
        for suite in run.expectations:
            if suite["status"] == "error":
                erred = [r for r in suite["results"] if r["outcome"] == "error"]
                why = suite.get("note") or (erred[0]["exception"] if erred else "") or ""
                print(f"  - expectation suite {suite['suite']} ({suite['file']}) could not run: "
                      f"{why.splitlines()[0] if why else ''}")
        if run.failed_checks:
            print(f"  and {len(run.failed_checks)} data-quality checks failed (see the report)")
    print(f"Report: {report_dir / 'report.html'} (and report.json; "
          f"{report_dir.parent / 'latest'} points to the latest)", flush=True)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
