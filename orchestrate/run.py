"""`python -m orchestrate run`: the whole warehouse job, then a report.

Steps, each in its own module: ingest new extracts (with --extracts; ingest.py) -> `dbt
build` of what changed (scope.py, dbt.py) -> data-quality checks (expectation suites in
orchestrate/expectations/; checks.py) -> reconciliation of files to raw tables (checks.py)
-> psychometrics (reliability and validity tables in marts; psychometrics.py) -> report
(reports/<run_id>/report.html and report.json, reports/latest; report.py).
Every run is recorded in orchestrate.run_history in the warehouse (warehouse.py).

Exit status: 0 everything passed (warnings allowed); 1 data-quality checks failed
(expectations, dbt tests of error severity, reconciliation); 2 an error stopped a step.

Build scope (scope.py): only what changed since the last passing build: the models and
tests downstream of the raw tables that received files since then, and of what changed in
the project; with neither it builds nothing. --full-refresh or --select build what is
asked. Checks always cover every mart.

Only one run at a time per warehouse: a second one exits at once with status 2 and the
first is unharmed. Ctrl-C (SIGINT) or SIGTERM stops a run where it is: no later step runs,
the run is recorded as interrupted (exit 2), and the next run finishes it. `python -m
orchestrate retry` re-runs what failed last time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from orchestrate import checks, dbt, report, scope, worker
from orchestrate.errors import UserError, explain
from orchestrate.worker import Worker
from orchestrate.warehouse import (PROJECT_DIR, History, acquire_lock, describe_holder,
                                   lock_path, open_warehouse, where_results_are)

STEPS = ("ingest", "dbt build", "checks", "reconciliation", "psychometrics", "report")


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
    status: str = "not run"  # passed, warning, failed, error, skipped, not run, interrupted
    seconds: float | None = None
    summary: str = ""


@dataclass
class Run:
    run_id: str
    command: str
    options: dict
    target_type: str
    started_at: datetime
    reports_dir: Path
    retry_of: str | None = None
    steps: dict[str, Step] = field(default_factory=lambda: {name: Step(name) for name in STEPS})
    ingest: dict | None = None
    dbt: dict | None = None
    expectations: list[dict] = field(default_factory=list)
    reconciliation: dict | None = None
    unmapped: list[dict] = field(default_factory=list)
    quarantined: dict | None = None
    suppression: list[dict] = field(default_factory=list)
    topic_shift: dict | None = None
    snapshots: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    ended_at: datetime | None = None
    scope: dict = field(default_factory=lambda: {"kind": "all", "why": ""})
    interrupted: str = ""  # "interrupted by SIGINT during dbt build" when a signal stopped it
    worker: Worker | None = None  # the run's second process (orchestrate/worker.py)

    @property
    def target(self) -> str:
        return self.options["target"]

    @property
    def report_dir(self) -> Path:
        return self.reports_dir / self.run_id

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
                    out.append(f"expectation {suite['suite']}: {checks.describe(r)}")
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
    def warned(self) -> list[str]:
        """The steps that warned."""
        return [s.name for s in self.steps.values() if s.status == "warning"]

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "error": 2, "interrupted": 2}[self.status]


def execute(options: dict, reports_dir: Path | None = None, command: str = "run",
            retry_of: dict | None = None, lock=None) -> int:
    """Run the steps under the warehouse's run lock (taken here unless the caller holds
    it: `lock`); return the exit status."""
    reports_dir = (reports_dir or Path(os.environ.get("ORCHESTRATE_REPORTS_DIR", PROJECT_DIR / "reports"))).resolve()
    target_type = dbt.adapter_type(options["target"])
    if options.get("extracts") and target_type != "duckdb":
        raise UserError(
            f"--extracts loads files into the local DuckDB warehouse only; target "
            f"{options['target']!r} is {target_type}, whose raw tables are loaded from the stage "
            "(dbt run-operation load_raw_from_stage). Drop --extracts or use --target dev."
        )
    started = datetime.now(timezone.utc)
    run = Run(run_id=started.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex(),
              command=command, options=options, target_type=target_type, started_at=started,
              reports_dir=reports_dir, retry_of=retry_of["run_id"] if retry_of else None)
    holder = f"{command} {run.run_id}"
    if lock is None:
        lock = acquire_lock(lock_path(dbt.target_path(run.target), run.target, target_type), holder)
    else:
        describe_holder(lock, holder)
    try:
        try:
            return _execute(run, retry_plan(retry_of) if retry_of else None)
        except KeyboardInterrupt as exc:  # SIGINT or SIGTERM (errors.Interrupted)
            signal_name = str(exc) or "SIGINT"
            exc.__traceback__ = None  # let the interrupted steps' connections go
        return _stop_interrupted(run, signal_name)
    finally:
        if run.worker is not None:
            run.worker.close()
        lock.close()  # releases the lock (the OS releases it too if the process dies)


def _execute(run: Run, plan: dict | None) -> int:
    """The steps, in order; a step that cannot run says why and the later ones go on
    with what there is."""
    plan = plan or {"ingest": True, "build": "build"}
    what = "retry of run " + run.retry_of if run.retry_of else "run"
    print(f"{what} {run.run_id}: target {run.target} ({run.target_type}), "
          f"{where_results_are(run.target_type)[0]}", flush=True)
    warehouse = _open(run, first_step="ingest" if run.options.get("extracts") else "dbt build")
    history = _start_history(warehouse, run)
    # the newest manifest (the last parse's), read once: what the build's scope and the
    # worker's imports are decided from before this run parses
    newest = dbt.read_json(dbt.target_path(run.target) / "manifest.json")
    run.worker = _start_worker(warehouse, newest)

    if warehouse is not None:
        _ingest_step(run, warehouse, plan)
        if history:
            _save_history(history, run)
    manifest = None
    if warehouse is not None and run.steps["ingest"].status != "error":
        warehouse = _build_step(run, warehouse, plan, newest)
        # this run's manifest, read once: the build's, else its own folder's (a scope
        # resolved by dbt ls), else the newest one (nothing was parsed)
        manifest = ((run.dbt or {}).pop("manifest", None)
                    or dbt.read_json(dbt.run_path(run.target, run.run_id) / "manifest.json")
                    or dbt.read_json(dbt.target_path(run.target) / "manifest.json"))
        history = History(warehouse) if history and warehouse is not None else None

    relations = None
    if warehouse is not None and run.steps["ingest"].status != "error":
        if manifest is None:
            _record_error(run, "checks", UserError(
                f"no dbt manifest in {dbt.target_path(run.target)}: dbt could not parse the "
                "project; see the dbt build step"))
        else:
            relations = checks.Relations(manifest)
            _check_steps(run, warehouse, relations)
            _psychometrics_step(run, warehouse, relations)
    if run.worker is not None:  # its work is done: its memory back before the report
        run.worker.close()

    _report_step(run, warehouse, relations, manifest, history)
    if warehouse is not None:
        warehouse.close()
    _print_ending(run)
    return run.exit_code


def _open(run: Run, first_step: str):
    try:
        return open_warehouse(run.target_type)
    except UserError as exc:  # WarehouseBusy: the message says what to do
        _record_error(run, first_step, exc)
        return None


def _start_worker(warehouse, manifest: dict | None) -> Worker | None:
    """The run's second process (orchestrate/worker.py), started now so that its imports
    overlap ingest and the build: scipy and semopy for the psychometric models, and first
    great-expectations when an expectation suite will validate after the build (not on a
    first run: the shift check has no earlier run to compare with yet)."""
    if warehouse is None:
        return None
    try:
        validate = manifest is not None and checks.will_validate(warehouse, checks.Relations(manifest))
    except Exception:  # a suite file or manifest the checks step will report on
        validate = False
    return worker.start(validate=validate, analyse=True)


def _start_history(warehouse, run: Run) -> History | None:
    if warehouse is None:
        return None
    history = History(warehouse)
    previous = history.start({
        "run_id": run.run_id, "command": run.command, "retry_of": run.retry_of,
        "target": run.target, "options": json.dumps(run.options), "started_at": run.started_at,
        "status": "running", "steps": "{}", "report_path": str(run.report_dir / "report.html")})
    if previous and previous[1] in ("running", "interrupted"):
        how = "killed" if previous[1] == "running" else "stopped by a signal"
        print(f"run {previous[0]} was interrupted ({how}): the warehouse may be half built; "
              "a run without --select finishes it" if run.options.get("select") else
              f"finishing interrupted run {previous[0]} ({how}): the warehouse may be half "
              "built; this run builds everything changed since the last passing build", flush=True)
    run.history = history.recent()
    return history


def _save_history(history: History, run: Run, final: bool = False) -> None:
    ingest = run.ingest or {}
    values = {
        "steps": json.dumps({s.name: s.status for s in run.steps.values()}),
        "files_loaded": ingest.get("files_loaded"),
        "rows_loaded": ingest.get("rows_loaded"),
        "lines_quarantined": ingest.get("lines_quarantined"),
        "dbt_state": (run.dbt or {}).get("state"),
    }
    if final:
        values.update(status=run.status, exit_code=run.exit_code, ended_at=run.ended_at,
                      build_scope=run.scope["why"])
        if _builds_current(run):  # the next run builds from here
            values.update(build_fingerprint=run.scope.get("fingerprint"),
                          built_through=run.scope.get("built_through"))
    history.update(run.run_id, values)


# --------------------------------------------------------------------------------------
# Steps


def _ingest_step(run: Run, warehouse, plan: dict) -> None:
    extracts = run.options.get("extracts")
    if not (extracts and plan["ingest"]):
        _skip(run, "ingest", "no --extracts given" if not extracts else f"ingest passed in run {run.retry_of}")
        return
    with _step(run, "ingest") as step:
        from orchestrate.ingest import ingest

        run.ingest = summarize_ingest(ingest(Path(extracts), warehouse.con, progress=True), extracts)
        step.summary = run.ingest["summary"]
        if run.ingest["lines_quarantined"] or run.ingest["waiting"] or run.ingest["warnings"]:
            step.status = "warning"


def summarize_ingest(result, extracts: str) -> dict:
    waiting, warnings = result.waiting, result.warnings
    return {
        "extracts": extracts,
        "files_loaded": len(result.loaded),
        "files_skipped": len(result.skipped),
        "rows_loaded": result.rows_loaded,
        "lines_quarantined": result.lines_quarantined,
        "phase_seconds": {name: round(seconds, 3) for name, seconds in result.phase_seconds.items()},
        "files": [f.__dict__ for f in result.loaded],
        "waiting": waiting,
        "warnings": warnings,
        "summary": (f"{len(result.loaded)} new files, {result.rows_loaded} rows loaded, "
                    f"{result.lines_quarantined} lines quarantined, "
                    f"{len(result.skipped)} files already loaded"
                    + (f", {len(waiting)} files waiting" if waiting else "")
                    + (f", {len(warnings)} warnings" if warnings else "")),
    }


def _build_step(run: Run, warehouse, plan: dict, newest: dict | None):
    """dbt build (or dbt retry) of this run's scope (scope.py), in this run's own dbt
    artifacts folder; the DuckDB file is dbt's while it builds. A passing build of the
    project's whole scope is kept as the state the next run compares with (`newest`: the
    last parse's manifest, read as the run started). Returns the warehouse reopened (None
    if it cannot be)."""
    if plan["build"] == "build":
        run.scope = scope.build_scope(warehouse, _ledger(run, newest), run.target, run.options)
    warehouse.close()
    artifacts = dbt.start_run_folder(run.target, run.run_id)
    if plan["build"] == "build":
        run.scope = scope.resolve(run.scope, run.target, artifacts)
        print(f"build scope: {run.scope['why']}", flush=True)
    if plan["build"] is None:
        _skip(run, "dbt build", f"dbt build passed in run {run.retry_of}")
    elif run.scope["kind"] == "nothing":
        _skip(run, "dbt build", run.scope["why"])
    else:
        with _step(run, "dbt build") as step:
            if plan["build"] == "retry":
                args = ["retry", "--state", str(plan["state"])]
            else:
                args = scope.dbt_args(run.scope, run.options)
            run.dbt = dbt.build(args, run.target, artifacts, keep_in=run.report_dir / "dbt")
            run.dbt["scope"] = (run.scope["why"] if plan["build"] == "build"
                                else f"retry of run {run.retry_of}")
            step.status, step.summary = run.dbt["status"], run.dbt["summary"]
            if plan["build"] == "build" and _builds_current(run):
                scope.keep_build(run.target, artifacts, run.run_id, run.scope["fingerprint"], run.scope)
    return _open(run, "checks")


def _builds_current(run: Run) -> bool:
    """The build passed and covered all that changed: the marts are current as of the
    files loaded before it (run_history.built_through)."""
    return run.steps["dbt build"].status in ("passed", "warning") and run.scope["kind"] in ("all", "changed")


def _ledger(run: Run, manifest: dict | None) -> str | None:
    """The ingest ledger's relation, before this run's build: from the newest manifest,
    or (DuckDB, before dbt's first parse) the ingester's own name for it."""
    if manifest is not None:
        try:
            return checks.Relations(manifest).source("replica", "ingest_ledger")
        except checks.MissingRelation:
            return None
    if run.target_type == "duckdb":
        from orchestrate.ingest import LEDGER

        return LEDGER
    return None


def _check_steps(run: Run, warehouse, relations: checks.Relations) -> None:
    with _step(run, "checks") as step:
        print("checks: validating expectation suites…", flush=True)
        run.expectations = checks.run_expectations(warehouse, relations, worker=run.worker)
        step.status, step.summary = checks.summarize_expectations(run.expectations)
        print(f"checks: {step.summary}", flush=True)
    with _step(run, "reconciliation") as step:
        run.reconciliation = checks.reconcile(warehouse, relations)
        step.status = run.reconciliation["status"]
        step.summary = checks.summarize_reconciliation(run.reconciliation)
        for line in checks.reconciliation_lines(run.reconciliation):
            print(line, flush=True)
    try:
        run.topic_shift = checks.topic_results_against_previous(warehouse, relations)
    except Exception as exc:  # a chart less in the report
        print(f"warning: topic results not compared with the previous run: {exc}", file=sys.stderr)
    if run.status == "passed":  # the baseline of the next run's shift check
        try:
            run.snapshots = checks.save_snapshots(warehouse, relations, run.run_id)
        except Exception as exc:
            _record_error(run, "checks", exc)


def _psychometrics_step(run: Run, warehouse, relations: checks.Relations) -> None:
    """Reliability and validity tables in marts (orchestrate/psychometrics.py)."""
    if run.steps["dbt build"].status == "error":
        _skip(run, "psychometrics", "the dbt build did not finish")
        return
    with _step(run, "psychometrics") as step:
        from orchestrate import psychometrics

        step.status, step.summary = psychometrics.run_step(
            warehouse, relations, recompute=bool(run.options.get("full_refresh")), worker=run.worker)


def _report_step(run: Run, warehouse, relations, manifest: dict | None, history: History | None) -> None:
    """What the report lists besides the steps' results, then the run's end in the
    history, then the report itself: the last thing written, with the run's final status
    and the report step's own time in it."""
    with _step(run, "report") as step:
        step.summary = str(run.report_dir)
        if relations is not None:
            try:
                run.unmapped = checks.unmapped_failures(warehouse, manifest, (run.dbt or {}).get("run_results"))
                run.quarantined = checks.quarantined_lines(warehouse, relations)
                run.suppression = checks.suppression_shares(warehouse, relations)
            except Exception as exc:  # the report goes on without them
                step.status = "warning"
                step.summary = f"unmapped codes or quarantined lines not listed: {exc}"
                print(f"warning: {step.summary}", file=sys.stderr)
        if run.dbt:
            run.dbt.pop("run_results", None)  # kept in report_dir/dbt/run_results.json
    _finish(run, history)


def _finish(run: Run, history: History | None) -> None:
    """The run's end: its history row, then its report (both say the same status)."""
    run.ended_at = datetime.now(timezone.utc)
    if history is not None:
        try:
            _save_history(history, run, final=True)
        except Exception as exc:
            print(f"warning: could not record the run in {history.table}: {exc}", file=sys.stderr)
    try:
        report.write(report_data(run), run.report_dir, run.reports_dir)
    except Exception as exc:
        _record_error(run, "report", exc)
        if history is not None:
            try:
                _save_history(history, run, final=True)
            except Exception:
                pass


def _stop_interrupted(run: Run, signal_name: str) -> int:
    """After SIGINT or SIGTERM: no later step runs on a half-built warehouse; the run is
    recorded as interrupted and reported, and the next run finishes it (it builds
    everything changed since the last passing build)."""
    step = next((s.name for s in run.steps.values() if s.status == "interrupted"), None)
    run.interrupted = f"interrupted by {signal_name} " + (f"during {step}" if step else "between steps")
    print(f"{run.interrupted}: stopping here; no later step runs", flush=True)
    dbt.release_duckdb()  # dbt may still hold the DuckDB file
    warehouse = None
    try:
        warehouse = open_warehouse(run.target_type)
        _finish(run, History(warehouse))
    except Exception as exc:
        print(f"warning: could not record the run: {exc}", file=sys.stderr)
        run.ended_at = run.ended_at or datetime.now(timezone.utc)
        report.write(report_data(run), run.report_dir, run.reports_dir)
    finally:
        if warehouse is not None:
            warehouse.close()
    _print_ending(run)
    return run.exit_code


class _step:
    """Time a step, print its start and end, and turn an exception into a step error."""

    def __init__(self, run: Run, name: str):
        self.run, self.step = run, run.steps[name]

    def __enter__(self) -> Step:
        self.started = time.perf_counter()
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


def _skip(run: Run, name: str, why: str) -> None:
    run.steps[name].status, run.steps[name].summary = "skipped", why


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
    """The most recent run_history row of the target's warehouse (the caller holds the
    run lock: a run still marked running was killed)."""
    warehouse = open_warehouse(dbt.adapter_type(target))
    try:
        row = History(warehouse).last(target)
    finally:
        warehouse.close()
    if row and row["status"] == "running":
        row["status"] = "interrupted"
    return row


# --------------------------------------------------------------------------------------
# Endings


def report_data(run: Run) -> dict:
    where = where_results_are(run.target_type)
    ended = run.ended_at or datetime.now(timezone.utc)
    return {
        "run_id": run.run_id,
        "command": run.command,
        "retry_of": run.retry_of,
        "options": run.options,
        "target_type": run.target_type,
        "status": run.status,
        "warned": run.warned,
        "interrupted": run.interrupted,
        "exit_code": run.exit_code,
        "started_at": run.started_at.isoformat(),
        "ended_at": ended.isoformat(),
        "seconds": round((ended - run.started_at).total_seconds(), 1),
        "results": {"where": where[0], "query": where[1]},
        "report": {"html": str(run.report_dir / "report.html"), "json": str(run.report_dir / "report.json")},
        "steps": [{"name": s.name, "status": s.status, "seconds": s.seconds, "summary": s.summary}
                  for s in run.steps.values()],
        "build_scope": run.scope.get("why", ""),
        "failed_checks": run.failed_checks,
        "errors": run.errors,
        "ingest": run.ingest,
        "dbt": run.dbt,
        "expectations": run.expectations,
        "reconciliation": run.reconciliation,
        "reconciliation_lines": checks.reconciliation_lines(run.reconciliation) if run.reconciliation else [],
        "unmapped": run.unmapped,
        "quarantined": run.quarantined,
        "suppression": run.suppression,
        "topic_shift": run.topic_shift,
        "snapshots_saved": run.snapshots,
        "history": run.history,
    }


def _print_ending(run: Run) -> None:
    seconds = ((run.ended_at or datetime.now(timezone.utc)) - run.started_at).total_seconds()
    print()
    for line in where_results_are(run.target_type):
        print(f"Results: {line}" if not line.startswith("query") else f"  {line}")
    if run.status == "passed":
        note = f" with warnings in {', '.join(run.warned)}" if run.warned else ""
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
        for line in _error_lines(run):
            print(f"  - {line}")
        if run.failed_checks:
            print(f"  and {len(run.failed_checks)} data-quality checks failed (see the report)")
    print(f"Report: {run.report_dir / 'report.html'} (and report.json; "
          f"{run.reports_dir / 'latest'} points to the latest)", flush=True)


def _error_lines(run: Run) -> list[str]:
    def first(text: str | None) -> str:
        return text.splitlines()[0] if text else ""

    lines = [f"in {e['step']}: {first(e['message'])}" for e in run.errors]
    lines += [f"dbt {r['resource_type']} {r['name']} ({r['file']}): {first(r['message'])}"
              for r in (run.dbt or {}).get("results", []) if r["status"] == "error"]
    for suite in run.expectations:
        if suite["status"] == "error":
            erred = [r for r in suite["results"] if r["outcome"] == "error"]
            why = suite.get("note") or (erred[0]["exception"] if erred else "") or ""
            lines.append(f"expectation suite {suite['suite']} ({suite['file']}) could not run: {first(why)}")
    return lines
