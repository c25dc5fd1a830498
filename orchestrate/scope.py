"""What a run's `dbt build` covers, from dbt's own state and the new files.

Against the last passing build (its manifest kept in dbt.state_path(target), the build
recorded in orchestrate.run_history):
- the project: `state:modified+`, what dbt sees changed in models, seeds, macros, tests
  and configs since that build, and everything downstream (a comment in one model rebuilds
  that model and what reads it);
- the data: `source:replica.<table>+` for the raw tables that received files since that
  build.
With neither it builds nothing.

Unit tests check code on fixed inputs, not data, so a build runs them only when the
project changed (those of every model it selects: the changed ones, what is downstream
and what new files reach in the same build) or when the environment fingerprint changed
(all of them); a build of new files only, a first run and --full-refresh leave them out
(`--exclude-resource-type unit_test`), as dbt recommends for production builds. CI runs
every one (`make test`, pr-check for a pull request's models; `dbt test --select
test_type:unit` by hand).

When the project's files are byte for byte those of the kept build (project_digest),
`state:modified` is known to be empty and dbt is not asked. A build of project changes,
and a build of everything, runs with --full-refresh: incremental models (those
partitioned by school year rebuild only the years with new files) rebuild in full what
the change reaches. What `state:modified` cannot see is fingerprinted: the values of the
environment variables the project's files read (STUDENT_KEY_SALT, read by a macro when
it runs), the project's vars and dbt's version; when that differs from the last passing
build, everything is built. Without a kept build, with --full-refresh or with --select,
dbt builds what is asked (--full-refresh takes a changed fingerprint into the kept build
without unit tests: they ran in CI for the code it builds).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

import yaml

from orchestrate import dbt
from orchestrate.warehouse import PROJECT_DIR, History

# Files whose env_var() reads count (profiles.yml's connection settings do not decide
# what is built: the artifacts folder is per warehouse already).
PROJECT_INPUTS = ("dbt_project.yml", "models", "seeds", "macros", "tests/dbt", "snapshots")


def project_files(names) -> list[Path]:
    """The files at or under these paths of the project, in a stable order."""
    files = []
    for name in names:
        root = PROJECT_DIR / name
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(sorted(p for p in root.rglob("*") if p.is_file()))
    return files


def environment_fingerprint() -> str:
    """A hash of what decides the build but is not in dbt's manifest: the values of the
    environment variables the project's files read (only the hash is kept: the salt is a
    secret), the vars of dbt_project.yml, dbt's version and its installed adapters'."""
    from importlib.metadata import distributions

    from dbt.version import __version__ as dbt_version

    names: set[str] = set()
    for path in project_files(PROJECT_INPUTS):
        names.update(re.findall(r"env_var\(\s*['\"](\w+)['\"]",
                                path.read_bytes().decode("utf-8", "replace")))
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    digest = hashlib.sha256(json.dumps(
        {"env": {n: os.environ.get(n, "") for n in sorted(names)},
         "vars": project.get("vars") or {}, "dbt": dbt_version,
         # the adapters' macros (incremental strategies, get_where_subquery's callers)
         "packages": sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions()
                            if (d.metadata["Name"] or "").lower().startswith("dbt"))},
        sort_keys=True, default=str).encode())
    return digest.hexdigest()


def project_digest() -> str:
    """A hash of the dbt project's files (what dbt parses, and profiles.yml). When it equals
    the kept build's, no file dbt reads has changed: `state:modified` would be empty and
    resolve() does not ask dbt (one parse fewer on a day's run)."""
    digest = hashlib.sha256()
    for path in project_files((*PROJECT_INPUTS, "analyses", "profiles.yml", ".dbtignore", "packages.yml",
                               "dependencies.yml", "package-lock.yml", "selectors.yml")):
        digest.update(path.relative_to(PROJECT_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ledger_high_water(warehouse, ledger: str | None) -> datetime | None:
    """The ingest ledger's latest load time (None without one). Read before the build: a
    file loaded later (a separate `ingest`) is not built yet."""
    if ledger is None or not warehouse.exists(ledger):
        return None
    return warehouse.scalar(f"select max(loaded_at) from {ledger}")


def kept_build(target: str) -> dict | None:
    """The last passing build kept for this warehouse: its run_id and fingerprint."""
    state = dbt.state_path(target)
    build = dbt.read_json(state / "build.json")
    return build if build and (state / "manifest.json").exists() else None


def full_parse(scope: dict) -> bool:
    """Whether the build parses the project in full: when its manifest will become the kept
    state (everything built, or the project changed). A manifest from a partial parse can
    carry configs a full parse would not (singular tests' severity), which state:modified
    would then report as changes."""
    return scope["kind"] == "all" or bool(scope.get("modified"))


def keep_build(target: str, artifacts: Path, run_id: str, fingerprint: str, scope: dict) -> Path:
    """After a passing build of the whole project's scope: its manifest becomes the state
    the next run (and pr-check) compares with. A build of new files only (the project
    unchanged, parsed partially) keeps the kept manifest and records the run."""
    state = dbt.state_path(target)
    tmp = state.with_name(f".{state.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    source = artifacts if full_parse(scope) or not (state / "manifest.json").exists() else state
    shutil.copy2(source / "manifest.json", tmp / "manifest.json")
    (tmp / "build.json").write_text(json.dumps({"run_id": run_id, "fingerprint": fingerprint,
                                                "project": scope.get("project_digest")}) + "\n")
    old = state.with_name(f".{state.name}-old-{os.getpid()}")
    if state.exists():
        os.replace(state, old)
    os.replace(tmp, state)
    shutil.rmtree(old, ignore_errors=True)
    return state


def build_scope(warehouse, ledger: str | None, target: str, options: dict) -> dict:
    """The data half of the scope, read from the warehouse: kind all (everything),
    selected (--select), or `pending` with the new files' tables since the kept build;
    resolve() adds the project half once the warehouse is closed."""
    scope = {"kind": "all", "fingerprint": environment_fingerprint(), "project_digest": project_digest(),
             "built_through": None}
    if options.get("select"):
        return {**scope, "kind": "selected", "why": "--select " + " ".join(options["select"])}
    scope["built_through"] = ledger_high_water(warehouse, ledger)
    if scope["built_through"] is None:
        return {**scope, "why": "everything (no ingest ledger yet)"}
    if options.get("full_refresh"):
        return {**scope, "why": "everything, incremental models from scratch (--full-refresh)"}
    kept = kept_build(target)
    if kept is None:
        return {**scope, "why": f"everything (no passing build kept in {dbt.state_path(target)} yet)"}
    since_run = kept["run_id"]
    built_through = History(warehouse).built_through(since_run)
    if built_through is None:
        return {**scope, "why": f"everything (run {since_run}, whose build is kept, is not in "
                                "this warehouse's history)"}
    if kept["fingerprint"] != scope["fingerprint"]:
        return {**scope, "unit_tests": True,
                "why": f"everything (environment variables the project reads, its vars "
                       f"or dbt's version changed since run {since_run})"}
    tables = [t for (t,) in warehouse.rows(
        f"select distinct table_name from {ledger} where loaded_at > ? order by table_name",
        [built_through])]
    return {**scope, "kind": "pending", "tables": tables, "since_run": since_run,
            "project_as_kept": kept.get("project") == scope["project_digest"]}


def resolve(scope: dict, target: str, artifacts: Path) -> dict:
    """A pending scope made final: `dbt ls --select state:modified` against the kept build
    (its parse, in this run's artifacts folder, is the one the build reuses)."""
    if scope["kind"] != "pending":
        return scope
    state = dbt.state_path(target)
    if scope.get("project_as_kept"):
        nodes = []  # the same files as the kept build's: nothing for dbt to compare
    else:
        res = dbt.invoke(["ls", "--select", "state:modified", "--state", str(state),
                          "--output", "json", "--output-keys", "name", "resource_type", "--quiet"],
                         target=target, artifacts=artifacts)
        dbt.release_duckdb()
        if not res.success:  # dbt cannot parse the project: the build says why
            return {**scope, "kind": "all", "why": "everything (dbt could not compare the project "
                                                   "with the last passing build)"}
        dbt.publish(artifacts, target)
        nodes = [json.loads(line) for line in res.result or []]
    modified = sorted(n["name"] for n in nodes)
    tables, since_run = scope["tables"], scope["since_run"]
    if not tables and not modified:
        return {**scope, "kind": "nothing",
                "why": f"nothing to build: no new files and the project is unchanged since "
                       f"run {since_run}, whose build passed; the marts are current "
                       "(--full-refresh rebuilds everything)"}
    select = (["state:modified+"] if modified else []) + [f"source:replica.{t}+" for t in tables]
    parts = []
    if modified:
        built = sorted(n["name"] for n in nodes if n["resource_type"] in ("model", "seed", "snapshot"))
        shown = ", ".join(built[:8]) + (f" and {len(built) - 8} more" if len(built) > 8 else "")
        others = len(modified) - len(built)
        parts.append(f"what changed in the project ({shown or 'no model'}"
                     + (f"; {others} tests" if others else "") + ") and what is downstream")
    if tables:
        parts.append(f"the models and tests downstream of {', '.join(tables)}")
    project = ("" if modified else " (project files as in that build)" if scope.get("project_as_kept")
               else " (project unchanged)")
    return {**scope, "kind": "changed", "select": select, "state": str(state),
            "unit_tests": bool(modified), "modified": modified,
            "why": f"only what changed since run {since_run}{project}: " + "; ".join(parts)}


def dbt_args(scope: dict, options: dict) -> list[str]:
    """The `dbt build` arguments of a scope."""
    args = ["build"]
    if full_parse(scope):
        args.append("--no-partial-parse")
    project_changed = scope["kind"] == "changed" and bool(scope.get("modified"))
    if options.get("full_refresh") or scope["kind"] == "all" or project_changed:
        # A project change (or one dbt cannot see: the environment fingerprint, no kept
        # build to compare with) is not data: incremental models, those partitioned by school
        # year among them, rebuild what it reaches whole, not just the years with new files.
        args.append("--full-refresh")
    if options.get("select"):
        args += ["--select", *options["select"]]  # what is asked, unit tests included
        return args
    if scope["kind"] == "changed":
        args += ["--select", *scope["select"]]
        if "state:modified+" in scope["select"]:
            args += ["--state", scope["state"]]
    if not scope.get("unit_tests"):
        args += ["--exclude-resource-type", "unit_test"]
    return args
