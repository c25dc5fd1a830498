"""dbt, driven in process through its programmatic API (one invocation at a time): where
its artifacts go, the build step (progress, summary of run_results.json, errors) and the
state of the last passing build.

Artifacts folders, per warehouse and per run (as dagster-dbt keeps them):
- `target_path(target)`: the warehouse's folder (target/<warehouse>, or $DBT_TARGET_PATH).
  dbt commands typed by hand use it; it holds the newest manifest.json (what `lookml`,
  `psychometrics`, `research-report` read) and partial_parse.msgpack.
- `run_path(target, run_id)`: target/<warehouse>/runs/<run_id>, one per `run`: a run reads
  its own manifest.json and run_results.json, never another run's. It starts with the
  warehouse's partial_parse.msgpack (parsing stays fast); after the build the manifest and
  the parse go back to the warehouse's folder. The newest few run folders are kept.
- `state_path(target)`: target/<warehouse>/production-state, the manifest of the last
  passing build of the whole project (from a full parse) and what it was built with:
  the build scope's `state:modified` compares with it (orchestrate/scope.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import yaml

from orchestrate import errors
from orchestrate.errors import Interrupted, UserError
from orchestrate.status import worst
from orchestrate.warehouse import PROJECT_DIR, duckdb_path

# dbt is not safe to invoke twice at once in one process.
_LOCK = threading.Lock()
RUNS_KEPT = 5  # run folders kept per warehouse (a run's reports keep its run_results too)
STATE_FOLDER = "production-state"


def adapter_type(target: str) -> str:
    """The adapter a profiles.yml target uses (duckdb, snowflake)."""
    profiles = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8"))
    outputs = next(iter(profiles.values()))["outputs"]
    if target not in outputs:
        raise UserError(f"unknown target {target!r}: profiles.yml has {', '.join(outputs)}")
    return outputs[target]["type"]


def target_path(target: str | None = None) -> Path:
    """Where dbt keeps a warehouse's artifacts: $DBT_TARGET_PATH, else one folder per
    warehouse under target/, so that switching DBT_DUCKDB_PATH (or the Snowflake account,
    database or schema prefix) never reads another warehouse's manifest:
    target/<DuckDB file name>-<hash of its path>, or
    target/snowflake-<account>-<database>[-<prefix>]."""
    if os.environ.get("DBT_TARGET_PATH"):
        return Path(os.environ["DBT_TARGET_PATH"])
    target = target or os.environ.get("DBT_TARGET", "dev")
    if adapter_type(target) == "duckdb":
        db = duckdb_path().resolve()
        name = f"{db.stem}-{hashlib.sha256(str(db).encode()).hexdigest()[:8]}"
    else:
        parts = ["snowflake", *(os.environ.get(v, "").strip() for v in
                                ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_DATABASE", "DBT_SCHEMA_PREFIX"))]
        name = "-".join(re.sub(r"[^a-z0-9_.]+", "_", p.lower()) for p in parts if p)
    return PROJECT_DIR / "target" / name


def run_path(target: str, run_id: str) -> Path:
    """This run's artifacts folder: target_path(target)/runs/<run_id>."""
    return target_path(target) / "runs" / run_id


def state_path(target: str) -> Path:
    """The last passing build's state (manifest.json and stamp.json)."""
    return target_path(target) / STATE_FOLDER


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def invoke(args: list[str], target: str | None = None, callbacks: list | None = None,
           artifacts: Path | None = None):
    """Run one dbt command (e.g. ["build", "--select", "staging"]); return dbt's result.

    `callbacks` receive every dbt event as it happens (e.g. to print node completions);
    `artifacts` is the folder it writes to (default: the warehouse's, target_path)."""
    from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

    full = [*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(artifacts or target_path(target))]
    if target:
        full += ["--target", target]
    with _LOCK:
        return dbtRunner(callbacks=callbacks or []).invoke(full)


# --------------------------------------------------------------------------------------
# The build step


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


def start_run_folder(target: str, run_id: str) -> Path:
    """This run's artifacts folder, with the warehouse's partial parse in it; older run
    folders beyond the newest RUNS_KEPT are removed."""
    folder = run_path(target, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    parse = target_path(target) / "partial_parse.msgpack"
    if parse.exists():
        shutil.copy2(parse, folder / parse.name)
    runs = sorted(p for p in folder.parent.iterdir() if p.is_dir())
    for old in runs[:-RUNS_KEPT]:
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def publish(folder: Path, target: str) -> None:
    """A run's manifest and parse become the warehouse's newest (atomic replace)."""
    home = target_path(target)
    for name in ("manifest.json", "partial_parse.msgpack", "semantic_manifest.json"):
        if (folder / name).exists():
            tmp = home / f".{name}.{os.getpid()}"
            shutil.copy2(folder / name, tmp)
            os.replace(tmp, home / name)


def build(args: list[str], target: str, artifacts: Path, keep_in: Path) -> dict:
    """`dbt <args>` (build or retry) in process, writing to `artifacts` (this run's own
    folder). Returns the summary of its run_results.json (see summarize) with the command,
    the run_results and the manifest themselves (read once: the caller takes them) and
    `state`: `keep_in`, where run_results.json is copied for a later `dbt retry`. A dbt that could not run raises UserError saying why."""
    args = [*args, "--quiet"]  # our callback prints progress; errors still print
    print(f"dbt {' '.join(args)}", flush=True)
    try:
        res = invoke(args, target=target, callbacks=[Progress()], artifacts=artifacts)
    finally:
        release_duckdb()
    if isinstance(res.exception, KeyboardInterrupt):  # dbt cancelled its queries and stopped
        raise res.exception
    if errors.signal_received:
        # the signal reached dbt, which cancelled its queries by closing their connections
        # and may end with the error of a statement on one of them ("Connection already
        # closed") or with none: an interruption all the same
        raise Interrupted(errors.signal_received) from res.exception
    run_results = read_json(artifacts / "run_results.json")
    manifest = read_json(artifacts / "manifest.json")
    if manifest is not None:
        publish(artifacts, target)
    if run_results is not None:
        keep_in.mkdir(parents=True, exist_ok=True)
        shutil.copy2(artifacts / "run_results.json", keep_in / "run_results.json")
    summary = summarize(run_results, manifest)
    summary.update(command="dbt " + " ".join(args), run_results=run_results, manifest=manifest,
                   state=str(keep_in) if run_results is not None else None)
    if res.exception is not None:
        message = str(res.exception)
        if "lock" in message.lower() and "duckdb" in message.lower() or "Could not set lock" in message:
            message = (f"{duckdb_path()} is in use by another process (DuckDB allows one writer "
                       "per file). Close the program holding it (a notebook, a SQL client), then "
                       f"run again. dbt said: {message}")
        raise UserError(f"dbt could not run: {message}")
    return summary


# run_results.json statuses as step statuses
_STEP_STATUS = {"error": "error", "runtime error": "error", "fail": "failed", "warn": "warning"}


def summarize(run_results: dict | None, manifest: dict | None) -> dict:
    """One entry per node of run_results.json (and per project hook that failed), named and
    placed from the manifest; the step's status is the worst node's."""
    nodes = (manifest or {}).get("nodes", {})
    results = []
    counts: dict[str, int] = {}
    for r in (run_results or {}).get("results", []):
        if r["unique_id"].startswith("operation.") and r["status"] == "success":
            continue  # a project hook that ran (on-run-end): not a node of the build
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
    status = "error" if run_results is None else worst(_STEP_STATUS.get(s, "passed") for s in counts)
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
